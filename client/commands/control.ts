/**
 * The operator's verbs on a running upgrade: approve, abort, pause, resume,
 * throttle, finalize, rollback. Each is a workflow update; the workflow's
 * validator refuses one that is wrong for the phase, and nothing changes.
 */
import { imagoError } from '../../lib/errors';
import { EXIT_CODES } from '../../workflows/status';
import type { ImagoClient } from '../api';
import { printJson } from '../output';
import { positiveInt, ratio, requiredString, withClient, type CommandSpec, type Context } from './common';

/**
 * One verb: `prepare` reads and checks the options (a usage error is reported
 * before any connection is made) and returns the call to make.
 */
function verb(name: string, summary: string, prepare: (ctx: Context) => (c: ImagoClient, id: string) => Promise<unknown>, extra: Partial<CommandSpec> = {}): CommandSpec {
  return {
    name, summary, positionals: ['id'], connects: true, ...extra,
    async run(ctx) {
      const call = prepare(ctx);
      const { id, result, url } = await withClient(ctx, async (c) => {
        const workflowId = await c.resolve(ctx.args.id);
        return { id: workflowId, result: await call(c, workflowId), url: c.url(workflowId) };
      });
      if (ctx.json) printJson(ctx.io, { id, operation: name, result, url });
      else ctx.io.out(`${name}: ${typeof result === 'string' ? result : JSON.stringify(result)}\n`);
      return EXIT_CODES.completed;
    },
  };
}

export const controlCommands: CommandSpec[] = [
  verb('approve', 'Approve the switchover of an upgrade that is awaiting approval.',
    (ctx) => (c, id) => c.approve(id, (ctx.values.by as string | undefined) ?? ctx.io.env.USER, ctx.values.note as string | undefined),
    { options: { by: { type: 'string' }, note: { type: 'string' } }, details: '  --by NAME     who approves (default $USER)\n  --note TEXT   recorded with the approval' }),
  verb('abort', 'Abort an upgrade before the switchover: Unew is destroyed, Uold untouched.',
    (ctx) => { const reason = requiredString(ctx, 'reason', 'why the upgrade is aborted'); return (c, id) => c.abort(id, reason); },
    { options: { reason: { type: 'string' } }, details: '  --reason TEXT  required' }),
  verb('pause', 'Pause the data copy.', () => (c, id) => c.pause(id)),
  verb('resume', 'Resume a paused data copy.', () => (c, id) => c.resume(id)),
  verb('throttle', 'Change the copy chunk size and throttle thresholds while it runs.',
    (ctx) => {
      const change = { chunkSize: positiveInt(ctx, 'chunk-size'), maxThreadsRunning: positiveInt(ctx, 'max-threads-running'), maxLagMs: positiveInt(ctx, 'max-lag-ms'), niceRatio: ratio(ctx, 'nice-ratio') };
      const given = Object.fromEntries(Object.entries(change).filter(([, v]) => v !== undefined));
      if (Object.keys(given).length === 0) throw imagoError('CLIENT_USAGE', 'throttle needs at least one of --chunk-size, --max-threads-running, --max-lag-ms, --nice-ratio');
      return (c, id) => c.setThrottle(id, given);
    },
    { options: { 'chunk-size': { type: 'string' }, 'max-threads-running': { type: 'string' }, 'max-lag-ms': { type: 'string' }, 'nice-ratio': { type: 'string' } },
      details: '  --chunk-size N            rows per copy chunk\n  --max-threads-running N   throttle when Uold runs more threads\n  --max-lag-ms N            throttle when Unew lags more\n  --nice-ratio R            rest R times each chunk\'s time after it (0 to 100; 0: no rest)' }),
  verb('finalize', 'End the post-switchover window now; Uold is released per policy.', () => (c, id) => c.finalize(id)),
  {
    name: 'cutover check', positionals: ['id'], connects: true,
    summary: "Dry-run the cut-over now: every check and its figure, nobody held (exit 0 when all pass, 1 otherwise).",
    details: '  Runs on the worker, against the real interceptors, databases and provider: tokens, lag, the hold\n  budget against the measured drain + flush, the smoke test, the provider\'s preconditions.',
    async run(ctx) {
      const { id, report } = await withClient(ctx, async (c) => {
        const workflowId = await c.resolve(ctx.args.id);
        return { id: workflowId, report: await c.cutoverCheck(workflowId) };
      });
      if (ctx.json) printJson(ctx.io, { id, operation: 'cutover check', result: report });
      else {
        for (const c of report.checks) ctx.io.out(`${c.ok ? 'ok  ' : 'FAIL'}  ${c.step.padEnd(18)} ${c.name}${c.ms !== undefined ? ` (${c.ms} ms)` : ''}: ${c.detail}\n`);
        ctx.io.out(report.ok ? 'cut-over check: every check passed\n' : `cut-over check: ${report.checks.filter((c) => !c.ok).length} check(s) failed; the cut-over will not hold anyone until they pass\n`);
      }
      return report.ok ? EXIT_CODES.completed : EXIT_CODES.usage;
    },
  },
  verb('rollback', 'Return traffic to Uold during the post-switchover window.',
    (ctx) => { const reason = requiredString(ctx, 'reason', 'why traffic goes back to Uold'); return (c, id) => c.rollback(id, reason); },
    { options: { reason: { type: 'string' } }, details: '  --reason TEXT  required' }),
];

