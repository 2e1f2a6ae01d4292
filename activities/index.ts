/**
 * The activities of the upgrade workflow, built by a factory with injected
 * dependencies (the providers, a Temporal client for the transfer's progress
 * signals) so tests can pass their own. Errors carrying a non-retryable Imago
 * code become non-retryable ApplicationFailures: retrying a validation or a
 * consistency failure cannot help.
 */
import { ApplicationFailure } from '@temporalio/activity';
import type { Client } from '@temporalio/client';
import { ERRORS, imagoError, isImagoError } from '../lib/errors';
import type { UpgradePlan } from '../plan/types';
import type { Provider } from '../providers/provider';
import { LocalProvider } from '../providers/local/local-provider';
import { createAwsProvider } from '../providers/aws/aws-provider';
import { createCutoverActivities, type CutoverHooks } from './cutover';
import { createRollbackActivities } from './cutover/rollback';
import { createRollbackWindowActivities } from './rollback';
import { createTestingActivities } from './testing';
import { createGrantsActivities } from './grants';
import { createTransferActivities } from './transfer-runner';
import type { UpgradeActivities } from './types';
import { createUniverseActivities } from './universe';

export interface ActivityDeps {
  /** Temporal client the transfer activity uses to signal progress and read controls. */
  client: () => Client;
  /** Default: every provider (defaultProviders()); tests may pass their own. */
  providers?: Record<string, Provider>;
  /** Test code only: wraps the cut-over's steps or control clients to inject faults at step boundaries. */
  cutoverHooks?: CutoverHooks;
}

/**
 * Every provider a worker can run. Creating one contacts nothing: the aws
 * provider takes its region from the plan (or the worker's SDK
 * configuration) and its credentials from the SDK's default chain when a
 * plan first needs them.
 */
export function defaultProviders(): Record<string, Provider> {
  return { local: new LocalProvider(), aws: createAwsProvider() };
}

/** The worker's half of plan validation for the provider: the plan names one this worker runs, and the worker can run it (settings, region, credentials). */
export async function validateProviderOnWorker(providers: Record<string, Provider>, plan: UpgradePlan): Promise<void> {
  const name = plan.unew.provider;
  const p = providers[name];
  if (!p) throw imagoError('IMAGO_PLAN_INVALID', `plan (on the worker): /unew/provider: '${name}' is not available on this worker (it runs: ${Object.keys(providers).join(', ') || 'none'}); start a worker that registers it`);
  await p.validateWorker({ ...plan.unew } as unknown as Record<string, unknown>);
}

export function createActivities(deps: ActivityDeps): UpgradeActivities {
  const providers = deps.providers ?? defaultProviders();
  const { providerOf, ...universe } = createUniverseActivities(providers);
  const acts: UpgradeActivities = {
    ...universe,
    async validatePlanOnWorker(plan: UpgradePlan): Promise<void> {
      await universe.validatePlanOnWorker(plan);
      await validateProviderOnWorker(providers, plan);
    },
    ...createTransferActivities(deps.client),
    ...createTestingActivities(),
    ...createGrantsActivities(),
    ...createCutoverActivities(providerOf, deps.client, deps.cutoverHooks),
    ...createRollbackActivities(providerOf, deps.client, deps.cutoverHooks),
    ...createRollbackWindowActivities(),
  };
  return Object.fromEntries(Object.entries(acts).map(([name, fn]) => [name, wrap(fn as (...a: unknown[]) => Promise<unknown>)])) as unknown as UpgradeActivities;
}

function wrap(fn: (...a: unknown[]) => Promise<unknown>) {
  return async (...args: unknown[]) => {
    try {
      return await fn(...args);
    } catch (err) {
      throw toFailure(err);
    }
  };
}

/** Keeps the registry code as the failure type, so the workflow and the UI show it. */
export function toFailure(err: unknown): unknown {
  if (err instanceof ApplicationFailure) return err;
  if (isImagoError(err)) return ApplicationFailure.create({ type: err.code, message: err.message, nonRetryable: !err.retryable, cause: err });
  const code = (err as { code?: string })?.code;
  if (code && code in ERRORS) {
    const spec = ERRORS[code as keyof typeof ERRORS];
    return ApplicationFailure.create({ type: code, message: (err as Error).message, nonRetryable: !spec.retryable });
  }
  return err;
}
