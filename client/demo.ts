/**
 * The main job: a live upgrade of the sample auction site from v1 to v2.
 *
 *   npm run demo [-- --users 5000 --items 20000 --bids 80000 --rate 100 --keep]
 *
 * Starts (or reuses, via TEMPORAL_ADDRESS) a Temporal dev server with its web
 * UI, an Imago worker, the v1 site on its own MariaDB behind the ingress
 * interceptor, and the bidding-mix workload; then runs the upgrade to v2 with
 * automatic approval, shows its progress, and prints the outcome: the pause,
 * the writes verified, every failed request with its time in the phases, the
 * compare verdict, the timings, and the HTML report.
 *
 * Everything lives in one folder, .imago/demo-<time>/. On every exit path
 * (the end, an error, SIGINT, SIGTERM) the demo stops everything it started;
 * then, unless --keep, it removes its data and keeps only the report and the
 * logs it names, in that folder. With --keep the site stays up until Ctrl-C,
 * and the data stays on disk.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { Client, Connection } from '@temporalio/client';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { TemporalDevServer, waitForFrontend } from '../lib/temporal-server';
import { freePort } from '../lib/ports';
import { createWorker } from '../worker/run';
import { startUoldStage } from '../examples/auction/stage';
import { startWorkload, type FailedRequest } from '../examples/auction/workload/generator';
import { checkLedger } from '../examples/auction/ledger-checker';
import { IngressControlClient, atomicityOf } from '../interceptors/ingress';
import { loadPlanFile } from '../plan/load';
import type { UpgradeStatus } from '../workflows/status';
import { ImagoClient } from './api';
import { failureLines, splitFailures } from './demo/outcome';
import { sweep, Teardown } from './demo/teardown';
import { WorkDir } from './demo/workdir';
import { formatDuration, formatMs, formatNumber, palette, processIo, progressBar, table } from './output';
import { renderReport } from './report/html';
import { describeActiveSampling, describeShadowWrites } from '../compare/report';
import { LOAD_TEST_NAME } from '../activities/load-test';
import { setupServer } from './server-setup';

const say = (msg: string) => console.log(`[demo] ${msg}`);
const USAGE = 'usage: npm run demo [-- --users N --items N --bids N --rate REQ_PER_S --keep]';

interface DemoOptions { users: number; items: number; bids: number; rate: number; keep: boolean }

/** The options, checked once; null after printing the usage (help or an error, with its exit code). */
function parseOptions(argv: string[]): DemoOptions | { exit: number } {
  let values;
  try {
    ({ values } = parseArgs({ args: argv, strict: true, options: {
      users: { type: 'string', default: '5000' }, items: { type: 'string', default: '20000' }, bids: { type: 'string', default: '80000' },
      rate: { type: 'string', default: '100' }, keep: { type: 'boolean', default: false }, help: { type: 'boolean', short: 'h' },
    } }));
  } catch (err) {
    console.error(`demo: ${(err as Error).message}\n${USAGE}`);
    return { exit: 1 };
  }
  if (values.help) { console.log(USAGE); return { exit: 0 }; }
  const nums = { users: Number(values.users), items: Number(values.items), bids: Number(values.bids), rate: Number(values.rate) };
  const bad = Object.entries(nums).filter(([, v]) => !Number.isInteger(v) || v < 1).map(([k]) => `--${k} must be a positive integer`);
  if (bad.length) { console.error(`demo: ${bad.join('; ')}\n${USAGE}`); return { exit: 1 }; }
  return { ...nums, keep: values.keep === true };
}

/** What the run leaves for the outcome. */
interface RunState {
  work: WorkDir;
  teardown: Teardown;
  /** Aborted on SIGINT/SIGTERM: stops the watch and the --keep wait. */
  interrupted: AbortController;
  /** The run is over and, with --keep, waits for Ctrl-C: a signal then only ends the wait. */
  keeping: boolean;
  upgradeId?: string;
}

