import type { ThrottleSettings } from './options';

/**
 * The throttler samples Uold's load and the change stream's lag, and tells
 * the copy whether to wait, in gh-ost's max-load / critical-load manner:
 *  - above a max (Threads_running, Uold's p99 latency as its clients see it
 *    at the ingress interceptors, the stream's lag) the copy waits until the
 *    value is back under it;
 *  - above a critical level on two samples in a row the copy pauses for
 *    criticalPauseMs (it hibernates) whatever the load does meanwhile, so a
 *    struggling Uold gets a real break rather than a chunk every interval.
 * Only the copy is throttled: the change stream keeps being applied, so
 * throttling never makes the lag worse. Reading the binlog costs Uold next
 * to nothing.
 */
export interface LoadProbes {
  threadsRunning(): Promise<number>;
  /** Uold's @@gtid_binlog_pos, for progress. */
  sourcePosition?(): Promise<string>;
  /** Cumulative latency histograms of the ingress interceptors in front of Uold (one per interceptor). */
  latency?(): Promise<Array<{ boundsMs: number[]; counts: number[] }>>;
}

export interface Observed {
  threadsRunning: number | null;
  p99Ms: number | null;
  /** Uold's p99 before the copy began (null: not known yet, or too few requests). */
  baselineP99Ms?: number | null;
  lagMs: number;
  /** Consecutive failed samples of Uold's status. */
  failures: number;
}

export interface Decision {
  reason: string | null;
  /** Until when the copy hibernates (ms since epoch), 0 when not. */
  hibernateUntil: number;
  criticalStreak: number;
}

/**
 * The pure rule: from what was observed, the throttle reason (null: copy on),
 * and the hibernation it starts or continues.
 */
export function decide(s: ThrottleSettings, o: Observed, prev: { hibernateUntil: number; criticalStreak: number }, now: number, paused: boolean): Decision {
  const critical: string[] = [];
  if (s.criticalThreadsRunning > 0 && o.threadsRunning !== null && o.threadsRunning > s.criticalThreadsRunning) critical.push(`Threads_running ${o.threadsRunning} > critical ${s.criticalThreadsRunning}`);
  if (s.criticalUoldP99Ms > 0 && o.p99Ms !== null && o.p99Ms > s.criticalUoldP99Ms) critical.push(`Uold p99 ${Math.round(o.p99Ms)} ms > critical ${s.criticalUoldP99Ms} ms`);
  const streak = critical.length ? prev.criticalStreak + 1 : 0;
  let hibernateUntil = prev.hibernateUntil > now ? prev.hibernateUntil : 0;
  // Two samples in a row, as gh-ost's critical-load-interval: one spike is not a crisis.
  if (streak >= 2 && !hibernateUntil) hibernateUntil = now + s.criticalPauseMs;
  const base = { hibernateUntil, criticalStreak: streak };
  if (paused) return { ...base, reason: 'paused by operator' };
  if (hibernateUntil) return { ...base, reason: `critical load, copy paused for ${Math.ceil((hibernateUntil - now) / 1000)} s more${critical.length ? ` (${critical.join('; ')})` : ''}` };
  // Why: if we cannot see Uold's load we must assume it is high.
  if (o.failures >= 3) return { ...base, reason: 'Uold load unknown (status queries failing)' };
  if (o.threadsRunning !== null && o.threadsRunning > s.maxThreadsRunning) return { ...base, reason: `Threads_running ${o.threadsRunning} > ${s.maxThreadsRunning}` };
  if (s.maxUoldP99Ms > 0 && o.p99Ms !== null && o.p99Ms > s.maxUoldP99Ms) return { ...base, reason: `Uold p99 ${Math.round(o.p99Ms)} ms > ${s.maxUoldP99Ms} ms` };
  const before = o.baselineP99Ms ?? null;
  if (s.maxUoldP99Ratio > 0 && o.p99Ms !== null && before !== null && o.p99Ms > Math.max(s.maxUoldP99Ratio * before, before + s.uoldP99FloorMs)) {
    return { ...base, reason: `Uold p99 ${Math.round(o.p99Ms)} ms > ${s.maxUoldP99Ratio} × its ${Math.round(before)} ms before the copy` };
  }
  if (o.lagMs > s.maxLagMs) return { ...base, reason: `apply lag ${Math.round(o.lagMs)} ms > ${s.maxLagMs} ms` };
  return { ...base, reason: null };
}

/**
 * The p99 of the requests counted between two cumulative histograms of the
 * same buckets (upper bounds `boundsMs`, one more count for the overflow),
 * interpolated within its bucket. Null with fewer than `minCount` requests.
 */
