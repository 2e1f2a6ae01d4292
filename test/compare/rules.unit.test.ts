/**
 * The compare rules and the compare report as one schema each: the rules'
 * validator (defaults, unknown keys, every error at once, frozen), and a
 * report and verdict built by the real tally, differ and reporter match the
 * schemas their types come from. Pure: no server.
 */
import { strict as assert } from 'node:assert';
import { isImagoError } from '../../lib/errors';
import { compileChecker } from '../../plan/checker';
import { checkCompareRules, compareRulesSchema, validateCompareRules } from '../../compare/rules';
import { compareReportSchema, compareVerdictSchema, type CompareReport } from '../../compare/report-schema';
import { Differ } from '../../compare/differ';
import { Normaliser } from '../../compare/normaliser';
import { buildReport, buildVerdict } from '../../compare/report';
import { Tally } from '../../compare/tally';
import type { CapturedReply, MirroredPair } from '../../compare/types';

const reply = (status: number, body: unknown): CapturedReply =>
  ({ status, headers: { 'content-type': 'application/json' }, body: Buffer.from(JSON.stringify(body)), latencyMs: 1 });

describe('compare rules: one schema, one type', () => {
  it('every key has a default: {} gives the complete rules, frozen', () => {
    const r = validateCompareRules({});
    assert.deepEqual([r.minSamplesPerEndpoint, r.maxRegressionRate, r.maxServerErrorRate, r.noise.ratio, r.lag.attempts, r.limits.maxBodyBytes], [30, 0.01, 0, 0.5, 2, 1_048_576]);
    assert.deepEqual([r.ignoreHeaders, r.ignorePaths, r.ignoreValues, r.textPatterns, r.routes], [[], [], [], [], []]);
    assert.ok(Object.isFrozen(r) && Object.isFrozen(r.lag) && Object.isFrozen(r.routes));
    assert.equal(JSON.parse(JSON.stringify(compareRulesSchema)).required, undefined, 'no key is required');
  });

  it('all errors at once: schema errors with their paths, and every bad pattern and JSON path', () => {
    const { rules, errors } = checkCompareRules({ bogus: 1, maxRegressionRate: 2, noise: { what: 1 }, routes: ['items'], lag: { attempts: 11 }, textPatterns: ['(x', 7] });
    assert.equal(rules, undefined);
    assert.deepEqual(errors.sort(), [
      "compare/lag/attempts: must be <= 10 (Rechecks of one pair before its difference counts as a regression.)",
      "compare/maxRegressionRate: must be <= 1 (Highest share of an endpoint's pairs with a regression that still passes.)",
      "compare/noise: unknown key 'what'",
      'compare/routes/0: must match pattern "^/"',
      'compare/textPatterns/0: not a valid regular expression (Invalid regular expression: /(x/: Unterminated group)',
      'compare/textPatterns/1: must be string',
      "compare: unknown key 'bogus'",
    ].sort());
    assert.throws(() => validateCompareRules({ textPatterns: ['[a-'], ignoreValues: [{ pattern: '(', paths: ['$.x[y'] }] }), (e: unknown) => {
      assert.ok(isImagoError(e, 'COMPARE_RULES_INVALID'));
      for (const p of ['compare/textPatterns/0: not a valid regular expression', 'compare/ignoreValues/0/pattern: not a valid regular expression', 'compare/ignoreValues/0/paths/0: not a valid JSON path']) {
        assert.ok(e.message.includes(p), `${p} in ${e.message}`);
      }
      return true;
    });
  });

  it('does not touch its input', () => {
    const input = { noise: { minSamples: 7 } };
    validateCompareRules(input);
    assert.deepEqual(input, { noise: { minSamples: 7 } });
  });
});

describe('compare report: one schema, one type', () => {
  const rules = validateCompareRules({ routes: ['/items/:id'], noise: { minSamples: 1 }, minSamplesPerEndpoint: 2 });
  const normaliser = new Normaliser(rules);
  const differ = new Differ();
  const pair = (id: number, url: string, uold: CapturedReply, unew: CapturedReply): MirroredPair =>
    ({ id, at: 1_700_000_000_000 + id, request: { method: 'GET', url, headers: {} }, primary: uold, shadow: unew });

  /** A report with a regression, noise, a lag-explained field and a server error: every optional part present. */
  function sampleReport(): { report: CompareReport; tally: Tally } {
    const tally = new Tally(rules);
    const judge = (p: MirroredPair, judged: 'observed' | 'confirmed' | 'lag-explained', lag: string[] = []) => {
      const endpoint = normaliser.endpointOf(p.request);
      tally.recordPair(endpoint, p, differ.diff(normaliser.normalise(p.primary), normaliser.normalise(p.shadow)), lag, judged);
    };
    judge(pair(1, '/items/1', reply(200, { price: 100, at: 'a' }), reply(200, { price: 10, at: 'b' })), 'confirmed');
    judge(pair(2, '/items/2', reply(200, { price: 5 }), reply(200, { price: 5 })), 'observed', ['$.stock']);
    judge(pair(3, '/items/3', reply(200, { price: 5 }), reply(503, { error: 'down' })), 'observed');
    tally.recordNoise('GET /items/:id', differ.diff(normaliser.normalise(reply(200, { at: 'a' })), normaliser.normalise(reply(200, { at: 'c' }))));
    tally.recordRecheck('GET /items/:id', false);
    const report = buildReport(tally, rules, { received: 3, compared: 3, dropped: 0, skipped: 0, pending: 0, noiseSamples: 1, noiseSkipped: 0 });
    return { report, tally };
  }

  it('a report built by the tally and reporter matches compareReportSchema, with every optional part', () => {
    const { report } = sampleReport();
    const { errors } = compileChecker(compareReportSchema)(report);
    assert.deepEqual(errors, []);
    const items = report.endpoints.find((e) => e.endpoint === 'GET /items/:id')!;
    assert.equal(items.samples, 3);
    assert.equal(items.serverErrors, 1);
    assert.ok(items.serverErrorExample, 'the server error example is there');
    const byName = Object.fromEntries(items.fields.map((f) => [f.field, f.classification]));
    assert.equal(byName['$.price'], 'regression');
    assert.equal(byName['$.at'], 'noise');
    assert.equal(byName['$.stock'], 'lag-explained');
  });

  it('the verdict matches compareVerdictSchema and names the failing endpoint', () => {
    const verdict = buildVerdict(sampleReport().report);
    assert.deepEqual(compileChecker(compareVerdictSchema)(verdict).errors, []);
    assert.equal(verdict.pass, false);
    assert.ok(verdict.reasons.some((r) => r.startsWith('GET /items/:id: regression rate')), verdict.reasons.join('\n'));
  });

  it('the schema is strict: a report with an unknown or a mistyped key is refused with its path', () => {
    const { report } = sampleReport();
    const bad = structuredClone(report) as unknown as Record<string, any>;
    bad.extra = 1;
    bad.endpoints[0].samples = -1;
    const { errors } = compileChecker(compareReportSchema, 'status.compare')(bad);
    assert.deepEqual(errors.sort(), ['status.compare/endpoints/0/samples: must be >= 0', "status.compare: unknown key 'extra'"].sort());
  });
});
