/**
 * The history benchmark: how fast an upgrade's workflow history grows while
 * nothing happens — Unew following Uold during the copy, and the upgrade
 * held in awaiting-approval — under the auction's bidding mix.
 *
 *   npx tsx benchmarks/history.ts [--rate 50] [--wait-s 120] [--copy-items 60000] [--suggest-can N]
 *
 * Prints events per hour while copying, while following (awaiting approval),
 * the history's bytes, and the number of runs (continue-as-new). With
 * --suggest-can N the dev server suggests continue-as-new from N events (as a
 * days-long upgrade would meet its 10,240-event suggestion) and the runs are
 * counted. Target: ≤ 60 events an hour while following or awaiting approval
 * (the per-tick progress signals of the earlier design made 6,800 an hour at
 * this rate, and Temporal ends a run at 51,200 events).
 */
import { parseArgs } from 'node:util';
import { Client, Connection, type WorkflowHandle } from '@temporalio/client';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { ImagoClient } from '../client/api';
import { startUoldStage } from '../examples/auction/stage';
import { startWorkload } from '../examples/auction/workload/generator';
import { hardwareLine } from '../lib/hardware';
import { TemporalDevServer } from '../lib/temporal-server';
import { loadPlanFile } from '../plan/load';
import { createWorker } from '../worker/run';
import { statusQuery } from '../workflows/messages';

const TARGET_PER_HOUR = 60;

async function main(): Promise<void> {
  const { values } = parseArgs({ options: {
    rate: { type: 'string', default: '50' }, 'wait-s': { type: 'string', default: '120' },
    'copy-items': { type: 'string', default: '60000' }, 'suggest-can': { type: 'string' },
  } });
  Runtime.install({ logger: new DefaultLogger('WARN') });
  const waitMs = Number(values['wait-s']) * 1_000;
  const size = { users: 5_000, items: Number(values['copy-items']), bids: Number(values['copy-items']) * 2 };
  const server = await new TemporalDevServer(values['suggest-can'] ? { dynamicConfig: { 'limit.historyCount.suggestContinueAsNew': Number(values['suggest-can']) } } : {}).start();
  const stage = await startUoldStage({ ...size, log: (m) => console.log(`# ${m}`) });
  Object.assign(process.env, stage.env);
  const { worker, close } = await createWorker({ address: server.address, taskQueue: 'history-bench' });
  const running = worker.run();
  const connection = await Connection.connect({ address: server.address });
  const client = new Client({ connection });
  const load = startWorkload({ baseUrl: stage.url, mix: 'bidding', rate: Number(values.rate), durationMs: 60 * 60_000, users: [1, size.users], items: [1, size.items], seed: 5 });
  const imago = ImagoClient.fromClient(client);
  try {
    const plan = loadPlanFile(stage.writePlan((p) => { p.name = 'history-bench'; p.approval.policy = 'manual'; p.transfer.chunkSize = 500; }));
    const { workflowId } = await imago.start(plan, { taskQueue: 'history-bench' });
    const handle = client.workflow.getHandle(workflowId);
    // While copying: from the transfer's start to its end (the copy of this many rows lasts a while).
    await waitFor(handle, (s) => s.phase === 'data-transfer');
    const copy0 = await sample(handle);
    await waitFor(handle, (s) => s.phase !== 'data-transfer');
    const copy1 = await sample(handle);
    // While awaiting approval: Unew follows Uold under the load.
    await waitFor(handle, (s) => s.phase === 'awaiting-approval');
    await new Promise((r) => setTimeout(r, 3_000));
    const wait0 = await sample(handle);
    await new Promise((r) => setTimeout(r, waitMs));
    const wait1 = await sample(handle);
    const live = await imago.status(workflowId);
    const st = await handle.query(statusQuery);
    const perHour = (a: Sample, b: Sample) => (b.runId === a.runId ? ((b.events - a.events) / ((b.at - a.at) / 3_600_000)) : NaN);
    const rows: Array<[string, string]> = [
      ['copy: duration', `${((copy1.at - copy0.at) / 1000).toFixed(1)} s (${st.transfer?.totalRows ?? '?'} rows)`],
      ['copy: events', copy0.runId === copy1.runId ? `${copy1.events - copy0.events} (the transfer's start and its edges — started, copy done, caught up — none per tick: a longer copy adds none)` : `(continued as new during the copy: ${st.continuations.length} time(s))`],
      ['awaiting approval: events per hour', `${perHour(wait0, wait1).toFixed(1)} over ${(waitMs / 1000).toFixed(0)} s (target ≤ ${TARGET_PER_HOUR})`],
      ['history now', `${wait1.events} events, ${(wait1.bytes / 1024).toFixed(1)} KiB (run ${st.runs})`],
      ['runs (1 + continue-as-new)', `${st.runs}${st.continuations.length ? `: ${st.continuations.map((c) => `→ ${c.resumeAt} at ${c.historyLength} events`).join(', ')}` : ''}`],
      ['status still informative', `transfer ${live.transfer?.phase}, lag ${live.transfer?.lagMs} ms, progress ${live.transfer?.percent}% (from the transfer's heartbeat, ${Math.round((Date.now() - (live.transfer?.at ?? 0)) / 1000)} s old)`],
    ];
    console.log(`\n# ${hardwareLine()}\n# bidding mix at ${values.rate} req/s through the interceptor\n`);
    for (const [k, v] of rows) console.log(`${k.padEnd(36)} ${v}`);
    console.log(JSON.stringify({ copyEvents: copy1.events - copy0.events, copySeconds: Math.round((copy1.at - copy0.at) / 1000), waitEventsPerHour: Math.round(perHour(wait0, wait1) * 10) / 10, historyBytes: wait1.bytes, runs: st.runs, targetPerHour: TARGET_PER_HOUR }));
    await imago.abort(workflowId, 'benchmark done');
    await handle.result().catch(() => undefined);
  } finally {
    load.stop();
    await load.done;
    worker.shutdown();
    await running;
    await close();
    await stage.stop();
    await connection.close();
    await server.stop();
  }
}

interface Sample { at: number; events: number; bytes: number; runId: string }

async function sample(handle: WorkflowHandle): Promise<Sample> {
  const d = await handle.describe();
  return { at: Date.now(), events: d.historyLength, bytes: d.historySize ?? 0, runId: d.runId };
}

async function waitFor(handle: WorkflowHandle, pred: (s: Awaited<ReturnType<WorkflowHandle['query']>> & { phase: string }) => boolean): Promise<void> {
  for (;;) {
    const s = await handle.query(statusQuery).catch(() => null);
    if (s && pred(s as never)) return;
    if (s && ['aborted', 'failed', 'completed'].includes(s.phase)) throw new Error(`the upgrade ended (${s.phase}): ${s.lastError}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

main().then(() => process.exit(0), (err) => { console.error(err); process.exit(1); });