async function runDemo(opts: DemoOptions, run: RunState): Promise<number> {
  const { work, teardown } = run;
  const pal = palette(processIo());
  const stopped = () => run.interrupted.signal.aborted;

  // 1. Temporal: reuse TEMPORAL_ADDRESS if it answers, else start a dev server with its web UI.
  let address = process.env.TEMPORAL_ADDRESS;
  let uiUrl = process.env.IMAGO_UI_URL;
  if (address) {
    await waitForFrontend(address, 'default', 5_000);
    say(`using the Temporal server at ${address}`);
  } else {
    const uiPort = await portOr(8233);
    work.keep('temporal.log', work.path('temporal.log'), 'the Temporal dev server');
    const server = await new TemporalDevServer({ port: await freePort(), uiPort, dbFile: work.path('temporal.db'), logFile: work.path('temporal.log') }).start();
    teardown.push('the Temporal dev server', () => server.stop());
    address = server.address;
    uiUrl = server.uiUrl;
    say(`Temporal dev server at ${address}; web UI at ${uiUrl}`);
  }
  const connection = await Connection.connect({ address });
  teardown.push('the Temporal connection', () => connection.close());
  // Idempotent: the search attributes (a dev server we started has them already) and, when known, the UI's URL,
  // so `imago status <id>` in another terminal links to this UI too.
  const setup = await setupServer(connection, 'default', { uiUrl });
  if (setup.added.length) say(`registered Imago's search attributes on namespace 'default': ${setup.added.join(', ')}`);
  const imago = ImagoClient.fromClient(new Client({ connection }), { uiUrl: setup.uiUrl });
  if (stopped()) return 1;

  // 2. The live old universe and its clients.
  const stage = await startUoldStage({ users: opts.users, items: opts.items, bids: opts.bids, dir: work.path('stage'), generalLog: false, log: say });
  teardown.push("Uold (auction v1, its MariaDB, the interceptor) and Unew's leftovers", () => stage.stop(), 60_000);
  work.keep('uold-v1.log', path.join(stage.dir, 'uold-v1.log'), 'auction v1 (Uold)');
  work.keep('uold-mariadb.log', path.join(stage.dir, 'uold-db', 'error.log'), "Uold's MariaDB");
  Object.assign(process.env, stage.env);
  say(`seeded ${formatNumber(stage.seeded.rows)} rows in ${formatDuration(stage.seeded.ms)}`);
  const failures: FailedRequest[] = [];
  const load = startWorkload({
    baseUrl: stage.url, mix: 'bidding', rate: opts.rate, durationMs: 30 * 60_000, users: [1, opts.users], items: [1, opts.items], seed: 42,
    onFailure: (f) => { failures.push(f); },
  });
  teardown.push('the workload', async () => { load.stop(); await load.done; });
  say(`bidding-mix workload: ${opts.rate} req/s through the interceptor at ${stage.url}`);
  if (stopped()) return 1;

  // 3. The worker.
  const { worker, close } = await createWorker({ address });
  const running = worker.run();
  // A worker that dies mid-run would leave the upgrade waiting forever: say so and end the run.
  running.catch((err: Error) => {
    if (run.interrupted.signal.aborted) return;
    say(pal.red(`the worker stopped: ${err.message}`));
    run.interrupted.abort();
  });
  // Bounded: when the demo is interrupted, an activity may still run (the copy follows Uold until the switch) and the
  // worker waits for it; the processes it works on are stopped next, and the worker ends with this process anyway.
  teardown.push('the worker', async () => { if (worker.getState() === 'RUNNING') worker.shutdown(); await running.catch(() => undefined); await close(); }, 10_000);
  if (stopped()) return 1;

  // 4. The upgrade, started as every upgrade is: ImagoClient.start.
  const plan = loadPlanFile(stage.writePlan());
  const upgradeId = `demo-${Date.now()}`;
  run.upgradeId = upgradeId;
  const unewDir = path.join(stage.dir, 'universes', upgradeId);
  work.keep('unew-v2.log', path.join(unewDir, 'app.log'), 'auction v2 (Unew)');
  work.keep('unew-mariadb.log', path.join(unewDir, 'db', 'error.log'), "Unew's MariaDB");
  const started = await imago.start(plan, { workflowId: upgradeId });
  // Unew's folder goes with the universe: its logs are copied out first. On a server that outlives the demo
  // (TEMPORAL_ADDRESS), an upgrade cut short is terminated rather than left waiting for a worker that is gone.
  teardown.push("Unew's logs", async () => { work.collect('unew-v2.log'); work.collect('unew-mariadb.log'); });
  teardown.push('the upgrade workflow', async () => {
    const d = await started.handle.describe().catch(() => null);
    if (d?.status.name === 'RUNNING') await started.handle.terminate('the demo stopped');
  });
  say(`upgrade ${upgradeId} started: ${started.url}`);
  let last = '';
  const result = await imago.watch(upgradeId, (st) => {
    const t = st.transfer;
    const line = `${st.phase.padEnd(17)} ${t ? `copy ${progressBar(t.percent, 20)} ${formatNumber(t.percent, 1)}% ${formatNumber(t.rowsPerSec)} rows/s lag ${formatMs(t.lagMs)}` : ''}`;
    if (line !== last) { console.log(`  ${line.trimEnd()}`); last = line; }
  }, { intervalMs: 1_000, signal: run.interrupted.signal });
  if (!result) return 1; // interrupted: the teardown follows
  load.stop();
  const w = await load.done;
  const status = result.status;
  if (!status) { say(pal.red(`upgrade ${result.outcome}: ${result.error ?? 'no status'}`)); return 3; }

  // 5. The report, then the outcome with the evidence.
  fs.writeFileSync(work.path('report.html'), renderReport(status, { url: started.url }));
  work.keep('report.html', work.path('report.html'), "the upgrade's HTML report");
  const { failed, overload } = splitFailures(failures);
  console.log('');
  if (status.outcome !== 'completed') {
    say(pal.red(`upgrade ${status.outcome}: ${status.lastError ?? result.error ?? ''}`));
    say(`active sampling (rare endpoints): ${describeActiveSampling(status.compare)}`);
    say(`shadow writes (sandbox): ${describeShadowWrites(status.compare)}${sandboxLine(status)}`);
    printFailures(failures, status, work);
    return 3;
  }
  const ledger = await checkLedger(fs.readFileSync(path.join(unewDir, 'admin.url'), 'utf8').trim(), 'v2', w.ledger);
  const served = await new IngressControlClient(stage.controlUrl, stage.token).servedAll(0);
  const mixed = atomicityOf(served).violations;
  const cut = status.cutovers.at(-1)!;
  const termStart = status.timings.find((x) => x.phase === 'termination')?.startedAt ?? 0;
  const runStart = Date.now() - w.elapsedMs;
  const around = w.timeline.filter((b) => Math.abs(runStart + b.t - termStart) < 5_000);
  const pause = Math.max(0, ...around.map((b) => b.max));
  console.log(pal.bold(`Upgrade ${status.outcome}: ${plan.system} ${plan.from.version} → ${plan.to.version}`));
  console.log(table([
    ['cut-over (hold → release)', `${formatMs(cut.totalMs)} (hold ${formatMs(cut.holdMs)}, drain ${formatMs(cut.drainMs)}, flush ${formatMs(cut.flushMs)}, verify ${formatMs(cut.verifyMs)}, smoke test ${formatMs(cut.smokeMs ?? 0)}, `
      + `switch ${formatMs(cut.switchMs)}, record ${formatMs(cut.recordMs)}, release ${formatMs(cut.releaseMs)}; attempt ${cut.attempt}, ${cut.mode})`],
    ['largest client latency around the switch', formatMs(pause)],
    ['client requests', `${formatNumber(w.requests - overload.length)} sent: ${formatNumber(failed.length)} failed, ${formatNumber(w.rejected)} business rejections (409)`
      + (overload.length ? `; ${formatNumber(overload.length)} not sent (load generator overload)` : '')],
    ['acknowledged writes in Unew', `${formatNumber(ledger.checked)} checked: ${ledger.missing.length} missing, ${ledger.duplicated.length} duplicated, ${ledger.altered.length} altered`],
    ['served by Uold after Unew began', `${mixed}`],
    ['data verification', `${formatNumber(status.verification?.checked ?? 0)} rows, ${status.verification?.differences ?? '-'} differences`],
    ['compare verdict', `${status.gate?.compare?.pass ? 'pass' : 'fail'} on ${formatNumber(status.gate?.compare?.samples ?? 0)} mirrored requests`],
    ['active sampling (rare endpoints)', describeActiveSampling(status.compare)],
    ['load test', status.tests.find((t) => t.name === LOAD_TEST_NAME)?.output.split('\n').find((l) => l.startsWith('load:'))?.slice(6) ?? 'not run (loadTest.enabled: false)'],
    ['shadow writes (sandbox)', `${describeShadowWrites(status.compare)}${sandboxLine(status)}`],
    ['tests', `${status.gate?.tests.passed ?? 0} passed, ${status.gate?.tests.failed ?? 0} failed`],
    ...status.timings.filter((x) => x.endedAt).map((x) => [`phase ${x.phase}`, formatDuration(x.endedAt! - x.startedAt)]),
  ]));
  printFailures(failures, status, work);
  console.log(`See it in Temporal's web UI: ${started.url}${opts.keep ? '' : ' (the dev server stops with the demo; --keep keeps it up)'}`);
  const ok = failed.length === 0 && mixed === 0 && ledger.missing.length + ledger.duplicated.length + ledger.altered.length === 0;
  if (opts.keep) {
    say(`--keep: the site stays up at ${stage.url} (now served by v2), with the web UI; Ctrl-C to stop everything`);
    run.keeping = true;
    await new Promise<void>((resolve) => run.interrupted.signal.addEventListener('abort', () => resolve(), { once: true }));
  }
  return ok ? 0 : 3;
}

