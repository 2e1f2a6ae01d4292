/**
 * The upgrade benchmark (issue 7): a whole upgrade of the auction site under
 * the bidding mix, measured in one run.
 *   npx tsx benchmarks/upgrade.ts [--rate 200] [--mix bidding|bidding-indexed] [--items 100000] [--users 10000] [--bids 200000] [--verify-nice R]
 * Prints: the pause (largest client latency added from termination start to
 * 1 s after the switchover, and the cut-over's own timings), apart from it the
 * cost to clients of the testing phase (its full verification reads all of Uold), total time split by phase, and
 * the share spent in orchestration — time in which no activity of the upgrade
 * was running (scheduling, workflow tasks, waits for signals) — against the
 * work itself. Bounded: the workload stops at the upgrade's end (at the latest after 6 h, for
 * the largest sizes), everything is stopped.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { Client, Connection } from '@temporalio/client';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { hardwareLine } from '../lib/hardware';
import { TemporalDevServer } from '../lib/temporal-server';
import { createWorker } from '../worker/run';
import { startUoldStage } from '../examples/auction/stage';
import { startWorkload } from '../examples/auction/workload/generator';
import { loadPlanFile } from '../plan/load';
import type { UpgradeStatus } from '../workflows/status';
import { ImagoClient } from '../client/api';
import { transferHeartbeat } from '../client/live-status';

async function main() {
  const { values } = parseArgs({ options: {
    rate: { type: 'string', default: '200' }, items: { type: 'string', default: '100000' },
    users: { type: 'string', default: '10000' }, bids: { type: 'string', default: '200000' },
    mix: { type: 'string', default: 'bidding' }, 'verify-nice': { type: 'string' },
  } });
  Runtime.install({ logger: new DefaultLogger('WARN') });
  const size = { users: Number(values.users), items: Number(values.items), bids: Number(values.bids) };
  // Whatever fails, everything started so far is stopped, last started first.
  const started: Array<() => Promise<unknown>> = [];
  const stopAll = async () => { for (const stop of started.reverse()) await stop().catch((e) => console.error(`# stopping: ${(e as Error).message}`)); };
  try {
    const server = await new TemporalDevServer().start();
    started.push(() => server.stop());
    const stage = await startUoldStage({ ...size, log: (m) => console.log(`# ${m}`) });
    started.push(() => stage.stop());
    Object.assign(process.env, stage.env);
    const { worker, close } = await createWorker({ address: server.address });
    const running = worker.run();
    started.push(async () => { worker.shutdown(); await running; await close(); });
    const connection = await Connection.connect({ address: server.address });
    started.push(() => connection.close());
    await run(values, size, stage, new Client({ connection }));
  } finally {
    await stopAll();
  }
}

async function run(values: Record<string, string | undefined>, size: { users: number; items: number; bids: number }, stage: Awaited<ReturnType<typeof startUoldStage>>, client: Client) {
  const load = startWorkload({ baseUrl: stage.url, mix: values.mix as 'bidding', rate: Number(values.rate), durationMs: 6 * 3600_000, users: [1, size.users], items: [1, size.items], seed: 3 });
  const started = Date.now();
  // Event-loop stalls of this process (ingress, clients and, in-process, the worker): a stall
  // delays every client here, whatever the upgrade does, so the pause figure must be read with it.
  const stalls: Array<{ at: number; ms: number }> = [];
  let tick = Date.now();
  const sampler = setInterval(() => { const now = Date.now(); if (now - tick > 60) stalls.push({ at: now, ms: now - tick - 10 }); tick = now; }, 10);
  try {
    const id = `bench-${Date.now()}`;
    const plan = loadPlanFile(stage.writePlan(values['verify-nice'] !== undefined ? (p) => { p.verify.niceRatio = Number(values['verify-nice']); } : undefined));
    const { handle: h } = await ImagoClient.fromClient(client).start(plan, { workflowId: id });
    // The copy's progress as the client sees it (the transfer's heartbeat), for its ETA and pace.
    const beats: Array<{ at: number; percent: number; eta: number | null; copied: number; phase: string }> = [];
    let copyEndedAt = 0;
    const watching = (async () => {
      while (!copyEndedAt) {
        const hb = await transferHeartbeat(client, h).catch(() => null);
        const s = hb?.beat.snapshot;
        if (s && s.phase === 'copy') beats.push({ at: Date.now(), percent: s.percent, eta: s.etaSec, copied: s.copiedRows, phase: s.phase });
        if (s && s.phase === 'following' && beats.length) copyEndedAt = Date.now();
        const closed = await h.describe().then((d) => d.status.name !== 'RUNNING', () => true);
        if (closed) break;
        await new Promise((r) => setTimeout(r, 2_000));
      }
    })();
    const status: UpgradeStatus = await h.result();
    await watching;
    load.stop();
    const w = await load.done;
    const runStart = Date.now() - w.elapsedMs;
    // Orchestration share: union of activity execution intervals vs the workflow's wall time.
    const intervals: Array<[number, number]> = [];
    const startedAt = new Map<string, number>();
    const names = new Map<string, string>();
    // The transfer activity runs until the switchover; it counts as work only while the
    // workflow waits for it (the data-transfer phase), not while it merely follows Uold.
    const transferEnd = status.timings.find((t) => t.phase === 'data-transfer')?.endedAt ?? Infinity;
    for (const e of (await h.fetchHistory()).events ?? []) {
      const t = Number(e.eventTime?.seconds ?? 0) * 1000 + Math.floor((e.eventTime?.nanos ?? 0) / 1e6);
      if (e.activityTaskScheduledEventAttributes) names.set(String(e.eventId), e.activityTaskScheduledEventAttributes.activityType?.name ?? '');
      if (e.activityTaskStartedEventAttributes) startedAt.set(String(e.activityTaskStartedEventAttributes.scheduledEventId), t);
      const done = e.activityTaskCompletedEventAttributes ?? e.activityTaskFailedEventAttributes ?? e.activityTaskCanceledEventAttributes;
      if (done) {
        const id = String(done.scheduledEventId);
        const s0 = startedAt.get(id);
        if (s0) intervals.push([s0, names.get(id) === 'runTransfer' ? Math.min(t, transferEnd) : t]);
      }
    }
    intervals.sort((a, b) => a[0] - b[0]);
    let busy = 0; let end = 0;
    for (const [a, b] of intervals) { if (b > end) { busy += b - Math.max(a, end); end = b; } }
    const wall = status.timings.at(-1)!.startedAt - status.timings[0].startedAt;
    const postWindow = status.timings.find((t) => t.phase === 'post-switchover');
    const waitedByDesign = (postWindow?.endedAt ?? 0) - (postWindow?.startedAt ?? 0) + plan.mirror.minDurationMs;
    const cut = status.cutovers.at(-1)!;
    const termStart = status.timings.find((t) => t.phase === 'termination')!.startedAt;
    // The pause: from termination start (nobody held yet) to 1 s after the switchover phase,
    // which covers hold, switch, release and Unew's first requests.
    const switchPhase = status.timings.find((t) => t.phase === 'switchover');
    const pauseEnd = (switchPhase?.endedAt ?? termStart) + 1_000;
    const inPause = w.timeline.filter((b) => runStart + b.t >= termStart - 100 && runStart + b.t <= pauseEnd);
    const baseline = w.timeline.filter((b) => runStart + b.t < termStart - 5_000 && runStart + b.t > termStart - 30_000);
    const p99Before = baseline.length ? baseline.map((b) => b.p99).sort((a, b) => a - b)[Math.floor(baseline.length / 2)] : 0;
    const worst = Math.max(0, ...inPause.map((b) => b.max));
    // The full verification (end of testing) reads every row of Uold while it serves: its cost to clients, apart.
    const testing = status.timings.find((t) => t.phase === 'testing');
    const inTesting = testing ? w.timeline.filter((b) => runStart + b.t >= testing.startedAt && runStart + b.t < (testing.endedAt ?? termStart)) : [];
    const worstTesting = Math.max(0, ...inTesting.map((b) => b.max));
    const stallsNear = stalls.filter((x) => x.at >= (testing?.startedAt ?? termStart) && x.at <= pauseEnd).map((x) => `${x.at - termStart} ms: ${x.ms} ms`);
    console.log(`\nhardware: ${hardwareLine()}; ${size.items} items, ${size.users} users, ${size.bids} bids; ${values.rate} req/s ${values.mix} mix`);
    console.log('| figure | value | target |\n|---|---|---|');
    console.log(`| outcome | ${status.outcome}; ${w.requests} requests, ${w.errors} failed | completed, 0 failed |`);
    console.log(`| cut-over hold → release | ${cut.totalMs.toFixed(1)} ms (hold ${cut.holdMs.toFixed(1)}, drain ${cut.drainMs.toFixed(1)}, flush ${cut.flushMs.toFixed(1)}, verify ${cut.verifyMs.toFixed(1)}, smoke test ${(cut.smokeMs ?? 0).toFixed(1)}, switch ${cut.switchMs.toFixed(1)}, release ${cut.releaseMs.toFixed(1)}) | |`);
    console.log(`| pause: largest client latency from termination start to 1 s after the switchover, minus the median p99 before | ${worst} - ${p99Before} = ${Math.max(0, worst - p99Before)} ms | ≤ 100 ms |`);
    console.log(`| testing phase (mirroring, compare, full verification with niceRatio ${plan.verify.niceRatio ?? 1}): largest client latency, minus the median p99 before | ${worstTesting} - ${p99Before} = ${Math.max(0, worstTesting - p99Before)} ms | |`);
    console.log(`| event-loop stalls > 50 ms of the benchmark process (ingress, clients, worker) from testing to the pause's end | ${stallsNear.length ? stallsNear.join('; ') : 'none'} | |`);
    for (const t of status.timings.filter((x) => x.endedAt)) console.log(`| phase ${t.phase} | ${((t.endedAt! - t.startedAt) / 1000).toFixed(1)} s | |`);
    // The ETA against the copy's actual end: from 10 % of the rows on, while at least 10 % of its time is left.
    if (beats.length && copyEndedAt) {
      const copyStart = beats[0].at;
      const total = copyEndedAt - copyStart;
      const errs = beats.filter((b) => b.percent >= 10 && b.eta !== null && copyEndedAt - b.at >= 0.1 * total)
        .map((b) => ({ at: b.at, pct: b.percent, err: Math.abs(b.eta! - (copyEndedAt - b.at) / 1000) / ((copyEndedAt - b.at) / 1000) }));
      const worst = errs.reduce((a, b) => (b.err > a.err ? b : a), { at: 0, pct: 0, err: 0 });
      const copied = beats[beats.length - 1].copied;
      console.log(`| copy (as the heartbeat shows it): ${copied} rows in ${(total / 1000).toFixed(1)} s | ${Math.round(copied / (total / 1000))} rows/s | |`);
      console.log(`| ETA error, worst of ${errs.length} samples from 10 % of the rows while ≥ 10 % of the copy's time was left | ${(100 * worst.err).toFixed(1)} % (at ${worst.pct} %) | ≤ 20 % |`);
      const at = (pct: number) => errs.find((e) => e.pct >= pct);
      console.log(`| ETA error at 10 / 25 / 50 / 75 % of the rows | ${[10, 25, 50, 75].map((p) => { const e = at(p); return e ? `${(100 * e.err).toFixed(1)} %` : '-'; }).join(' / ')} | |`);
    }
    console.log(`| orchestration share (no activity running, excluding the plan's deliberate waits of ${(waitedByDesign / 1000).toFixed(1)} s) | ${(100 * Math.max(0, wall - busy - waitedByDesign) / wall).toFixed(1)} % of ${(wall / 1000).toFixed(1)} s | ≤ 5 % |`);
    // Failed requests, explained: the applications' own error lines (Uold's v1 and Unew's v2).
    const logs = [path.join(stage.dir, 'uold-v1.log'), ...fs.readdirSync(path.join(stage.dir, 'universes')).map((u) => path.join(stage.dir, 'universes', u, 'app.log'))];
    for (const f of logs) {
      const lines = fs.existsSync(f) ? fs.readFileSync(f, 'utf8').split('\n').filter((l) => /internal error/.test(l)) : [];
      if (lines.length) console.log(`# ${lines.length} application error(s) in ${path.basename(path.dirname(f))}/${path.basename(f)}:\n#   ${lines.slice(0, 5).join('\n#   ')}`);
    }
  } finally {
    clearInterval(sampler);
    load.stop();
    await load.done.catch(() => undefined);
    console.log(`# total ${((Date.now() - started) / 1000).toFixed(0)} s`);
  }
}

main().catch((err) => { console.error(err); process.exit(1); });
