/**
 * The latency rule: per endpoint, Unew's p50 and p99 against Uold's on the
 * same mirrored requests (each pair gives one latency of each side). Pure
 * functions over the tally's reservoirs, so the report and the verdict read
 * the same figures.
 *
 * Why a noise floor as well as a ratio: Uold's latency is measured by nginx
 * (upstream start to the end of the reply), Unew's by the interceptor's Node
 * process (request sent to reply end), which adds its event loop's delays;
 * on a fast endpoint (1 ms) a ratio alone would fail on a few ms of that.
 */
import type { CompareRules } from './rules';
import type { LatencyReservoir } from './tally';

/** A p99 from fewer pairs is mostly the single slowest one: it is reported, not judged. */
export const P99_MIN_SAMPLES = 100;

export interface LatencyFigures {
  /** Live pairs in the reservoir (a uniform sample of every live pair of the endpoint). */
  samples: number;
  uoldP50: number;
  uoldP99: number;
  unewP50: number;
  unewP99: number;
}

/** Nearest-rank percentile of an ascending list; 0 for an empty one. */
export function percentile(sorted: readonly number[], p: number): number {
  if (!sorted.length) return 0;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1];
}

const round = (x: number) => Math.round(x * 100) / 100;

export function latencyFigures(r: LatencyReservoir): LatencyFigures | undefined {
  if (!r.uold.length) return undefined;
  const a = [...r.uold].sort((x, y) => x - y);
  const b = [...r.unew].sort((x, y) => x - y);
  return { samples: a.length, uoldP50: round(percentile(a, 50)), uoldP99: round(percentile(a, 99)), unewP50: round(percentile(b, 50)), unewP99: round(percentile(b, 99)) };
}

/**
 * Why the endpoint's latency fails the rule, one line per percentile, or
 * none. A percentile fails when Unew's is above ratio × Uold's AND more than
 * noiseFloorMs above it.
 */
export function latencyProblems(endpoint: string, f: LatencyFigures | undefined, rule: Readonly<CompareRules['latency']>): string[] {
  if (!rule.enabled || !f || f.samples < rule.minSamples) return [];
  const out: string[] = [];
  const check = (name: string, uold: number, unew: number, ratio: number) => {
    if (unew > uold * ratio && unew - uold > rule.noiseFloorMs) {
      out.push(`${endpoint}: Unew's ${name} latency ${unew} ms vs Uold's ${uold} ms over ${f.samples} mirrored pairs (more than ${ratio}× and more than ${rule.noiseFloorMs} ms slower: compare.latency)`);
    }
  };
  check('p50', f.uoldP50, f.unewP50, rule.maxP50Ratio);
  if (f.samples >= P99_MIN_SAMPLES) check('p99', f.uoldP99, f.unewP99, rule.maxP99Ratio);
  return out;
}
