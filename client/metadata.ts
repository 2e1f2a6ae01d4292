/**
 * The user metadata an upgrade carries from its start: Temporal's web UI and
 * CLI show the static summary in the workflow list and on the workflow's page,
 * and the static details below it, so an operator sees which system goes from
 * which version to which without opening the history. Built from the plan's
 * names only: the plan holds no secret, and this text is stored by the server.
 */
import type { UpgradePlan } from '../plan/types';

export interface UpgradeMetadata {
  /** One line (Temporal markdown, single-line). */
  staticSummary: string;
  /** Several lines (Temporal markdown). */
  staticDetails: string;
}

type MetadataPlan = Pick<UpgradePlan, 'name' | 'system' | 'from' | 'to' | 'approval' | 'tests'> & {
  unew: Pick<UpgradePlan['unew'], 'provider'>;
  uold: Pick<UpgradePlan['uold'], 'ingress'>;
};

/** A list column: a summary longer than this is cut with an ellipsis. */
const SUMMARY_MAX = 200;

export function upgradeMetadata(plan: MetadataPlan, workflowId: string): UpgradeMetadata {
  const fromTo = `${plan.from.version} → ${plan.to.version}`;
  const full = `${plan.system} ${fromTo} · plan ${plan.name} · provider ${plan.unew.provider}`;
  const staticSummary = full.length <= SUMMARY_MAX ? full : `${full.slice(0, SUMMARY_MAX - 1)}…`;
  const interceptors = plan.uold.ingress.length;
  const staticDetails = [
    `**Imago upgrade** of **${plan.system}** from **${plan.from.version}** to **${plan.to.version}**`,
    '',
    `- system: ${plan.system}`,
    `- from → to: ${fromTo}`,
    `- provider: ${plan.unew.provider}`,
    `- plan: ${plan.name}`,
    `- approval: ${plan.approval.policy}${plan.approval.policy === 'manual' ? ` (\`imago approve ${workflowId}\`)` : ''}`,
    `- ingress interceptors: ${interceptors}; plan tests: ${plan.tests.length}`,
    '',
    `Progress: the \`status\` query (Queries tab), or \`imago status ${workflowId}\`.`,
  ].join('\n');
  return { staticSummary, staticDetails };
}
