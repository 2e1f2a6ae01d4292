/**
 * `watch <id>` and `upgrade start <plan> [--wait]`: start and/or follow an
 * upgrade to its end; the exit code is the outcome's (EXIT_CODES).
 */
import { ERRORS, imagoError, isImagoError } from '../../lib/errors';
import { inspectPlanFile, type PlanInspection } from '../../plan/deep-check';
import { loadPlanFile } from '../../plan/load';
import { EXIT_CODES, type UpgradeStatus } from '../../workflows/status';
import { defaultWorkflowId, type ImagoClient, type UpgradeResult } from '../api';
import { printJson } from '../output';
import { Watcher } from '../watcher';
import { positiveInt, withClient, type CommandSpec, type Context } from './common';

/** Follows to the end. --json prints one status per line (NDJSON) and the result last. */
async function follow(c: ImagoClient, ctx: Context, id: string, intervalMs: number): Promise<UpgradeResult | null> {
  const watcher = new Watcher(ctx.io);
  const onStatus = (s: UpgradeStatus) => (ctx.json ? ctx.io.out(`${JSON.stringify({ status: s })}\n`) : watcher.onStatus(s));
  const result = await c.watch(id, onStatus, { intervalMs, signal: ctx.io.signal });
  if (result) {
    if (ctx.json) ctx.io.out(`${JSON.stringify({ result: { workflowId: result.workflowId, outcome: result.outcome, exitCode: result.exitCode, error: result.error } })}\n`);
    else watcher.finish(result);
  }
  return result;
}

/** Interrupted by the operator: the upgrade goes on; 130 as shells report SIGINT. */
const INTERRUPTED = 130;

const pollInterval = (ctx: Context) => positiveInt(ctx, 'interval-ms') ?? (ctx.io.isTTY ? 1_000 : 2_000);

export const watchCommand: CommandSpec = {
  name: 'watch', summary: 'Follow an upgrade until it ends; exit with its outcome code.', positionals: ['id'], connects: true,
  options: { 'interval-ms': { type: 'string' } },
  details: `  --interval-ms N   poll period (default 1000 on a TTY, 2000 otherwise)
  --json            one {"status":…} line per change, then {"result":…}

On a terminal the view is redrawn in place; otherwise one timestamped line is
printed per change, with only what changed (phase, every 10% of copy, tests,
compare verdict, gate, approval, cut-over, outcome, error).
Exit codes: 0 completed, 2 aborted, 3 failed, 4 rolled back, 5 timed out.`,
  run: (ctx) => {
    const intervalMs = pollInterval(ctx);
    return withClient(ctx, async (c) => (await follow(c, ctx, ctx.args.id, intervalMs))?.exitCode ?? INTERRUPTED);
  },
};

export const startCommand: CommandSpec = {
  name: 'upgrade start', summary: 'Validate a plan and start its upgrade; print the workflow id and web UI link.',
  positionals: ['plan'], connects: true,
  options: { wait: { type: 'boolean' }, 'interval-ms': { type: 'string' }, 'execution-timeout-ms': { type: 'string' }, 'task-queue': { type: 'string' }, 'workflow-id': { type: 'string' } },
  details: `  --wait                    follow the upgrade to its end (as 'imago watch') and exit with its outcome code
  --workflow-id ID          the upgrade's workflow id (default imago-<plan name>)
  --task-queue Q            the workers' task queue (env IMAGO_TASK_QUEUE; default "imago")
  --execution-timeout-ms N  Temporal execution timeout for the whole upgrade (ends as timed out, exit 5)
  --json                    print {workflowId, runId, url} (and the result with --wait)`,
  async run(ctx) {
    const plan = loadPlanFile(ctx.args.plan);
    const executionTimeoutMs = positiveInt(ctx, 'execution-timeout-ms');
    const intervalMs = pollInterval(ctx);
    const workflowId = ctx.values['workflow-id'] as string | undefined;
    if (workflowId !== undefined && !/^\S{1,200}$/.test(workflowId)) throw imagoError('CLIENT_USAGE', `--workflow-id '${workflowId}': expected 1 to 200 characters, no spaces`);
    return withClient(ctx, async (c) => {
      const taskQueue = (ctx.values['task-queue'] as string | undefined) ?? (ctx.io.env.IMAGO_TASK_QUEUE || undefined);
      const { handle: _handle, ...started } = await c.start(plan, { executionTimeoutMs, taskQueue, workflowId });
      if (ctx.json) ctx.io.out(`${JSON.stringify({ started })}\n`);
      else ctx.io.out(`started ${started.workflowId} (${plan.system} ${plan.from.version} → ${plan.to.version})\n  ${started.url}\n`);
      if (!ctx.values.wait) return EXIT_CODES.completed;
      return (await follow(c, ctx, started.workflowId, intervalMs))?.exitCode ?? INTERRUPTED;
    });
  },
};

export const planValidateCommand: CommandSpec = {
  name: 'plan validate', summary: 'Check a plan file and its files; list every error with its path (exit 1 when invalid).', positionals: ['file'],
  options: { offline: { type: 'boolean' } },
  details: `  --offline   do not apply the schema file to a throwaway MariaDB
  --json      print {"valid":bool,"errors":[...],"notChecked":[...]} instead

Checks the schema, the rules across keys, that the files exist, that the
conversion module loads and exports a ConversionModule, and that the schema
file applies to an empty database (when mariadbd is installed) with every
table the conversion writes.`,
  async run(ctx) {
    let report: PlanInspection;
    try {
      report = await inspectPlanFile(ctx.args.file, { offline: ctx.values.offline === true });
    } catch (err) {
      if (!isImagoError(err, 'IMAGO_PLAN_UNREADABLE')) throw err;
      if (ctx.json) printJson(ctx.io, { valid: false, code: err.code, errors: [err.detail], notChecked: [] });
      else ctx.io.err(`${ctx.args.file}: ${err.code}: ${err.detail}\n${err.hint}\n`);
      return EXIT_CODES.usage;
    }
    const { plan, errors, notChecked } = report;
    const skipped = notChecked.map((n) => `  not checked: ${n}\n`).join('');
    if (plan) {
      const workflowId = defaultWorkflowId(plan.name);
      if (ctx.json) printJson(ctx.io, { valid: true, errors: [], notChecked, name: plan.name, workflowId });
      else ctx.io.out(`${ctx.args.file}: valid plan '${plan.name}' (${plan.system} ${plan.from.version} → ${plan.to.version}); workflow id ${workflowId}\n${skipped}`);
      return EXIT_CODES.completed;
    }
    const spec = ERRORS.IMAGO_PLAN_INVALID;
    if (ctx.json) printJson(ctx.io, { valid: false, code: 'IMAGO_PLAN_INVALID', errors, notChecked });
    else ctx.io.err(`${ctx.args.file}: IMAGO_PLAN_INVALID: ${errors.length} error(s)\n${errors.map((e) => `  ${e}\n`).join('')}${skipped}${spec.hint}\n`);
    return EXIT_CODES.usage;
  },
};
