import { strict as assert } from 'node:assert';
import { Eta, workOf } from '../../transfer/eta';
import { DEFAULT_THROTTLE, validateCopyUnitOptions, validateTransferOptions } from '../../transfer/options';
import { placeholderCount, refreshPlans, validateRefreshSpecs, wholeScanWarning, wholeTableScans } from '../../transfer/refresh';
import { decide, p99Between, Throttler } from '../../transfer/throttler';
import { compareIntegerKeys, mayMeetChunk } from '../../transfer/overlap';
import { isImagoError } from '../../lib/errors';
import type { ConversionModule } from '../../transfer/conversion';

const s = { ...DEFAULT_THROTTLE, maxThreadsRunning: 10, criticalThreadsRunning: 40, maxUoldP99Ms: 50, criticalUoldP99Ms: 200, criticalPauseMs: 30_000, maxLagMs: 1_000 };
const calm = { threadsRunning: 2, p99Ms: 10, lagMs: 0, failures: 0 };
const none = { hibernateUntil: 0, criticalStreak: 0 };

describe('the throttle rule (max-load / critical-load)', () => {
  it('copies when every signal is under its max', () => {
    assert.equal(decide(s, calm, none, 0, false).reason, null);
  });

  it('waits above each max, naming the signal', () => {
    assert.match(decide(s, { ...calm, threadsRunning: 11 }, none, 0, false).reason!, /Threads_running 11 > 10/);
    assert.match(decide(s, { ...calm, p99Ms: 60 }, none, 0, false).reason!, /Uold p99 60 ms > 50 ms/);
    assert.match(decide(s, { ...calm, lagMs: 1_500 }, none, 0, false).reason!, /apply lag 1500 ms > 1000 ms/);
    assert.match(decide(s, { ...calm, failures: 3 }, none, 0, false).reason!, /load unknown/);
    assert.match(decide(s, calm, none, 0, true).reason!, /paused by operator/);
  });

  it('a p99 limit of 0 is off, and an unknown p99 does not throttle', () => {
    assert.equal(decide({ ...s, maxUoldP99Ms: 0 }, { ...calm, p99Ms: 1e6 }, none, 0, false).reason, null);
    assert.equal(decide(s, { ...calm, p99Ms: null }, none, 0, false).reason, null);
  });

  it("relative to Uold's own p99 before the copy: waits above the multiple and the floor, names both; off at 0 or without a baseline", () => {
    const r = { ...s, maxUoldP99Ms: 0, maxUoldP99Ratio: 1.5, uoldP99FloorMs: 10 };
    assert.equal(decide(r, { ...calm, p99Ms: 44, baselineP99Ms: 30 }, none, 0, false).reason, null, '44 ms ≤ 1.5 × 30');
    assert.match(decide(r, { ...calm, p99Ms: 46, baselineP99Ms: 30 }, none, 0, false).reason!, /Uold p99 46 ms > 1\.5 × its 30 ms before the copy/);
    // A small baseline: 4 → 9 ms is more than 1.5 × but within the 10 ms floor.
    assert.equal(decide(r, { ...calm, p99Ms: 9, baselineP99Ms: 4 }, none, 0, false).reason, null);
    assert.match(decide(r, { ...calm, p99Ms: 15, baselineP99Ms: 4 }, none, 0, false).reason!, /15 ms > 1\.5 × its 4 ms/);
    assert.equal(decide({ ...r, maxUoldP99Ratio: 0 }, { ...calm, p99Ms: 1e6, baselineP99Ms: 4 }, none, 0, false).reason, null);
    assert.equal(decide(r, { ...calm, p99Ms: 1e6, baselineP99Ms: null }, none, 0, false).reason, null);
  });

  it("the throttler's baseline is the interceptors' histogram at its first reading (Uold before the copy); the p99 it watches, the window after", async () => {
    const bounds = [5, 10, 50, 100, 500];
    // Before the copy: 1,000 requests, the slowest 1 % under 10 ms. Then a window of 100 requests at 50–100 ms.
    const readings = [[600, 395, 5, 0, 0, 0], [600, 395, 5, 100, 0, 0]];
    let n = 0;
    const t = new Throttler({ threadsRunning: async () => 1, latency: async () => [{ boundsMs: bounds, counts: readings[Math.min(n++, 1)] }] },
      { ...DEFAULT_THROTTLE, maxUoldP99Ratio: 2, checkIntervalMs: 10, p99WindowMs: 10_000 }, () => 0);
    t.start();
    try {
      for (const deadline = Date.now() + 2_000; t.p99Ms === null && Date.now() < deadline;) await new Promise((r) => setTimeout(r, 10));
    } finally { t.stop(); }
    assert.ok(t.baselineP99Ms! > 5 && t.baselineP99Ms! <= 10, `baseline ${t.baselineP99Ms}`);
    assert.ok(t.p99Ms! > 50 && t.p99Ms! <= 100, `window p99 ${t.p99Ms}`);
    assert.match(t.reason()!, /Uold p99 \d+ ms > 2 × its \d+ ms before the copy/);
  });

  it('critical load twice in a row hibernates the copy for criticalPauseMs, whatever the load does then', () => {
    const hot = { ...calm, threadsRunning: 50 };
    const first = decide(s, hot, none, 1_000, false);
    assert.equal(first.hibernateUntil, 0, 'one spike is not a crisis');
    assert.match(first.reason!, /Threads_running 50 > 10/);
    const second = decide(s, hot, first, 1_250, false);
    assert.equal(second.hibernateUntil, 31_250);
    assert.match(second.reason!, /critical load, copy paused for 30 s more.*critical 40/);
    const calmAgain = decide(s, calm, second, 20_000, false);
    assert.match(calmAgain.reason!, /critical load, copy paused for 12 s more/);
    assert.equal(decide(s, calm, calmAgain, 31_251, false).reason, null);
  });

  it('critical p99 hibernates too', () => {
    const hot = { ...calm, p99Ms: 500 };
    const d = decide(s, hot, decide(s, hot, none, 0, false), 250, false);
    assert.ok(d.hibernateUntil > 0);
  });
});

