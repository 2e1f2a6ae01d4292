/**
 * The reporter: turns the tally into a JSON-serialisable report (per
 * endpoint and per field: samples, rates, classification, examples) and the
 * verdict for the switchover gate.
 */
import type { CompareRules } from './rules';
import type { Tally } from './tally';
import { latencyFigures, latencyProblems } from './latency';
import type { CompareReport, CompareVerdict, EngineCounters, FieldReport, VerdictRule } from './report-schema';

export type { CompareReport, CompareVerdict, EndpointReport, EngineCounters, FieldReport, VerdictRule } from './report-schema';

const rate = (n: number, d: number) => (d ? n / d : 0);

export function buildReport(tally: Tally, rules: Readonly<CompareRules>, counters: EngineCounters, extra?: { activeSampling?: { replayed: number; skipped: number } }): CompareReport {
  const endpoints: CompareReport['endpoints'] = [];
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
    const latency = latencyFigures(e.latency);
    endpoints.push({
      endpoint: e.endpoint, samples: e.samples, regressions, regressionRate: rate(regressions, e.samples),
      noiseSamples: e.noiseSamples, lagExplained: e.lagExplainedPairs, rechecks: e.rechecks, recheckSkipped: e.recheckSkipped, serverErrors: e.serverErrors,
      ...(e.serverErrorExample ? { serverErrorExample: structuredClone(e.serverErrorExample) } : {}), fields,
      kind: e.kind, replayed: e.replayed, replayedUrls: [...e.replayedUrls],
      ...(e.kind === 'write' ? { readBacks: e.readBacks, readBackSkipped: e.readBackSkipped } : {}),
      ...(latency ? { latency } : {}),
    });
  }
  endpoints.sort((a, b) => b.regressionRate - a.regressionRate || a.endpoint.localeCompare(b.endpoint));
  return {
    ...counters, minSamplesPerEndpoint: rules.minSamplesPerEndpoint, noiseMinSamples: rules.noise.minSamples, maxRegressionRate: rules.maxRegressionRate, maxServerErrorRate: rules.maxServerErrorRate, endpoints,
    latencyRule: { ...rules.latency }, writesMaxRegressionRate: rules.writes.maxRegressionRate, activeSampling: { ...(extra?.activeSampling ?? { replayed: 0, skipped: 0 }) },
  };
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
    const write = e.kind === 'write';
    // Why writes have no minimum: they cannot be replayed to reach one (a
    // replayed write would write twice), and a rare write endpoint must not
    // hold the gate; what they show is extra evidence, judged when present.
    if (!write && e.samples < report.minSamplesPerEndpoint) {
      ok = false;
      const replayed = e.replayed ? ` (${e.replayed} replayed by active sampling)` : '';
      fail('min-samples', e.endpoint, `${e.endpoint}: ${e.samples} pairs compared${replayed}, needs at least ${report.minSamplesPerEndpoint} (minSamplesPerEndpoint)`);
    }
    const maxRate = write ? report.writesMaxRegressionRate ?? report.maxRegressionRate : report.maxRegressionRate;
    if (e.regressionRate > maxRate) {
      ok = false;
      const worst = e.fields.filter((f) => f.classification === 'regression').slice(0, 3);
      const detail = worst.map((f) => {
        const ex = f.examples[0];
        const d = ex?.diff.find((x) => x.field === f.field);
        const eg = ex ? `, e.g. ${ex.request.method} ${ex.request.url}: Uold ${d?.left ?? '-'} vs ${write ? 'the sandbox' : 'Unew'} ${d?.right ?? '-'}` : '';
        const undecided = f.noiseDifferences > 0 && e.noiseSamples < report.noiseMinSamples ? `, noise undecided: needs ${report.noiseMinSamples}` : '';
        return `field ${f.field} (${Object.keys(f.kinds).join('/')}) differs in ${f.differences}/${e.samples} pairs (${pct(f.differenceRate)}; Uold-vs-Uold ${pct(f.noiseRate)} over ${e.noiseSamples} samples${undecided})${eg}`;
      }).join('; ');
      const where = write ? `write mirrored into the sandbox: regression rate ${pct(e.regressionRate)} > ${pct(maxRate)} (writes.maxRegressionRate)` : `regression rate ${pct(e.regressionRate)} > ${pct(maxRate)} (maxRegressionRate)`;
      fail('regression', e.endpoint, `${e.endpoint}: ${where}: ${detail}`);
    }
    if (rate(e.serverErrors, e.samples) > report.maxServerErrorRate) {
      ok = false;
      const ex = e.serverErrorExample;
      const eg = ex ? `, e.g. ${ex.request.method} ${ex.request.url}: Uold ${ex.uold.status} vs Unew ${ex.unew.error ?? ex.unew.status}` : '';
      const who = write ? 'the sandbox (Unew\'s version)' : 'Unew';
      fail('server-error', e.endpoint, `${e.endpoint}: ${who} failed where Uold answered in ${e.serverErrors}/${e.samples} pairs (${pct(rate(e.serverErrors, e.samples))} > ${pct(report.maxServerErrorRate)}, maxServerErrorRate)${eg}`);
    }
    if (report.latencyRule) {
      for (const reason of latencyProblems(e.endpoint, e.latency, report.latencyRule)) { ok = false; fail('latency', e.endpoint, reason); }
    }
    endpoints.push({ endpoint: e.endpoint, samples: e.samples, regressionRate: e.regressionRate, pass: ok });
  }
  return { pass: failures.length === 0, reasons: failures.map((f) => f.reason), failures, endpoints, compared: report.compared, dropped: report.dropped, pending: report.pending };
}

