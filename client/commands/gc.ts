/**
 * `imago gc`: lists every universe whose upgrade will never use it again
 * (its workflow closed without switching over, or unknown to the server) and,
 * with --yes, destroys it. A universe marked as serving by a cut-over, or
 * whose upgrade runs or switched over, is always kept. See providers/gc.ts.
 */
import { loadPlanFile } from '../../plan/load';
import { LocalProvider } from '../../providers/local/local-provider';
import { createAwsProvider } from '../../providers/aws/aws-provider';
import { collectGarbage, type GcEntry } from '../../providers/gc';
import type { Provider } from '../../providers/provider';
import { EXIT_CODES } from '../../workflows/status';
import { printJson } from '../output';
import { withClient, type CommandSpec } from './common';

export const gcCommand: CommandSpec = {
  name: 'gc', summary: "List universes nothing will use again (aborted, failed, terminated or unknown upgrades); destroy them with --yes.", connects: true,
  options: { plan: { type: 'string' }, 'universes-dir': { type: 'string' }, yes: { type: 'boolean' } },
  details: `  --plan FILE            look where this plan's provider keeps universes (local folder, AWS region and tags)
  --universes-dir DIR    the local provider's folder (default: IMAGO_UNIVERSES_DIR or ~/.imago/universes)
  --yes                  destroy what is listed as garbage (default: list only, a dry run)

Never destroyed: a universe a cut-over marked as serving, or whose upgrade is running or switched over.`,
  async run(ctx) {
    const sources: Array<{ provider: Provider; unew: Record<string, unknown> }> = [];
    const dir = ctx.values['universes-dir'] as string | undefined;
    if (ctx.values.plan) {
      const plan = loadPlanFile(ctx.values.plan as string);
      const provider: Provider = plan.unew.provider === 'aws' ? createAwsProvider() : new LocalProvider();
      sources.push({ provider, unew: { ...plan.unew, ...(dir ? { local: { baseDir: dir } } : {}) } as unknown as Record<string, unknown> });
    } else {
      sources.push({ provider: new LocalProvider(), unew: dir ? { local: { baseDir: dir } } : {} });
    }
    const destroy = ctx.values.yes === true;
    const entries = await withClient(ctx, (c) => collectGarbage({ client: c.client, sources, destroy, log: (l) => ctx.io.err(`${l}\n`) }));
    if (ctx.json) printJson(ctx.io, { destroy, universes: entries });
    else {
      for (const e of entries) ctx.io.out(`${label(e, destroy)}  ${e.provider}:${e.upgradeId}  workflow ${e.workflow}${e.outcome ? ` (${e.outcome})` : ''}: ${e.why}\n        ${e.detail}${e.error ? `\n        destroy failed: ${e.error}` : ''}\n`);
      const garbage = entries.filter((e) => e.action === 'destroy');
      ctx.io.out(!entries.length ? 'gc: no universe found\n'
        : destroy ? `gc: ${garbage.filter((e) => e.destroyed).length} of ${garbage.length} destroyed, ${entries.length - garbage.length} kept\n`
          : `gc: ${garbage.length} to destroy, ${entries.length - garbage.length} to keep (dry run: add --yes to destroy)\n`);
    }
    return entries.some((e) => e.error) ? EXIT_CODES.failed : EXIT_CODES.completed;
  },
};

function label(e: GcEntry, destroy: boolean): string {
  if (e.action === 'keep') return 'keep   ';
  if (!destroy) return 'garbage';
  return e.destroyed ? 'removed' : 'FAILED ';
}