describe('p99 from the interceptor histograms', () => {
  const bounds = [1, 5, 10, 50, 100];
  it('takes the p99 of the requests between two cumulative histograms, interpolated in its bucket', () => {
    // 1000 new requests: 985 at most 5 ms, 15 in (10, 50]: the 990th is the 5th of those 15.
    const p = p99Between(bounds, [0, 0, 0, 0, 0, 0], [500, 485, 0, 15, 0, 0])!;
    assert.ok(Math.abs(p - (10 + 40 / 3)) < 1e-9, `p99 ${p}`);
    // Only what happened between the two histograms counts: the same 1000 again.
    assert.equal(p99Between(bounds, [500, 485, 0, 15, 0, 0], [1000, 970, 0, 30, 0, 0]), p);
    // 990 fast requests: the p99 is the fast bucket's bound.
    assert.equal(p99Between(bounds, [0, 0, 0, 0, 0, 0], [500, 490, 0, 10, 0, 0]), 5);
  });

  it('the overflow bucket spans up to twice the last bound; too few requests give no figure', () => {
    assert.equal(p99Between(bounds, [0, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 100]), 199);
    assert.equal(p99Between(bounds, [0, 0, 0, 0, 0, 0], [5, 0, 0, 0, 0, 0]), null);
  });
});

describe('the ETA', () => {
  it('weighs work by row size and predicts a steady copy exactly', () => {
    assert.deepEqual(workOf([{ done: 10, total: 100, weight: 2 }, { done: 0, total: 50, weight: 1 }]), { done: 20, total: 250 });
    const eta = new Eta({ minWindowMs: 10_000, windowShare: 1 / 3 });
    for (let t = 0; t <= 20_000; t += 500) eta.note(t, t * 5); // 5,000 units/s
    assert.equal(eta.rate(), 5_000);
    assert.equal(eta.seconds(200_000), 20);
  });

  it('a short stall moves a long-window estimate little', () => {
    const eta = new Eta({ minWindowMs: 30_000, windowShare: 1 / 3 });
    let done = 0;
    for (let t = 0; t <= 60_000; t += 500) { if (t < 50_000 || t > 53_000) done += 500; eta.note(t, done); }
    const r = eta.rate()!;
    assert.ok(r > 850 && r <= 1_000, `rate ${r}`);
  });

  it('no estimate before a pace is known', () => {
    const eta = new Eta();
    eta.note(0, 0);
    assert.equal(eta.seconds(100), null);
  });
});

