import { strict as assert } from 'node:assert';
import { LoadTally, loadProblems, peakRate, replayOrder, targetRate } from '../../compare/load';
import type { RecordedRequest } from '../../compare/types';

const req = (endpoint: string, at: number, write = false): RecordedRequest => ({ method: write ? 'POST' : 'GET', url: `/${at}`, headers: {}, endpoint, write, at });
const RULE = { multiple: 2, maxRatePerSec: 500, minRatePerSec: 10, maxErrorRate: 0.01, maxP99Ratio: 3, noiseFloorMs: 50 };

describe('compare: the load test (pure parts)', () => {
  it("aims at a multiple of Uold's peak rate, bounded", () => {
    // 100 ms buckets: a burst of 12 in one bucket is not 120 req/s; the busiest whole second counts.
    const buckets = [{ t: 0, count: 3 }, { t: 100, count: 12 }, { t: 900, count: 5 }, { t: 1000, count: 4 }, { t: 1500, count: 4 }];
    assert.equal(peakRate(buckets, 100), 20);
    assert.equal(peakRate([{ t: 0, count: 30 }, { t: 2000, count: 50 }], 2000), 25, 'buckets of 2 s: their own rate');
    assert.equal(peakRate([], 250), 0);
    assert.equal(targetRate(48, RULE), 96, '2 × 48');
    assert.equal(targetRate(0, RULE), 10, 'at least minRatePerSec');
    assert.equal(targetRate(400, RULE), 500, 'at most maxRatePerSec');
  });

  it('replays the live mix in arrival order; writes only with a sandbox', () => {
    const rec = { reads: [req('GET /a', 1), req('GET /a', 3)], writes: [req('POST /w', 2, true)] };
    assert.deepEqual(replayOrder(rec, true).map((r) => r.at), [1, 2, 3]);
    assert.deepEqual(replayOrder(rec, false).map((r) => r.at), [1, 3], 'no sandbox: writes are never sent (Unew must not be written)');
  });

  it("fails an endpoint on errors, and on a p99 far above Uold's live p99; the floor absorbs small differences", () => {
    const t = new LoadTally();
    for (let i = 0; i < 100; i++) t.record('GET /fast', false, 5 + (i % 3), true);
    for (let i = 0; i < 100; i++) t.record('GET /slow', false, i < 90 ? 20 : 400, true);
    for (let i = 0; i < 100; i++) t.record('POST /w', true, 10, i >= 5);
    const s = t.summary();
    assert.deepEqual(s.find((e) => e.endpoint === 'GET /slow'), { endpoint: 'GET /slow', write: false, sent: 100, errors: 0, p50: 20, p99: 400 });
    const p = loadProblems(s, new Map([['GET /fast', 2], ['GET /slow', 30]]), RULE);
    assert.equal(p.length, 2, p.join('\n'));
    assert.match(p.find((x) => x.startsWith('GET /slow'))!, /p99 under load 400 ms vs Uold's live p99 30 ms/);
    assert.match(p.find((x) => x.startsWith('POST /w'))!, /the sandbox failed 5\/100 requests under load/);
    assert.ok(!p.some((x) => x.startsWith('GET /fast')), '7 ms vs 2 ms: over 3× but within the 50 ms floor');
  });
});
