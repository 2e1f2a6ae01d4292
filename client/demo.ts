/**
 * The main job: a live upgrade of the sample auction site from v1 to v2.
 *
 *   npm run demo [-- --users 5000 --items 20000 --bids 80000 --rate 100 --keep]
 *
 * Starts (or reuses, via TEMPORAL_ADDRESS) a Temporal dev server with its web
 * UI, an Imago worker, the v1 site on its own MariaDB behind the ingress
 * interceptor, and the bidding-mix workload; then runs the upgrade to v2 with
 * automatic approval, shows its progress, and prints the outcome: the pause,
 * the writes verified, the compare verdict, the timings. Everything it started
 * is stopped at the end, unless --keep.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { Client, Connection } from '@temporalio/client';
import { Runtime } from '@temporalio/worker';
import { TemporalDevServer, waitForFrontend } from '../lib/temporal-server';
import { freePort } from '../lib/ports';
import { createWorker } from '../worker/run';
import { startUoldStage } from '../examples/auction/stage';
import { startWorkload } from '../examples/auction/workload/generator';
import { checkLedger } from '../examples/auction/ledger-checker';
import { IngressControlClient, atomicityOf } from '../interceptors/ingress';
import { LocalProvider } from '../providers/local/local-provider';
import { loadPlanFile } from '../plan/load';
import { statusQuery } from '../workflows/messages';
import { TASK_QUEUE, WORKFLOW_TYPE, type UpgradeStatus } from '../workflows/status';
import { formatDuration, palette, processIo, progressBar, table } from './output';

const say = (msg: string) => console.log(`[demo] ${msg}`);

async function main(): Promise<number> {
  const { values } = parseArgs({ options: {
    users: { type: 'string', default: '5000' }, items: { type: 'string', default: '20000' }, bids: { type: 'string', default: '80000' },
    rate: { type: 'string', default: '100' }, keep: { type: 'boolean', default: false }, help: { type: 'boolean', short: 'h' },
  } });
  if (values.help) { console.log('usage: npm run demo [-- --users N --items N --bids N --rate REQ_PER_S --keep]'); return 0; }
  const size = { users: Number(values.users), items: Number(values.items), bids: Number(values.bids) };
  for (const [k, v] of Object.entries({ ...size, rate: Number(values.rate) })) {
    if (!Number.isInteger(v) || v < 1) { console.error(`--${k} must be a positive integer`); return 1; }
  }
  Runtime.install({ logger: new (require('@temporalio/worker').DefaultLogger)('WARN') });
  const pal = palette(processIo());
  const workDir = path.resolve('.imago', `demo-${Date.now()}`);
  fs.mkdirSync(workDir, { recursive: true });
  const cleanup: Array<() => Promise<void>> = [];
  const stopAll = async () => { for (const fn of cleanup.splice(0).reverse()) await fn().catch((e) => say(`clean-up: ${e.message}`)); };
  process.once('SIGINT', () => { say('interrupted: cleaning up'); void stopAll().then(() => process.exit(130)); });

  try {
    // 1. Temporal: reuse TEMPORAL_ADDRESS if it answers, else start a dev server with its web UI.
    let address = process.env.TEMPORAL_ADDRESS;
    let uiUrl = process.env.IMAGO_UI_URL ?? 'http://127.0.0.1:8233';
    if (address) {
      await waitForFrontend(address, 'default', 5_000);
      say(`using the Temporal server at ${address}`);
    } else {
      const port = await freePort();
      const uiPort = await portOr(8233);
      const server = await new TemporalDevServer({ port, uiPort, dbFile: path.join(workDir, 'temporal.db'), logFile: path.join(workDir, 'temporal.log') }).start();
      cleanup.push(() => server.stop());
      address = server.address;
      uiUrl = server.uiUrl!;
      say(`Temporal dev server at ${address}; web UI at ${uiUrl}`);
    }
    const connection = await Connection.connect({ address });
    cleanup.push(() => connection.close());
    const client = new Client({ connection });

    // 2. The live old universe and its clients.
    const stage = await startUoldStage({ ...size, dir: path.join(workDir, 'stage'), generalLog: false, log: say });
    cleanup.push(() => stage.stop());
    Object.assign(process.env, stage.env);
    say(`seeded ${stage.seeded.rows} rows in ${formatDuration(stage.seeded.ms)}`);
    const load = startWorkload({ baseUrl: stage.url, mix: 'bidding', rate: Number(values.rate), durationMs: 30 * 60_000, users: [1, size.users], items: [1, size.items], seed: 42 });
    cleanup.push(async () => { load.stop(); await load.done; });
    say(`bidding-mix workload: ${values.rate} req/s through the interceptor at ${stage.url}`);

    // 3. The worker.
    const { worker, close } = await createWorker({ address });
    const running = worker.run();
    cleanup.push(async () => { worker.shutdown(); await running; await close(); });

    // 4. The upgrade.
    const plan = loadPlanFile(stage.writePlan());
    const upgradeId = `demo-${Date.now()}`;
    const handle = await client.workflow.start(WORKFLOW_TYPE, { taskQueue: TASK_QUEUE, workflowId: upgradeId, args: [{ upgradeId, plan }] });
    cleanup.push(async () => { if (!values.keep) await new LocalProvider().destroy(upgradeId, { ...plan.unew }); });
    say(`upgrade ${upgradeId} started: ${uiUrl}/namespaces/default/workflows/${upgradeId}`);
    let last = '';
    const watch = setInterval(async () => {
      const st = await handle.query(statusQuery).catch(() => null);
      if (!st) return;
      const t = st.transfer;
      const line = `${st.phase.padEnd(17)} ${t ? `copy ${progressBar(t.percent, 20)} ${t.percent.toFixed(1)}% ${t.rowsPerSec} rows/s lag ${t.lagMs ?? '-'} ms` : ''}`;
      if (line !== last) { console.log(`  ${line}`); last = line; }
    }, 1_000);
    let status: UpgradeStatus;
    try { status = await handle.result(); } catch (err) {
      clearInterval(watch);
      status = await handle.query(statusQuery);
      say(pal.red(`upgrade ${status.outcome}: ${status.lastError ?? (err as Error).message}`));
      return 3;
    }
    clearInterval(watch);
    load.stop();
    const w = await load.done;

    // 5. The outcome, with the evidence.
    const ledger = await checkLedger(fs.readFileSync(path.join(stage.dir, 'universes', upgradeId, 'admin.url'), 'utf8').trim(), 'v2', w.ledger);
    const served = await new IngressControlClient(stage.controlUrl, stage.token).servedAll(0);
    const mixed = atomicityOf(served).violations;
    const cut = status.cutovers.at(-1)!;
    const termStart = status.timings.find((x) => x.phase === 'termination')?.startedAt ?? 0;
    const runStart = Date.now() - w.elapsedMs;
    const around = w.timeline.filter((b) => Math.abs(runStart + b.t - termStart) < 5_000);
    const pause = Math.max(0, ...around.map((b) => b.max));
    console.log('');
    console.log(pal.bold(`Upgrade ${status.outcome}: ${plan.system} ${plan.from.version} → ${plan.to.version}`));
    console.log(table([
      ['cut-over (hold → release)', `${cut.totalMs.toFixed(1)} ms (hold ${cut.holdMs.toFixed(1)}, drain ${cut.drainMs.toFixed(1)}, flush ${cut.flushMs.toFixed(1)}, verify ${cut.verifyMs} ms, switch ${cut.switchMs.toFixed(1)}, release ${cut.releaseMs.toFixed(1)})`],
      ['largest client latency around the switch', `${pause} ms`],
      ['client requests', `${w.requests} (${w.errors} failed, ${w.rejected} business rejections)`],
      ['acknowledged writes in Unew', `${ledger.checked} checked: ${ledger.missing.length} missing, ${ledger.duplicated.length} duplicated, ${ledger.altered.length} altered`],
      ['served by Uold after Unew began', `${mixed}`],
      ['data verification', `${status.verification?.checked ?? 0} rows, ${status.verification?.differences ?? '-'} differences`],
      ['compare verdict', `${status.gate?.compare?.pass ? 'pass' : 'fail'} on ${status.gate?.compare?.samples ?? 0} mirrored requests`],
      ['tests', `${status.gate?.tests.passed ?? 0} passed, ${status.gate?.tests.failed ?? 0} failed`],
      ...status.timings.filter((x) => x.endedAt).map((x) => [`phase ${x.phase}`, formatDuration(x.endedAt! - x.startedAt)]),
    ]));
    console.log(`\nSee it in Temporal's web UI: ${uiUrl}/namespaces/default/workflows/${upgradeId}`);
    if (values.keep) {
      say(`--keep: the site stays up at ${stage.url} (now served by v2); Ctrl-C to stop everything`);
      await new Promise(() => undefined);
    }
    const ok = status.outcome === 'completed' && w.errors === 0 && mixed === 0 && ledger.missing.length + ledger.duplicated.length + ledger.altered.length === 0;
    return ok ? 0 : 3;
  } finally {
    await stopAll();
  }
}

async function portOr(preferred: number): Promise<number> {
  const net = await import('node:net');
  return new Promise((resolve) => {
    const s = net.createServer().once('error', () => void freePort().then(resolve)).listen(preferred, '127.0.0.1', () => s.close(() => resolve(preferred)));
  });
}

main().then((code) => process.exit(code), (err) => { console.error(err?.stack ?? err); process.exit(1); });