describe('refresh specs', () => {
  const conv = (refresh: unknown[]): ConversionModule => ({ name: 'c', tables: [{ source: 'bids', targets: [{ table: 'b', key: ['id'] }], convert: () => ({}), refresh: refresh as never }] });
  it('need both the per-key and the set-based form; every omission is reported', () => {
    assert.throws(() => validateRefreshSpecs(conv([{ table: 'items', keysOf: () => [], sql: 'UPDATE items SET a = 1 WHERE id = ?' }, { table: 'x', keysOf: () => [], setSql: 'U ?' }])),
      (e: unknown) => isImagoError(e, 'TRANSFER_CONVERSION_INVALID') && /refresh\[0\].*setSql/.test((e as Error).message) && /refresh\[1\].*sql \(per key/.test((e as Error).message));
    validateRefreshSpecs(conv([{ table: 'items', keysOf: () => [], sql: 'U ? ', setSql: 'U (?)' }]));
  });

  it('specs shared by two tables are one plan', () => {
    const spec = { table: 'items', keysOf: () => [], sql: 'S ?', setSql: 'T (?)' };
    const c: ConversionModule = { name: 'c', tables: [{ source: 'a', targets: [], convert: () => ({}), refresh: [spec] }, { source: 'b', targets: [], convert: () => ({}), refresh: [{ ...spec }] }] };
    assert.equal(refreshPlans(c).length, 1);
  });

  it('a plan that reads a base table whole for a batch is found; derived tables, index reads and small tables are not', () => {
    // The plan MariaDB 10.11 gave the auction's first grouped setSql for 2,000 item ids (the IN list made a derived table).
    const grouped = [
      { table: '<subquery3>', type: 'ALL', rows: '2000' }, { table: 'i', type: 'eq_ref', rows: '1' },
      { table: '<derived2>', type: 'ref', rows: '10' }, { table: '<derived4>', type: 'ALL', rows: '2000' },
      { table: null, type: null, rows: null }, { table: 'item_bids', type: 'ALL', rows: '153812' },
    ];
    assert.deepEqual(wholeTableScans(grouped, 2000), [{ table: 'item_bids', rows: 153_812 }]);
    // The correlated form: every table by an index.
    assert.deepEqual(wholeTableScans([{ table: 'i', type: 'range', rows: 2000 }, { table: 'b', type: 'ref', rows: 1000 }], 2000), []);
    // A table of under ten batches' worth, read whole, costs about as much as the batch itself.
    assert.deepEqual(wholeTableScans([{ table: 'regions', type: 'ALL', rows: '19999' }], 2000), []);
    const w = wholeScanWarning({ table: 'items' }, [{ table: 'item_bids', rows: 153_812 }], 2000);
    assert.match(w, /^the refresh pass of 'items' reads item_bids \(about 153,812 rows\) whole for every batch of 2000 keys/);
    assert.match(w, /docs\/data-transfer\.md/);
  });

  it('counts placeholders outside quotes', () => {
    assert.equal(placeholderCount("UPDATE t SET a = '?' WHERE id IN (?) AND b = \"?\" AND `c?` IN (?)"), 2);
  });
});

describe('which stream changes may meet a chunk still to be written (overlap)', () => {
  const w = { floor: 100n, lastKey: [10], bound: [50] };
  it('only changes after the floor, to keys above the last copied one and up to the bound', () => {
    assert.equal(mayMeetChunk(w, 101n, [11]), true);
    assert.equal(mayMeetChunk(w, 100n, [11]), false, 'at the floor: every pending chunk is as new');
    assert.equal(mayMeetChunk(w, 101n, [10]), false, 'already copied');
    assert.equal(mayMeetChunk(w, 101n, [51]), false, 'above the bound: the stream alone owns it');
    assert.equal(mayMeetChunk(w, 101n, [50]), true);
    assert.equal(mayMeetChunk(w, 0n, [11]), true, 'an unknown coordinate counts as new');
  });
  it('knows nothing yet, or cannot order the key: counts as inside', () => {
    assert.equal(mayMeetChunk({ floor: 0n, lastKey: null, bound: undefined }, 5n, [1_000_000]), true);
    assert.equal(mayMeetChunk({ floor: 0n, lastKey: ['b'], bound: ['m'] }, 5n, ['z']), true, 'strings order by collation: not compared here');
    assert.equal(mayMeetChunk({ floor: 0n, lastKey: null, bound: null }, 5n, [1]), false, 'the table was empty when its copy began');
  });
  it('orders integer keys exactly, composite and beyond 2^53', () => {
    assert.equal(compareIntegerKeys([1, 2], [1, 3]), -1);
    assert.equal(compareIntegerKeys([2, 0], [1, 9]), 1);
    assert.equal(compareIntegerKeys(['9007199254740993'], [9007199254740991]), 1);
    assert.equal(compareIntegerKeys([2 ** 53], [1]), null, 'an unsafe JS number is not trusted');
    assert.equal(compareIntegerKeys([1.5], [1]), null);
    assert.equal(compareIntegerKeys([1], [1, 2]), null);
  });
});

describe('transfer options', () => {
  const conversion: ConversionModule = { name: 'c', tables: [{ source: 't', targets: [{ table: 't', key: ['id'] }], convert: (r) => ({ t: [r] }) }] };
  const endpoint = { url: 'mysql://u:p@127.0.0.1:3306', database: 'd' };

  it('an optional key passed as undefined keeps its default (a copy unit given `ingress: undefined` has no interceptors, not a crash)', () => {
    const u = validateCopyUnitOptions({ source: endpoint, target: endpoint, conversion, tables: ['t'], ingress: undefined, chunkSize: undefined });
    assert.deepEqual(u.ingress, []);
    assert.equal(u.chunkSize, 2_000);
    const t = validateTransferOptions({ source: endpoint, target: endpoint, conversion, serverId: 9, ingress: undefined });
    assert.deepEqual(t.ingress, []);
    assert.equal(t.copyTables, 'all');
  });
});
