/**
 * The automatic rollback's rules, pure: judged over the requests the ingress
 * interceptors served during the post-switchover window, against the p99
 * Uold had before the switch. A rule judges only a window with enough
 * requests; the first rule that fails names itself and its figures, and the
 * workflow rolls back with that as the reason. No I/O (the activity reads
 * the records; the workflow keeps the baseline).
 */
export interface ServedSample { upstream: string; start: number; end: number; status: number }

export interface RuleSettings {
  sampleWindowMs: number;
  minRequests: number;
  maxErrorRate: number;
  maxP99Ratio: number;
  minP99Ms: number;
}

export interface RuleResult { name: 'error-rate' | 'p99-latency'; ok: boolean; detail: string; value: number | null }

/** p99 of durations (ms), or null when empty. */
export function p99Of(values: number[]): number | null {
  if (!values.length) return null;
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil(s.length * 0.99) - 1)];
}

/** Uold's p99 before the switch: the upstream time of its latest `n` replies (5xx and cut replies aside). */
export function baselineP99(records: ServedSample[], uold = 'uold', n = 500): number | null {
  const mine = records.filter((r) => r.upstream === uold && r.end >= r.start && r.status < 500).sort((a, b) => a.end - b.end).slice(-n);
  return p99Of(mine.map((r) => r.end - r.start));
}

/** Both rules over the target's replies that ended in the last sampleWindowMs before `now`. */
export function evaluateRules(records: ServedSample[], now: number, baseline: number | null, s: RuleSettings, unew = 'unew'): RuleResult[] {
  const window = records.filter((r) => r.upstream === unew && r.end >= now - s.sampleWindowMs && r.end <= now && r.end >= r.start);
  const n = window.length;
  const secs = Math.round(s.sampleWindowMs / 1000);
  if (n < s.minRequests) {
    const few = `${n} request(s) in the last ${secs} s (judged from ${s.minRequests})`;
    return [{ name: 'error-rate', ok: true, detail: few, value: null }, { name: 'p99-latency', ok: true, detail: few, value: null }];
  }
  const errors = window.filter((r) => r.status >= 500 && r.status < 600).length;
  const rate = errors / n;
  const p99 = p99Of(window.map((r) => r.end - r.start))!;
  const limit = baseline === null ? null : Math.max(s.minP99Ms, baseline * s.maxP99Ratio);
  return [
    { name: 'error-rate', ok: rate <= s.maxErrorRate, value: rate, detail: `${errors} of ${n} replies were 5xx in the last ${secs} s (${(rate * 100).toFixed(1)} %, limit ${(s.maxErrorRate * 100).toFixed(1)} %)` },
    {
      name: 'p99-latency', ok: limit === null || p99 <= limit, value: p99,
      detail: limit === null ? `p99 ${p99.toFixed(1)} ms; no baseline from before the switch, not judged`
        : `p99 ${p99.toFixed(1)} ms over ${n} replies in the last ${secs} s (limit ${limit.toFixed(1)} ms: ${s.maxP99Ratio} × the ${baseline!.toFixed(1)} ms before the switch, at least ${s.minP99Ms} ms)`,
    },
  ];
}