/** Where the sandbox was and that it is gone, or why there was none. */
function sandboxLine(status: UpgradeStatus): string {
  const sb = status.sandbox;
  if (!sb) return '';
  if ('none' in sb) return ` — ${sb.none}`;
  return ` — sandbox cloned in ${formatMs(sb.cloneMs)} at position ${sb.position || '-'}, up in ${formatMs(sb.startMs)}, ${sb.destroyedAt ? 'removed after testing' : 'NOT removed'}`;
}

/** At most this many failed requests on the screen; all of them, when there are more, in failed-requests.txt. */
const FAILURES_ON_SCREEN = 50;

function printFailures(failures: FailedRequest[], status: UpgradeStatus, work: WorkDir): void {
  let fullList: string | undefined;
  if (splitFailures(failures).failed.length > FAILURES_ON_SCREEN) {
    fullList = work.path('failed-requests.txt');
    fs.writeFileSync(fullList, `${failureLines(failures, status.timings, { max: Number.MAX_SAFE_INTEGER }).join('\n')}\n`);
    work.keep('failed-requests.txt', fullList, 'every failed client request, with its time in the phases');
  }
  const lines = failureLines(failures, status.timings, { max: FAILURES_ON_SCREEN, fullList });
  if (lines.length) console.log(`${lines.join('\n')}\n`);
}

