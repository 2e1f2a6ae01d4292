/**
 * The load test's pure parts: the rate it aims at (a multiple of the peak
 * rate Uold served, read from the interceptor's timeline), the order it
 * replays recorded requests in (the live mix: reads and writes in the order
 * they arrived, round and round), and its verdict per endpoint: errors, and
 * Unew's p99 under load against Uold's p99 on live traffic (from the compare
 * engine's latency figures), with a noise floor. The runner that sends the
 * requests is activities/load-test.ts.
 */
import { percentile } from './latency';
import type { RecordedRequest } from './types';

export interface LoadRule {
  multiple: number;
  durationMs: number;
  maxRatePerSec: number;
  minRatePerSec: number;
  concurrency: number;
  maxErrorRate: number;
  maxP99Ratio: number;
  noiseFloorMs: number;
}

/**
 * The highest rate (requests/s) Uold served over any whole second of the
 * timeline. Why a second and not a bucket: buckets are short (100 ms), and a
 * client catching up after a stall puts a burst into one of them that is no
 * sustained rate (the demo's 100 req/s read as 490 req/s per bucket).
 */
export function peakRate(buckets: ReadonlyArray<{ t: number; count: number }>, bucketMs: number): number {
  if (!buckets.length || bucketMs <= 0) return 0;
  if (bucketMs >= 1000) return Math.max(...buckets.map((b) => b.count)) * (1000 / bucketMs);
  const perSecond = new Map<number, number>();
  for (const b of buckets) perSecond.set(Math.floor(b.t / 1000), (perSecond.get(Math.floor(b.t / 1000)) ?? 0) + b.count);
  return Math.max(...perSecond.values());
}

/** The rate the load test sends at: multiple × Uold's peak, within [minRatePerSec, maxRatePerSec]. */
export function targetRate(peak: number, rule: Pick<LoadRule, 'multiple' | 'maxRatePerSec' | 'minRatePerSec'>): number {
  return Math.min(rule.maxRatePerSec, Math.max(rule.minRatePerSec, Math.ceil(peak * rule.multiple)));
}

/** The live mix in arrival order; writes only when there is a sandbox to send them to (never Unew). */
export function replayOrder(recorded: { reads: RecordedRequest[]; writes: RecordedRequest[] }, withWrites: boolean): RecordedRequest[] {
  return [...recorded.reads, ...(withWrites ? recorded.writes : [])].sort((a, b) => a.at - b.at);
}

export interface EndpointLoad { endpoint: string; write: boolean; sent: number; errors: number; p50: number; p99: number }

/** Latencies and errors per endpoint, as the runner records them. */
export class LoadTally {
  private readonly byEndpoint = new Map<string, { write: boolean; latencies: number[]; errors: number }>();
  /** Requests not sent because `concurrency` were already in flight (the load generator's own limit, not Unew's). */
  notSent = 0;

  record(endpoint: string, write: boolean, latencyMs: number, ok: boolean): void {
    let e = this.byEndpoint.get(endpoint);
    if (!e) { e = { write, latencies: [], errors: 0 }; this.byEndpoint.set(endpoint, e); }
    e.latencies.push(latencyMs);
    if (!ok) e.errors += 1;
  }

  summary(): EndpointLoad[] {
    return [...this.byEndpoint.entries()].map(([endpoint, e]) => {
      const sorted = [...e.latencies].sort((a, b) => a - b);
      const round = (x: number) => Math.round(x * 10) / 10;
      return { endpoint, write: e.write, sent: sorted.length, errors: e.errors, p50: round(percentile(sorted, 50)), p99: round(percentile(sorted, 99)) };
    }).sort((a, b) => b.sent - a.sent);
  }
}

/**
 * Why the load test fails, one line per endpoint and rule, or none. An error
 * is a 5xx or no reply. Latency: an endpoint fails when its p99 under load
 * is above maxP99Ratio × Uold's live p99 and more than noiseFloorMs above
 * it; an endpoint without Uold figures (writes, or too few live pairs) is
 * judged on errors only.
 */
export function loadProblems(summary: EndpointLoad[], uoldP99: ReadonlyMap<string, number>, rule: Pick<LoadRule, 'maxErrorRate' | 'maxP99Ratio' | 'noiseFloorMs'>): string[] {
  const out: string[] = [];
  for (const e of summary) {
    const where = e.write ? 'the sandbox' : 'Unew';
    if (e.sent > 0 && e.errors / e.sent > rule.maxErrorRate) {
      out.push(`${e.endpoint}: ${where} failed ${e.errors}/${e.sent} requests under load (${((e.errors / e.sent) * 100).toFixed(1)}% > ${(rule.maxErrorRate * 100).toFixed(1)}%, loadTest.maxErrorRate)`);
    }
    const base = uoldP99.get(e.endpoint);
    if (!e.write && base !== undefined && e.p99 > base * rule.maxP99Ratio && e.p99 - base > rule.noiseFloorMs) {
      out.push(`${e.endpoint}: Unew's p99 under load ${e.p99} ms vs Uold's live p99 ${base} ms (more than ${rule.maxP99Ratio}× and more than ${rule.noiseFloorMs} ms slower: loadTest.maxP99Ratio)`);
    }
  }
  return out;
}