export function p99Between(boundsMs: number[], older: number[], newer: number[], minCount = 20): number | null {
  const d = newer.map((n, i) => Math.max(0, n - (older[i] ?? 0)));
  const total = d.reduce((a, b) => a + b, 0);
  if (total < minCount) return null;
  const rank = 0.99 * total;
  let cum = 0;
  for (let i = 0; i < d.length; i++) {
    if (cum + d[i] >= rank) {
      const lo = i === 0 ? 0 : boundsMs[i - 1];
      const hi = i < boundsMs.length ? boundsMs[i] : boundsMs[boundsMs.length - 1] * 2;
      return lo + (hi - lo) * ((rank - cum) / d[i]);
    }
    cum += d[i];
  }
  return boundsMs[boundsMs.length - 1];
}

/** Latency histograms summed over interceptors with the same buckets. */
function sumHistograms(hs: Array<{ boundsMs: number[]; counts: number[] }>): { boundsMs: number[]; counts: number[] } | null {
  if (hs.length === 0) return null;
  const boundsMs = hs[0].boundsMs;
  const counts = hs[0].counts.map((_, i) => hs.reduce((s, h) => s + (h.counts[i] ?? 0), 0));
  return { boundsMs, counts };
}

export class Throttler {
  threadsRunning: number | null = null;
  p99Ms: number | null = null;
  /** Uold's p99 before the copy: over every request the interceptors counted up to the first sample. */
  baselineP99Ms: number | null = null;
  sourcePosition = '';
  paused = false;
  private timer?: NodeJS.Timeout;
  private failures = 0;
  private state = { hibernateUntil: 0, criticalStreak: 0 };
  private histograms: Array<{ at: number; boundsMs: number[]; counts: number[] }> = [];

  constructor(private readonly probes: LoadProbes, public settings: ThrottleSettings, private readonly lagMs: () => number) {}

  start(): void {
    const tick = async () => {
      try {
        this.threadsRunning = await this.probes.threadsRunning();
        if (this.probes.sourcePosition) this.sourcePosition = await this.probes.sourcePosition();
        this.failures = 0;
      } catch {
        this.failures++;
      }
      if (this.probes.latency) {
        try {
          const h = sumHistograms(await this.probes.latency());
          if (h) this.noteHistogram(Date.now(), h);
        } catch {
          // An interceptor that does not answer gives no latency: the other signals still count.
          this.p99Ms = null;
        }
      }
      // Only the sampler advances the critical streak and starts a hibernation.
      const d = decide(this.settings, this.observed(), this.state, Date.now(), this.paused);
      this.state = { hibernateUntil: d.hibernateUntil, criticalStreak: d.criticalStreak };
      if (this.timer) this.timer = setTimeout(tick, this.settings.checkIntervalMs);
    };
    this.timer = setTimeout(tick, 0);
  }

  /** What the rule decides on: Uold's load as last sampled, the lag read live. */
  private observed(): Observed {
    return { threadsRunning: this.threadsRunning, p99Ms: this.p99Ms, baselineP99Ms: this.baselineP99Ms, lagMs: this.lagMs(), failures: this.failures };
  }

  private noteHistogram(at: number, h: { boundsMs: number[]; counts: number[] }): void {
    // The interceptors' histograms are cumulative since they started: their first reading is Uold's latency
    // before this transfer (a retried transfer reads a baseline that includes its earlier copy: a little higher).
    if (this.histograms.length === 0 && this.baselineP99Ms === null) this.baselineP99Ms = p99Between(h.boundsMs, [], h.counts);
    this.histograms.push({ at, ...h });
    while (this.histograms.length > 2 && at - this.histograms[1].at >= this.settings.p99WindowMs) this.histograms.shift();
    const first = this.histograms[0];
    this.p99Ms = this.histograms.length >= 2 ? p99Between(h.boundsMs, first.counts, h.counts) : null;
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** Why the copy should wait now, or null to go on. The lag is read live; Uold's load as last sampled. */
  reason(): string | null {
    return decide(this.settings, this.observed(),
      { hibernateUntil: this.state.hibernateUntil, criticalStreak: 0 }, Date.now(), this.paused).reason;
  }

  /** Waits while throttled (checking every 50 ms); false when the signal aborted meanwhile. */
  async wait(signal: AbortSignal): Promise<boolean> {
    while (!signal.aborted && this.reason()) await new Promise((r) => setTimeout(r, 50));
    return !signal.aborted;
  }
}
