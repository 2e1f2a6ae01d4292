/**
 * The recorder: what the interceptor saw, kept compactly for the control API.
 * - served records (the atomicity evidence): seq, upstream, start, end, status
 *   in a fixed-size ring of typed arrays (no allocation per request);
 * - counters and a client-visible latency histogram;
 * - a timeline of 100 ms buckets (completed requests, mean and max latency).
 */
import { performance } from 'node:perf_hooks';

/** Wall-clock milliseconds with sub-millisecond precision (monotonic within the process). */
export const nowMs = (): number => performance.timeOrigin + performance.now();

export const LATENCY_BOUNDS_MS = [0.25, 0.5, 1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000];
const BUCKET_MS = 100;
const TIMELINE_BUCKETS = 3000; // five minutes

export interface ServedRecord { seq: number; upstream: string; start: number; end: number; status: number }

export type CounterName =
  | 'requests' | 'served' | 'held' | 'holdOverflow' | 'heldDisconnected' | 'upstreamErrors'
  | 'clientAborts' | 'badRequests' | 'tooLarge' | 'timeouts' | 'mirrored' | 'shadowDropped'
  | 'shadowErrors' | 'comparerErrors' | 'autoReleases' | 'upstreamRetries';

export class Recorder {
  readonly counters: Record<CounterName, number> = {
    requests: 0, served: 0, held: 0, holdOverflow: 0, heldDisconnected: 0, upstreamErrors: 0,
    clientAborts: 0, badRequests: 0, tooLarge: 0, timeouts: 0, mirrored: 0, shadowDropped: 0,
    shadowErrors: 0, comparerErrors: 0, autoReleases: 0, upstreamRetries: 0,
  };
  readonly histogram = new Array<number>(LATENCY_BOUNDS_MS.length + 1).fill(0);
  private latencySumMs = 0;
  private seq = 0;
  private readonly size: number;
  private readonly upstreamIdx: Uint16Array;
  private readonly starts: Float64Array;
  private readonly ends: Float64Array;
  private readonly statuses: Uint16Array;
  private readonly names: string[] = [];
  private readonly nameIndex = new Map<string, number>();
  private readonly tlCount = new Uint32Array(TIMELINE_BUCKETS);
  private readonly tlSum = new Float64Array(TIMELINE_BUCKETS);
  private readonly tlMax = new Float64Array(TIMELINE_BUCKETS);
  private readonly tlErrors = new Uint32Array(TIMELINE_BUCKETS);
  private readonly tlKey = new Float64Array(TIMELINE_BUCKETS).fill(-1);

  constructor(servedLogSize: number) {
    this.size = servedLogSize;
    this.upstreamIdx = new Uint16Array(servedLogSize);
    this.starts = new Float64Array(servedLogSize);
    this.ends = new Float64Array(servedLogSize);
    this.statuses = new Uint16Array(servedLogSize);
  }

  count(name: CounterName, n = 1): void { this.counters[name] += n; }

  /**
   * One request answered by an upstream. `start` is when it was dispatched to
   * the upstream, `end` when its reply finished (or was cut); `arrived` is when
   * the client's request reached us, so end-arrived includes any hold.
   */
  served(upstream: string, arrived: number, start: number, end: number, status: number): void {
    let idx = this.nameIndex.get(upstream);
    if (idx === undefined) { idx = this.names.length; this.names.push(upstream); this.nameIndex.set(upstream, idx); }
    const slot = this.seq % this.size;
    this.seq += 1;
    this.upstreamIdx[slot] = idx;
    this.starts[slot] = start;
    this.ends[slot] = end;
    this.statuses[slot] = status;
    this.counters.served += 1;
    this.observe(arrived, end, status >= 500 || status === 0);
  }

  /** A reply the interceptor produced itself (413, 503, 502...): latency and timeline only. */
  observe(arrived: number, end: number, error: boolean): void {
    const ms = end - arrived;
    this.latencySumMs += ms;
    let b = 0;
    while (b < LATENCY_BOUNDS_MS.length && ms > LATENCY_BOUNDS_MS[b]) b += 1;
    this.histogram[b] += 1;
    const key = Math.floor(end / BUCKET_MS);
    const t = key % TIMELINE_BUCKETS;
    if (this.tlKey[t] !== key) { this.tlKey[t] = key; this.tlCount[t] = 0; this.tlSum[t] = 0; this.tlMax[t] = 0; this.tlErrors[t] = 0; }
    this.tlCount[t] += 1;
    this.tlSum[t] += ms;
    if (ms > this.tlMax[t]) this.tlMax[t] = ms;
    if (error) this.tlErrors[t] += 1;
  }

  /** Records with seq > since, oldest first, at most `limit`; `lost` counts records the ring overwrote. */
  servedSince(since: number, limit = 10_000): { records: ServedRecord[]; next: number; lost: number } {
    const oldest = Math.max(0, this.seq - this.size);
    const from = Math.max(since, oldest); // seq numbers start at 1
    const lost = Math.max(0, oldest - since);
    const records: ServedRecord[] = [];
    for (let s = from; s < this.seq && records.length < limit; s += 1) {
      const slot = s % this.size;
      records.push({ seq: s + 1, upstream: this.names[this.upstreamIdx[slot]], start: this.starts[slot], end: this.ends[slot], status: this.statuses[slot] });
    }
    return { records, next: records.length ? records[records.length - 1].seq : since, lost };
  }

  latency(): { boundsMs: number[]; counts: number[]; count: number; meanMs: number } {
    const count = this.histogram.reduce((a, b) => a + b, 0);
    return { boundsMs: LATENCY_BOUNDS_MS, counts: [...this.histogram], count, meanMs: count ? this.latencySumMs / count : 0 };
  }

  /** Buckets of 100 ms that saw replies, oldest first, optionally since a wall-clock ms. */
  timeline(sinceMs = 0): Array<{ t: number; count: number; meanMs: number; maxMs: number; errors: number }> {
    const out = [];
    for (let i = 0; i < TIMELINE_BUCKETS; i += 1) {
      const key = this.tlKey[i];
      if (key < 0 || key * BUCKET_MS < sinceMs) continue;
      out.push({ t: key * BUCKET_MS, count: this.tlCount[i], meanMs: this.tlSum[i] / this.tlCount[i], maxMs: this.tlMax[i], errors: this.tlErrors[i] });
    }
    return out.sort((a, b) => a.t - b.t);
  }

  /** Prometheus text exposition. */
  metrics(gauges: Record<string, number>): string {
    const lines: string[] = [];
    for (const [k, v] of Object.entries(this.counters)) lines.push(`# TYPE imago_ingress_${snake(k)}_total counter`, `imago_ingress_${snake(k)}_total ${v}`);
    for (const [k, v] of Object.entries(gauges)) lines.push(`# TYPE imago_ingress_${snake(k)} gauge`, `imago_ingress_${snake(k)} ${v}`);
    lines.push('# TYPE imago_ingress_latency_ms histogram');
    let cum = 0;
    LATENCY_BOUNDS_MS.forEach((le, i) => { cum += this.histogram[i]; lines.push(`imago_ingress_latency_ms_bucket{le="${le}"} ${cum}`); });
    cum += this.histogram[LATENCY_BOUNDS_MS.length];
    lines.push(`imago_ingress_latency_ms_bucket{le="+Inf"} ${cum}`, `imago_ingress_latency_ms_sum ${this.latencySumMs}`, `imago_ingress_latency_ms_count ${cum}`);
    return lines.join('\n') + '\n';
  }
}

const snake = (s: string): string => s.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
