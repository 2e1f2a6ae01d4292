/**
 * The reporter: turns the tally into a JSON-serialisable report (per
 * endpoint and per field: samples, rates, classification, examples) and the
 * verdict for the switchover gate.
 */
import type { DiffKind } from './differ';
import type { CompareRules } from './rules';
import type { Example, Tally } from './tally';

export interface FieldReport {
  field: string;
  /** regression: counts against the endpoint; noise: differs Uold-vs-Uold as often; lag-explained: agreed on recheck. */
  classification: 'regression' | 'noise' | 'lag-explained';
  differences: number;
  differenceRate: number;
  /** differenceRate when the field is a regression, else 0. */
  regressionRate: number;
  noiseDifferences: number;
  noiseRate: number;
  lagExplained: number;
  kinds: Partial<Record<DiffKind, number>>;
  examples: Example[];
}

export interface EndpointReport {
  endpoint: string;
  samples: number;
  /** Pairs with at least one difference that is not noise. */
  regressions: number;
  regressionRate: number;
  noiseSamples: number;
  lagExplained: number;
  rechecks: number;
  recheckSkipped: number;
  /** Pairs where Unew failed (5xx or no reply) and Uold answered below 500. */
  serverErrors: number;
  /** The first of them. */
  serverErrorExample?: Example;
  fields: FieldReport[];
}

export interface EngineCounters {
  received: number;
  compared: number;
  /** Pairs dropped because the queue was full (onPair never blocks). */
  dropped: number;
  /** Pairs that could not be judged: Uold's own reply failed. */
  skipped: number;
  /** Pairs queued or waiting for a lag recheck. */
  pending: number;
  noiseSamples: number;
  noiseSkipped: number;
}

export interface CompareReport extends EngineCounters {
  minSamplesPerEndpoint: number;
  noiseMinSamples: number;
  maxRegressionRate: number;
  maxServerErrorRate: number;
  endpoints: EndpointReport[];
}

/** Which rule of the verdict failed: 'no-traffic' and 'min-samples' only say "not enough evidence yet". */
export type VerdictRule = 'no-traffic' | 'min-samples' | 'regression' | 'server-error';

export interface CompareVerdict {
  pass: boolean;
  reasons: string[];
  /** The same failures as `reasons`, with the rule each broke (for code: the workflow stops testing early on a real failure). */
  failures: Array<{ rule: VerdictRule; endpoint: string | null; reason: string }>;
  endpoints: Array<{ endpoint: string; samples: number; regressionRate: number; pass: boolean }>;
  compared: number;
  dropped: number;
  pending: number;
}

const rate = (n: number, d: number) => (d ? n / d : 0);

export function buildReport(tally: Tally, rules: Readonly<CompareRules>, counters: EngineCounters): CompareReport {
  const endpoints: EndpointReport[] = [];
  for (const e of tally.endpoints.values()) {
    const fields: FieldReport[] = [];
    for (const f of e.fields.values()) {
      const noise = tally.isNoise(e, f) || (f.differences === 0 && f.lagExplained === 0);
      const classification = noise ? 'noise' : f.differences > 0 ? 'regression' : 'lag-explained';
      const differenceRate = rate(f.differences, e.samples);
      fields.push({
        field: f.field, classification, differences: f.differences, differenceRate,
        regressionRate: classification === 'regression' ? differenceRate : 0,
        noiseDifferences: f.noiseDifferences, noiseRate: rate(f.noiseDifferences, e.noiseSamples),
        lagExplained: f.lagExplained, kinds: { ...f.kinds }, examples: f.examples.map((x) => structuredClone(x)),
      });
    }
    fields.sort((a, b) => b.regressionRate - a.regressionRate || b.differences - a.differences || a.field.localeCompare(b.field));
    const regressions = tally.regressedPairs(e);
    endpoints.push({
      endpoint: e.endpoint, samples: e.samples, regressions, regressionRate: rate(regressions, e.samples),
      noiseSamples: e.noiseSamples, lagExplained: e.lagExplainedPairs, rechecks: e.rechecks, recheckSkipped: e.recheckSkipped, serverErrors: e.serverErrors,
      ...(e.serverErrorExample ? { serverErrorExample: structuredClone(e.serverErrorExample) } : {}), fields,
    });
  }
  endpoints.sort((a, b) => b.regressionRate - a.regressionRate || a.endpoint.localeCompare(b.endpoint));
  return { ...counters, minSamplesPerEndpoint: rules.minSamplesPerEndpoint, noiseMinSamples: rules.noise.minSamples, maxRegressionRate: rules.maxRegressionRate, maxServerErrorRate: rules.maxServerErrorRate, endpoints };
}