async function portOr(preferred: number): Promise<number> {
  const net = await import('node:net');
  return new Promise((resolve) => {
    const s = net.createServer().once('error', () => void freePort().then(resolve)).listen(preferred, '127.0.0.1', () => s.close(() => resolve(preferred)));
  });
}

async function main(): Promise<void> {
  const opts = parseOptions(process.argv.slice(2));
  if ('exit' in opts) process.exit(opts.exit);
  // The SDK's warnings (an activity completing after its workflow was terminated, when interrupted) are not the user's business.
  Runtime.install({ logger: new DefaultLogger('WARN'), telemetryOptions: { logging: { filter: { core: 'ERROR', other: 'ERROR' } } } });
  const work = WorkDir.create(path.resolve('.imago'));
  // Every process this run starts inherits the marker (Unew's application carries IMAGO_UNIVERSE instead),
  // so the last step of any exit finds whatever a graceful stop missed.
  process.env.IMAGO_DEMO_RUN = work.id;
  const run: RunState = { work, teardown: new Teardown(), interrupted: new AbortController(), keeping: false };
  say(`working folder ${path.relative(process.cwd(), work.dir) || work.dir}`);

  let finishing: Promise<never> | null = null;
  const finish = (code: number, why: string): Promise<never> => {
    finishing ??= (async () => {
      await run.teardown.run(say);
      const killed = sweep((env) => env.IMAGO_DEMO_RUN === work.id || (!!run.upgradeId && env.IMAGO_UNIVERSE === run.upgradeId));
      if (killed.length) say(`stopped ${killed.length} process(es) left after the graceful stops: ${killed.join(', ')}`);
      if (opts.keep) {
        say(`--keep: everything stopped; the report, the logs, Uold's and Temporal's databases stay in ${work.dir} (Unew's universe went with the stage)`);
      } else {
        const kept = work.prune();
        const size = kept.reduce((a, k) => a + k.bytes, 0);
        say(`${why}; the working data is removed. Kept in ${work.dir} (${formatNumber(size / 1024)} KB):`);
        for (const k of kept) console.log(`  ${k.name.padEnd(18)} ${k.what}`);
      }
      process.exit(code);
    })();
    return finishing;
  };
  const onSignal = (signal: NodeJS.Signals) => {
    if (run.interrupted.signal.aborted) { say(`${signal} again: still stopping what the demo started`); return; }
    say(`${signal}: stopping everything the demo started`);
    run.interrupted.abort();
    // Mid-run, stop now, whatever the run is waiting for; after a --keep run, main() finishes with its result.
    if (!run.keeping) void finish(signal === 'SIGINT' ? 130 : 143, `stopped by ${signal}`);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const onCrash = (err: unknown) => { console.error(`[demo] unexpected: ${(err as Error)?.stack ?? err}`); void finish(1, 'stopped by an unexpected error'); };
  process.on('uncaughtException', onCrash);
  process.on('unhandledRejection', onCrash);

  let code: number;
  try {
    code = await runDemo(opts, run);
  } catch (err) {
    // An error while interrupted is the interruption's doing (a server stopped under a call): not worth a word.
    if (!run.interrupted.signal.aborted) console.error(`[demo] ${(err as Error)?.message ?? err}`);
    code = 1;
  }
  await finish(code, code === 0 ? 'done' : `ended with exit code ${code}`);
}

void main();
