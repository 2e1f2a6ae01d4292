import { strict as assert } from 'node:assert';
import { baselineP99, evaluateRules, p99Of, type RuleSettings, type ServedSample } from '../../workflows/rollback-rules';

const S: RuleSettings = { sampleWindowMs: 10_000, minRequests: 20, maxErrorRate: 0.05, maxP99Ratio: 3, minP99Ms: 50 };
const NOW = 1_000_000;
/** n replies of `upstream`, each `ms` long, ending evenly over the last 5 s; every `errEvery`-th a 500. */
function replies(upstream: string, n: number, ms: number, errEvery = 0, endAt = NOW): ServedSample[] {
  return Array.from({ length: n }, (_, i) => {
    const end = endAt - 5_000 + (i * 5_000) / n;
    return { upstream, start: end - ms, end, status: errEvery && (i + 1) % errEvery === 0 ? 500 : 200 };
  });
}

describe('automatic rollback rules', () => {
  it("the baseline is Uold's p99 before the switch, 5xx aside", () => {
    const before = [...replies('uold', 98, 10, 0, NOW - 60_000), { upstream: 'uold', start: 0, end: 40, status: 200 }, { upstream: 'uold', start: 1, end: 41, status: 200 }, { upstream: 'uold', start: 0, end: 9_000, status: 502 }];
    assert.equal(baselineP99(before), 40);
    assert.equal(baselineP99([]), null);
    assert.equal(p99Of([5, 1, 3]), 5);
  });

  it('a healthy window passes both rules, with the figures', () => {
    const r = evaluateRules(replies('unew', 100, 20), NOW, 10, S);
    assert.deepEqual(r.map((x) => x.ok), [true, true]);
    assert.match(r[0].detail, /^0 of 100 replies were 5xx in the last 10 s \(0\.0 %, limit 5\.0 %\)$/);
    assert.match(r[1].detail, /p99 20\.0 ms over 100 replies in the last 10 s \(limit 50\.0 ms: 3 × the 10\.0 ms before the switch, at least 50 ms\)/);
  });

  it('5xx above the limit fails the error-rate rule', () => {
    const r = evaluateRules(replies('unew', 100, 20, 10), NOW, 10, S);
    assert.deepEqual([r[0].ok, r[0].value], [false, 0.1]);
  });

  it('p99 above ratio × baseline (and above the floor) fails the latency rule; below the floor it does not', () => {
    assert.equal(evaluateRules(replies('unew', 100, 400), NOW, 100, S)[1].ok, false);
    assert.equal(evaluateRules(replies('unew', 100, 290), NOW, 100, S)[1].ok, true);
    assert.equal(evaluateRules(replies('unew', 100, 40), NOW, 2, S)[1].ok, true, '20 × a 2 ms baseline, but under minP99Ms');
    assert.match(evaluateRules(replies('unew', 100, 400), NOW, null, S)[1].detail, /no baseline from before the switch, not judged/);
  });

  it("judges only the target's replies of the window, and only with enough of them", () => {
    const r = evaluateRules([...replies('unew', 10, 20, 1), ...replies('uold', 100, 9_000, 1)], NOW, 10, S);
    assert.deepEqual(r.map((x) => x.ok), [true, true]);
    assert.match(r[0].detail, /10 request\(s\) in the last 10 s \(judged from 20\)/);
    const old = evaluateRules(replies('unew', 100, 20, 1, NOW - 30_000), NOW, 10, S);
    assert.match(old[0].detail, /^0 request/);
  });
});
