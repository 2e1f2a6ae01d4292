import { strict as assert } from 'node:assert';
import { formatMs, formatNumber, formatPercent } from '../../client/output';
import { upgradeMetadata } from '../../client/metadata';
import { durationLabelAt } from '../../client/report/html';
import { pauseWindow } from '../../client/report/model';

describe('client: numbers for people, the web UI summary, labels that stay in their chart', () => {
  it('formats durations in ms with one decimal, counts with thousands separators, ratios as percentages', () => {
    assert.equal(formatMs(5.805883000000904), '5.8 ms');
    assert.equal(formatMs(41.745395000005374), '41.7 ms');
    assert.equal(formatMs(1234.56), '1,234.6 ms');
    assert.equal(formatMs(0), '0.0 ms');
    assert.equal(formatMs(null), '–');
    assert.equal(formatNumber(1234567), '1,234,567');
    assert.equal(formatNumber(0.1 + 0.2, 3), '0.300');
    assert.equal(formatNumber(Number.NaN), '–');
    assert.equal(formatPercent(1 / 240, 2), '0.42%');
    assert.equal(formatPercent(0.01), '1.0%');
  });

  it("names the pause with the last cut-over's figures formatted", () => {
    const w = pauseWindow({
      timings: [{ phase: 'termination', startedAt: 1_000 }, { phase: 'switchover', startedAt: 1_040, endedAt: 1_050 }],
      cutovers: [{ attempt: 1, switched: true, mode: 'fresh', pointOfNoReturn: true, holdMs: 5.805883000000904, drainMs: 1, flushMs: 1, verifyMs: 1, switchMs: 1, recordMs: 1, providerMs: 0, releaseMs: 1, totalMs: 41.745395000005374, uoldPosition: '', changedRowsVerified: 0 }],
    });
    assert.deepEqual(w, { start: 1, end: 1.05, label: 'termination + switchover (hold 5.8 ms, total 41.7 ms)' });
  });

  it('places a duration label right of its bar, else left of it, else inside: never past the chart edges', () => {
    const [left, right] = [150, 996];
    assert.deepEqual(durationLabelAt(200, 300, '2s', left, right), { x: 306, anchor: 'start', inside: false });
    // The last phase ends at the right edge: its label goes left of the bar.
    const last = durationLabelAt(990, 996, '1s (ongoing)', left, right);
    assert.deepEqual(last, { x: 984, anchor: 'end', inside: false });
    // A single bar over the whole width: inside, right-aligned.
    const whole = durationLabelAt(150, 996, '12m05s (ongoing)', left, right);
    assert.equal(whole.inside, true);
    assert.ok(whole.x <= right && whole.x - ('12m05s (ongoing)'.length * 7 + 4) >= left);
  });

  it("gives the web UI a one-line summary and details from the plan's names only", () => {
    const plan = {
      name: 'auction-v1-to-v2', system: 'auction', from: { version: 'v1' }, to: { version: 'v2' }, approval: { policy: 'manual' as const, timeoutMs: 1, onTimeout: 'abort' as const },
      tests: [{ name: 't', command: ['x'], timeoutMs: 1 }], unew: { provider: 'local' as const },
      uold: { ingress: [{ controlUrl: 'http://10.0.0.5:8081', tokenRef: 'env:IMAGO_INGRESS_TOKEN' }] },
    };
    const m = upgradeMetadata(plan, 'demo-1');
    assert.equal(m.staticSummary, 'auction v1 → v2 · plan auction-v1-to-v2 · provider local');
    assert.match(m.staticDetails, /^\*\*Imago upgrade\*\* of \*\*auction\*\* from \*\*v1\*\* to \*\*v2\*\*$/m);
    for (const line of ['- system: auction', '- from → to: v1 → v2', '- provider: local', '- plan: auction-v1-to-v2', '- approval: manual (`imago approve demo-1`)']) {
      assert.ok(m.staticDetails.split('\n').includes(line), line);
    }
    assert.doesNotMatch(m.staticDetails, /IMAGO_INGRESS_TOKEN|10\.0\.0\.5/, 'no reference or address of the plan');
    const long = upgradeMetadata({ ...plan, name: 'x'.repeat(300) }, 'imago-x');
    assert.equal(long.staticSummary.length, 200);
    assert.ok(long.staticSummary.endsWith('…'));
  });
});
