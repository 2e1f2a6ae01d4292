/** Latency bookkeeping for the workload generator: per-class totals and a 100 ms timeline. */

export interface LatencySummary { count: number; errors: number; p50: number; p99: number; max: number }
export interface TimelineBucket extends LatencySummary {
  /** Start of the bucket, ms since the run started (requests are placed by their start time). */
  t: number;
  endpoint: string;
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

function summarise(lat: number[], errors: number): LatencySummary {
  const s = lat.slice().sort((a, b) => a - b);
  const r = (x: number) => Math.round(x * 100) / 100;
  return { count: s.length, errors, p50: r(percentile(s, 50)), p99: r(percentile(s, 99)), max: r(s[s.length - 1] ?? 0) };
}

export class LatencyRecorder {
  private readonly byClass = new Map<string, { lat: number[]; errors: number }>();
  private readonly buckets = new Map<string, { t: number; endpoint: string; lat: number[]; errors: number }>();
  private readonly all: number[] = [];

  constructor(private readonly t0: number, private readonly bucketMs = 100) {}

  record(endpoint: string, startedAt: number, latencyMs: number, error: boolean): void {
    const c = this.byClass.get(endpoint) ?? { lat: [], errors: 0 };
    this.byClass.set(endpoint, c);
    c.lat.push(latencyMs);
    if (error) c.errors++;
    this.all.push(latencyMs);
    const t = Math.floor((startedAt - this.t0) / this.bucketMs) * this.bucketMs;
    const key = `${t}|${endpoint}`;
    const b = this.buckets.get(key) ?? { t, endpoint, lat: [], errors: 0 };
    this.buckets.set(key, b);
    b.lat.push(latencyMs);
    if (error) b.errors++;
  }

  overall(): LatencySummary {
    let errors = 0;
    for (const c of this.byClass.values()) errors += c.errors;
    return summarise(this.all, errors);
  }

  perEndpoint(): Record<string, LatencySummary> {
    return Object.fromEntries([...this.byClass].map(([k, v]) => [k, summarise(v.lat, v.errors)]));
  }

  timeline(): TimelineBucket[] {
    return [...this.buckets.values()].sort((a, b) => a.t - b.t || a.endpoint.localeCompare(b.endpoint))
      .map((b) => ({ t: b.t, endpoint: b.endpoint, ...summarise(b.lat, b.errors) }));
  }
}