const pct = (x: number) => `${(x * 100).toFixed(1)}%`;

/**
 * Pass when every endpoint with traffic has at least the minimum samples and
 * a regression rate at or under the threshold. No traffic at all is not a
 * pass: a gate must not open on the absence of evidence.
 */
export function buildVerdict(report: CompareReport): CompareVerdict {
  const failures: CompareVerdict['failures'] = [];
  const fail = (rule: VerdictRule, endpoint: string | null, reason: string) => failures.push({ rule, endpoint, reason });
  const endpoints: CompareVerdict['endpoints'] = [];
  if (report.compared === 0) fail('no-traffic', null, 'no mirrored pair has been compared yet: send read traffic through the interceptor with mirroring on');
  for (const e of report.endpoints) {
    if (e.samples === 0) continue;
    let ok = true;
    if (e.samples < report.minSamplesPerEndpoint) {
      ok = false;
      fail('min-samples', e.endpoint, `${e.endpoint}: ${e.samples} pairs compared, needs at least ${report.minSamplesPerEndpoint} (minSamplesPerEndpoint)`);
    }
    if (e.regressionRate > report.maxRegressionRate) {
      ok = false;
      const worst = e.fields.filter((f) => f.classification === 'regression').slice(0, 3);
      const detail = worst.map((f) => {
        const ex = f.examples[0];
        const d = ex?.diff.find((x) => x.field === f.field);
        const eg = ex ? `, e.g. ${ex.request.method} ${ex.request.url}: Uold ${d?.left ?? '-'} vs Unew ${d?.right ?? '-'}` : '';
        const undecided = f.noiseDifferences > 0 && e.noiseSamples < report.noiseMinSamples ? `, noise undecided: needs ${report.noiseMinSamples}` : '';
        return `field ${f.field} (${Object.keys(f.kinds).join('/')}) differs in ${f.differences}/${e.samples} pairs (${pct(f.differenceRate)}; Uold-vs-Uold ${pct(f.noiseRate)} over ${e.noiseSamples} samples${undecided})${eg}`;
      }).join('; ');
      fail('regression', e.endpoint, `${e.endpoint}: regression rate ${pct(e.regressionRate)} > ${pct(report.maxRegressionRate)} (maxRegressionRate): ${detail}`);
    }
    if (rate(e.serverErrors, e.samples) > report.maxServerErrorRate) {
      ok = false;
      const ex = e.serverErrorExample;
      const eg = ex ? `, e.g. ${ex.request.method} ${ex.request.url}: Uold ${ex.uold.status} vs Unew ${ex.unew.error ?? ex.unew.status}` : '';
      fail('server-error', e.endpoint, `${e.endpoint}: Unew failed where Uold answered in ${e.serverErrors}/${e.samples} pairs (${pct(rate(e.serverErrors, e.samples))} > ${pct(report.maxServerErrorRate)}, maxServerErrorRate)${eg}`);
    }
    endpoints.push({ endpoint: e.endpoint, samples: e.samples, regressionRate: e.regressionRate, pass: ok });
  }
  return { pass: failures.length === 0, reasons: failures.map((f) => f.reason), failures, endpoints, compared: report.compared, dropped: report.dropped, pending: report.pending };
}
