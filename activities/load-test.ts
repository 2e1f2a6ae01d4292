/**
 * The load test (plan.loadTest): replays the requests the compare engine
 * recorded on live traffic — reads against Unew, writes against the sandbox
 * (never Unew; none without a sandbox) — in their live mix, open loop, at a
 * multiple of the peak rate Uold served, for durationMs. It never sends to
 * Uold. Its result is a plan test of the gate: errors and p99 per endpoint
 * against Uold's live figures (compare/load.ts).
 */
import { Context } from '@temporalio/activity';
import type { UpgradePlan } from '../plan/types';
import type { SandboxHandle, UnewHandle } from '../providers/provider';
import type { TestResult } from '../workflows/status';
import type { CompareReport } from '../compare/report-schema';
import type { RecordedRequest } from '../compare/types';
import { LoadTally, loadProblems, peakRate, replayOrder, targetRate, type LoadRule } from '../compare/load';
import { ingressClients } from './context';

export const LOAD_TEST_NAME = 'load test';
/** How recent Uold's traffic must be to count for its peak rate. */
const PEAK_WINDOW_MS = 10 * 60_000;
const REQUEST_TIMEOUT_MS = 10_000;

export async function runLoadTest(handle: UnewHandle, plan: UpgradePlan, sandbox: SandboxHandle | null, opts: { heartbeat?: (d: unknown) => void } = {}): Promise<TestResult> {
  const started = Date.now();
  const rule = plan.loadTest as LoadRule;
  let reads: RecordedRequest[] = [];
  let writes: RecordedRequest[] = [];
  let peak = 0;
  const uoldP99 = new Map<string, number>();
  for (const c of ingressClients(plan)) {
    const rec = await c.recorded();
    reads = reads.concat(rec.reads as RecordedRequest[]);
    writes = writes.concat(rec.writes as RecordedRequest[]);
    const tl = await c.timeline(Date.now() - PEAK_WINDOW_MS);
    peak += peakRate(tl.buckets, tl.bucketMs);
    const report = (await c.compare()).report as CompareReport | null;
    for (const e of report?.endpoints ?? []) if (e.latency) uoldP99.set(e.endpoint, Math.max(uoldP99.get(e.endpoint) ?? 0, e.latency.uoldP99));
  }
  return replayLoad({ reads, writes }, { peak, uoldP99, rule, unewUrl: handle.appUrls[0], sandboxUrl: sandbox?.appUrl ?? null, heartbeat: opts.heartbeat, started });
}

/** Sends the recorded mix at multiple × peak for durationMs and judges it: the part of the load test that touches only Unew and the sandbox. */
export async function replayLoad(
  recorded: { reads: RecordedRequest[]; writes: RecordedRequest[] },
  o: { peak: number; uoldP99: ReadonlyMap<string, number>; rule: LoadRule; unewUrl: string; sandboxUrl: string | null; heartbeat?: (d: unknown) => void; started?: number },
): Promise<TestResult> {
  const started = o.started ?? Date.now();
  const { rule, peak, uoldP99 } = o;
  const order = replayOrder(recorded, !!o.sandboxUrl);
  if (!order.length) {
    return { name: LOAD_TEST_NAME, passed: false, exitCode: 1, durationMs: Date.now() - started, output: 'FAIL: no recorded request to replay: the compare engine recorded none (no live traffic through the interceptor during the compare window)' };
  }
  const rate = targetRate(peak, rule);
  const tally = new LoadTally();
  let inFlight = 0;
  let sent = 0;
  let i = 0;
  const pending = new Set<Promise<void>>();
  const send = (r: RecordedRequest) => {
    // Why: writes only ever into the sandbox, reads into Unew; Uold is never a target.
    const base = r.write ? o.sandboxUrl! : o.unewUrl;
    const t0 = performance.now();
    inFlight += 1;
    const p: Promise<void> = fetch(base + r.url, {
      method: r.method, headers: { ...r.headers, 'x-imago-replay': 'load' },
      body: r.bodyBase64 ? Buffer.from(r.bodyBase64, 'base64') : undefined, signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    })
      .then(async (res) => { await res.arrayBuffer(); tally.record(r.endpoint, r.write, performance.now() - t0, res.status < 500); })
      .catch(() => { tally.record(r.endpoint, r.write, performance.now() - t0, false); })
      .finally(() => { inFlight -= 1; pending.delete(p); });
    pending.add(p);
  };
  const t0 = Date.now();
  let lastBeat = 0;
  // Open loop: the schedule does not wait for replies, so a slow Unew meets the full rate.
  while (Date.now() - t0 < rule.durationMs) {
    const due = Math.floor(((Date.now() - t0) / 1000) * rate);
    while (sent < due) {
      const r = order[i++ % order.length];
      sent += 1;
      if (inFlight >= rule.concurrency) { tally.notSent += 1; continue; }
      send(r);
    }
    if (Date.now() - lastBeat > 1000) { lastBeat = Date.now(); (o.heartbeat ?? heartbeat)({ sent, inFlight }); }
    await new Promise((r) => setTimeout(r, 5));
  }
  await Promise.allSettled([...pending]);
  const summary = tally.summary();
  const problems = loadProblems(summary, uoldP99, rule);
  const total = summary.reduce((n, e) => n + e.sent, 0);
  const errors = summary.reduce((n, e) => n + e.errors, 0);
  const lines = [
    // Failures first: the gate quotes a failed test's first failing lines.
    ...problems.map((p) => `FAIL: ${p}`),
    `load: ${rate} req/s (${rule.multiple}× Uold's peak of ${Math.round(peak * 10) / 10} req/s) for ${rule.durationMs} ms: ${total} replayed (reads to Unew${o.sandboxUrl ? ', writes to the sandbox' : '; writes skipped: no sandbox'}), ${errors} failed, ${tally.notSent} not sent (the load generator's concurrency ${rule.concurrency})`,
    ...summary.map((e) => `  ${e.endpoint}${e.write ? ' (sandbox)' : ''}: ${e.sent} sent, ${e.errors} failed, p50 ${e.p50} ms, p99 ${e.p99} ms${uoldP99.has(e.endpoint) ? ` (Uold live p99 ${uoldP99.get(e.endpoint)} ms)` : ''}`),
  ];
  return { name: LOAD_TEST_NAME, passed: problems.length === 0, exitCode: problems.length === 0 ? 0 : 1, durationMs: Date.now() - started, output: lines.join('\n') };
}

function heartbeat(d: unknown): void {
  try { Context.current().heartbeat(d); } catch { /* outside an activity (tests) */ }
}