/**
 * One report for a fleet: the reports of several interceptors' engines, with
 * their counters summed and their endpoints side by side (named by their
 * interceptor when there is more than one). What `status.compare` holds.
 */
export function mergeReports(parts: Array<{ interceptor: string; report: CompareReport }>): CompareReport | null {
  if (!parts.length) return null;
  if (parts.length === 1) return parts[0].report;
  const first = parts[0].report;
  const sum = (k: keyof EngineCounters) => parts.reduce((n, p) => n + p.report[k], 0);
  return {
    received: sum('received'), compared: sum('compared'), dropped: sum('dropped'), skipped: sum('skipped'), pending: sum('pending'),
    noiseSamples: sum('noiseSamples'), noiseSkipped: sum('noiseSkipped'),
    minSamplesPerEndpoint: first.minSamplesPerEndpoint, noiseMinSamples: first.noiseMinSamples,
    maxRegressionRate: first.maxRegressionRate, maxServerErrorRate: first.maxServerErrorRate,
    endpoints: parts.flatMap((p) => p.report.endpoints.map((e) => ({ ...e, endpoint: `${p.interceptor} ${e.endpoint}` }))),
    ...(first.latencyRule ? { latencyRule: first.latencyRule } : {}),
    ...(first.writesMaxRegressionRate !== undefined ? { writesMaxRegressionRate: first.writesMaxRegressionRate } : {}),
    activeSampling: {
      replayed: parts.reduce((n, p) => n + (p.report.activeSampling?.replayed ?? 0), 0),
      skipped: parts.reduce((n, p) => n + (p.report.activeSampling?.skipped ?? 0), 0),
    },
  };
}

/**
 * One line naming what active sampling replayed, per endpoint with some of
 * its URLs: "12 pairs replayed: GET /categories 4 (/categories), …", or
 * that none were needed. For the demo's outcome and the CLI.
 */
export function describeActiveSampling(report: CompareReport | null | undefined): string {
  if (!report) return 'no compare report';
  const replayed = report.endpoints.filter((e) => (e.replayed ?? 0) > 0);
  const total = report.activeSampling?.replayed ?? replayed.reduce((n, e) => n + (e.replayed ?? 0), 0);
  const skipped = report.activeSampling?.skipped ?? 0;
  if (total === 0) return `none replayed: live traffic gave every endpoint its ${report.minSamplesPerEndpoint} pairs${skipped ? ` (${skipped} replays skipped)` : ''}`;
  const each = replayed.map((e) => `${e.endpoint} ${e.replayed}${e.replayedUrls?.length ? ` (${e.replayedUrls.slice(0, 2).join(', ')})` : ''}`);
  return `${total} pairs replayed to both universes${skipped ? `, ${skipped} skipped` : ''}: ${each.join('; ')}`;
}

/** One line naming the writes mirrored into the sandbox, per write endpoint: pairs, read-backs, regression rate. */
export function describeShadowWrites(report: CompareReport | null | undefined): string {
  const writes = (report?.endpoints ?? []).filter((e) => e.kind === 'write');
  if (!writes.length) return 'no write mirrored into a sandbox';
  const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
  return writes.map((e) => `${e.endpoint} ${e.samples} (${e.readBacks ?? 0} read back, regression ${pct(e.regressionRate)})`).join('; ');
}
