/**
 * `imago preflight <plan>`: the one preflight (activities/preflight) with
 * everything it can do from here — a scratch MariaDB for the schema file and
 * the conversion's samples — plus the Temporal namespace and its workers.
 * One report; exit 0 when nothing failed (warnings allowed), 1 otherwise.
 */
import { temporal } from '@temporalio/proto';
import { runPreflight, PREFLIGHT_GROUPS, type PreflightReport, type ReportBuilder } from '../../activities/preflight';
import { loadPlanFile } from '../../plan/load';
import { EXIT_CODES, TASK_QUEUE } from '../../workflows/status';
import { connect, type ConnectionSettings } from '../connection';
import { palette, printJson, type Palette } from '../output';
import { missingSearchAttributes } from '../server-setup';
import { positiveInt, settingsOf, type CommandSpec } from './common';

export const preflightCommand: CommandSpec = {
  name: 'preflight', positionals: ['plan'], connects: true,
  summary: 'Check everything an upgrade needs without starting it: one report, the fix for each problem (exit 1 if any fails).',
  options: { offline: { type: 'boolean' }, 'sample-rows': { type: 'string' }, 'task-queue': { type: 'string' } },
  details: `  --sample-rows N   rows of each Uold table converted into the scratch database (default 100)
  --offline         no scratch MariaDB: the schema file and the samples are not checked
  --task-queue Q    the workers' task queue (env IMAGO_TASK_QUEUE; default "${TASK_QUEUE}")
  --json            print the report: {ok, checks:[{group,name,status,detail,fix?,code?}], notChecked, ms}

Checks, read-only towards Uold and the interceptors:
  secrets       the plan's references resolve here (run it where the worker runs)
  uold          reachable as the replication user; log_bin, binlog_format=ROW,
                binlog_row_image=FULL, server_id; REPLICATION SLAVE, REPLICATION
                CLIENT on *.*, SELECT on the database (and nothing that writes)
  tables        every table has a primary key and is converted or ignored
  conversion    the module loads as the worker loads it
  unew schema   the schema file applies to an empty scratch MariaDB
  samples       the first rows of every converted table, converted and
                written into that schema (rolled back)
  interceptors  reachable with their token, not holding; hold timeout ≤ cap
  provider      local: mariadbd, the universes' folder, the app's command
  temporal      the namespace has Imago's search attributes; a worker polls
The upgrade's own preflight runs the same checks, but for the scratch database.`,
  async run(ctx) {
    const plan = loadPlanFile(ctx.args.plan);
    const settings = settingsOf(ctx);
    const taskQueue = (ctx.values['task-queue'] as string | undefined) ?? (ctx.io.env.IMAGO_TASK_QUEUE || TASK_QUEUE);
    // The worker's providers, loaded only when this command runs (they bring the AWS SDK).
    const { defaultProviders } = require('../../activities') as typeof import('../../activities');
    // Connecting starts now, beside the other checks: a server that does not answer costs its whole
    // connect timeout (5 s), which the scratch MariaDB's start then overlaps. The result is reported last.
    const temporal = connect(settings).then((conn) => ({ conn }), (err: unknown) => ({ err }));
    let checked = false;
    let report: PreflightReport;
    try {
      report = await runPreflight(plan, {
        providers: defaultProviders(),
        scratch: ctx.values.offline !== true,
        sampleRows: positiveInt(ctx, 'sample-rows'),
        extra: (r) => { checked = true; return checkTemporal(r, settings, taskQueue, temporal); },
      });
    } finally {
      // A preflight that ended before its Temporal check still closes the connection it opened.
      if (!checked) await temporal.then((t) => ('conn' in t ? t.conn.connection.close() : undefined)).catch(() => undefined);
    }
    if (ctx.json) printJson(ctx.io, report);
    else ctx.io.out(formatPreflight(report, `${ctx.args.plan}: plan '${plan.name}' (${plan.system} ${plan.from.version} → ${plan.to.version})`, palette(ctx.io)));
    return report.ok ? EXIT_CODES.completed : EXIT_CODES.usage;
  },
};

