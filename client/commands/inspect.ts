/** Read-only commands: `status <id>` and `list`. */
import { EXIT_CODES } from '../../workflows/status';
import { palette, printJson, table } from '../output';
import { statusView } from '../watcher';
import { positiveInt, withClient, type CommandSpec } from './common';

export const statusCommand: CommandSpec = {
  name: 'status', summary: "Show an upgrade's phase, progress, tests and verdicts.", positionals: ['id'], connects: true,
  details: '  --json   the full status (workflows/status.ts UpgradeStatus) with the execution summary',
  run: (ctx) => withClient(ctx, async (c) => {
    const execution = await c.describe(ctx.args.id);
    const status = await c.status(execution.workflowId);
    if (ctx.json) { printJson(ctx.io, { workflowId: execution.workflowId, url: execution.url, execution, status }); return EXIT_CODES.completed; }
    const lines = statusView(status, palette(ctx.io));
    const summary = execution.staticSummary ? `${execution.staticSummary}\n` : '';
    ctx.io.out(`${summary}${lines.join('\n')}\nexecution ${execution.executionStatus.toLowerCase()}, started ${execution.startTime}${execution.closeTime ? `, closed ${execution.closeTime}` : ''}\n${execution.url}\n`);
    return EXIT_CODES.completed;
  }),
};

export const listCommand: CommandSpec = {
  name: 'list', summary: 'List upgrades by phase and outcome (search attributes).', connects: true,
  options: { phase: { type: 'string' }, outcome: { type: 'string' }, system: { type: 'string' }, limit: { type: 'string' } },
  details: `  --phase P      e.g. data-transfer, awaiting-approval, post-switchover
  --outcome O    running, completed, aborted, failed, rolled-back
  --system S     the plan's system
  --limit N      at most N rows (default 100)
  --json         an array of {workflowId, system, from, to, phase, outcome, executionStatus, startTime, closeTime, url}`,
  run: (ctx) => {
    const filter = { phase: ctx.values.phase as string | undefined, outcome: ctx.values.outcome as string | undefined,
      system: ctx.values.system as string | undefined, limit: positiveInt(ctx, 'limit') };
    return withClient(ctx, async (c) => {
      const rows = await c.list(filter);
      if (ctx.json) { printJson(ctx.io, rows); return EXIT_CODES.completed; }
      if (rows.length === 0) { ctx.io.out('no upgrades match\n'); return EXIT_CODES.completed; }
      ctx.io.out(table([['ID', 'SYSTEM', 'FROM→TO', 'PHASE', 'OUTCOME', 'STARTED'],
        ...rows.map((r) => [r.workflowId, r.system ?? '', `${r.from ?? '?'}→${r.to ?? '?'}`, r.phase ?? '', r.outcome ?? '', r.startTime])]));
      return EXIT_CODES.completed;
    });
  },
};