/** The namespace knows Imago's search attributes (without them no upgrade starts), and a worker polls the task queue. */
async function checkTemporal(r: ReportBuilder, settings: ConnectionSettings, taskQueue: string, connecting: Promise<{ conn: Awaited<ReturnType<typeof connect>> } | { err: unknown }>): Promise<void> {
  const where = `namespace '${settings.namespace}' at ${settings.address}`;
  const reached = await connecting;
  if ('err' in reached) {
    const err = reached.err as Error & { detail?: string };
    r.add('temporal', { name: 'server', status: 'fail', code: 'CLIENT_UNREACHABLE', detail: err.detail ?? err.message, fix: 'start Temporal (docs/first-upgrade.md), or give --address / TEMPORAL_ADDRESS' });
    return;
  }
  const { connection } = reached.conn;
  try {
    const missing = await missingSearchAttributes(connection, settings.namespace);
    r.add('temporal', missing.length
      ? { name: 'search attributes', status: 'fail', code: 'CLIENT_SEARCH_ATTRIBUTES_MISSING', detail: `${where} lacks ${missing.join(', ')}: no upgrade can start there`, fix: `imago server setup --address ${settings.address} --namespace ${settings.namespace}` }
      : { name: 'search attributes', status: 'ok', detail: `${where} has Imago's search attributes` });
    const tq = await connection.workflowService.describeTaskQueue({
      namespace: settings.namespace, taskQueue: { name: taskQueue }, taskQueueType: temporal.api.enums.v1.TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
    });
    const pollers = tq.pollers?.length ?? 0;
    r.add('temporal', pollers
      ? { name: 'worker', status: 'ok', detail: `${pollers} worker(s) poll task queue '${taskQueue}'` }
      : { name: 'worker', status: 'warn', detail: `no worker polls task queue '${taskQueue}' yet: an upgrade started now waits for one`, fix: `imago worker --address ${settings.address} --namespace ${settings.namespace}   # where the plan's secrets resolve` });
  } catch (err) {
    r.add('temporal', { name: 'namespace', status: 'fail', code: 'CLIENT_SERVER_REFUSED', detail: `${where}: ${(err as Error).message}` });
  } finally {
    await connection.close().catch(() => undefined);
  }
}

/** The report for people: a header with the counts, the checks by group, each failure's and warning's fix indented under it. */
export function formatPreflight(report: PreflightReport, title: string, p: Palette): string {
  const count = (s: string) => report.checks.filter((c) => c.status === s).length;
  const [failed, warned, ok] = [count('fail'), count('warn'), count('ok')];
  const verdict = failed ? p.red(`${failed} failed`) : p.green('ready');
  const lines = [`${p.bold('preflight')} ${title}: ${verdict}, ${warned} warning(s), ${ok} ok (${(report.ms / 1000).toFixed(1)} s)`];
  const width = Math.min(32, Math.max(...report.checks.map((c) => c.name.length)));
  const mark = { ok: p.green('ok  '), warn: p.yellow('warn'), fail: p.red('FAIL') };
  for (const group of PREFLIGHT_GROUPS) {
    const checks = report.checks.filter((c) => c.group === group);
    if (!checks.length) continue;
    lines.push('', p.bold(group));
    for (const c of checks) {
      lines.push(`  ${mark[c.status]}  ${c.name.padEnd(width)}  ${c.status === 'fail' && c.code ? `${c.code}: ` : ''}${c.detail}`);
      if (c.fix && c.status !== 'ok') lines.push(`        ${p.dim('fix:')}`, ...c.fix.split('\n').map((l) => `          ${p.cyan(l)}`));
    }
  }
  if (report.notChecked.length) lines.push('', p.bold('not checked'), ...report.notChecked.map((n) => `  - ${n}`));
  return `${lines.join('\n')}\n`;
}
