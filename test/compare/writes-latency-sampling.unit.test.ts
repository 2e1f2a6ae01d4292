/**
 * The parts of the compare engine added for shadow writes, latency and
 * active sampling, pure (no server): the write judge's reply and read-back
 * comparisons (ids mapped, timestamps of now within the tolerance, only the
 * write's own record of a list), the latency rule with its noise floor, the
 * verdict's rules for write endpoints, and the sampler's bounds.
 */
import { strict as assert } from 'node:assert';
import { validateCompareRules, type CompareRulesInput } from '../../compare/rules';
import { Normaliser } from '../../compare/normaliser';
import { Differ } from '../../compare/differ';
import { Tally } from '../../compare/tally';
import { buildReport, buildVerdict, describeActiveSampling, describeShadowWrites } from '../../compare/report';
import { WriteJudge, alignTimes } from '../../compare/writes';
import { latencyFigures, latencyProblems, percentile } from '../../compare/latency';
import { Recorder } from '../../compare/recorder';
import { ActiveSampler } from '../../compare/sampler';
import type { Replayer } from '../../compare/replayer';
import type { CapturedReply, CapturedRequest, MirroredPair } from '../../compare/types';

const json = (status: number, body: unknown, headers: Record<string, string> = {}): CapturedReply =>
  ({ status, headers: { 'content-type': 'application/json', ...headers }, body: Buffer.from(JSON.stringify(body)), latencyMs: 1 });
const post = (url: string, body: unknown): CapturedRequest => ({ method: 'POST', url, headers: { 'content-type': 'application/json' }, body: Buffer.from(JSON.stringify(body)) });

/** A Replayer stand-in that answers from a function and records what it was sent. */
function fakeReplayer(answer: (req: CapturedRequest) => CapturedReply) {
  const sent: CapturedRequest[] = [];
  return { sent, replayer: { idle: true, send: async (req: CapturedRequest) => { sent.push(req); return answer(req); }, close() { /* nothing */ } } as unknown as Replayer };
}

function judge(rules: CompareRulesInput, uold: (r: CapturedRequest) => CapturedReply, sandbox: (r: CapturedRequest) => CapturedReply) {
  const r = validateCompareRules(rules);
  const u = fakeReplayer(uold); const s = fakeReplayer(sandbox);
  return { j: new WriteJudge(r, new Normaliser(r), new Differ(), u.replayer, s.replayer), uoldSent: u.sent, sandboxSent: s.sent };
}

const BID_RULES: CompareRulesInput = {
  routes: ['/items/:id', '/items/:id/bids'],
  writes: { readBack: [{ route: 'POST /items/:id/bids', get: '/items/{path.id}', list: '$.bids', match: 'id' }] },
};

/** An item with its bids as both universes show it; `bids` already holds the new one. */
const item = (bids: Array<{ id: number; amount: number; date: string }>, bidCount: number) => json(200, { id: 5, bidCount, maxBid: Math.max(...bids.map((b) => b.amount)), bids });

describe('compare: shadow writes (reply shape, read-back)', () => {
  it('a correct write: ids assigned differently, other bids differ, dates a second apart — no difference', async () => {
    const { j, uoldSent, sandboxSent } = judge(BID_RULES,
      () => item([{ id: 9001, amount: 210.5, date: '2026-01-01T10:00:00.000Z' }, { id: 8999, amount: 200, date: '2025-12-31T09:00:00.000Z' }], 2),
      () => item([{ id: 8800, amount: 210.5, date: '2026-01-01T10:00:01.000Z' }], 1));
    const pair: MirroredPair = {
      id: 1, at: Date.now(), kind: 'write', request: post('/items/5/bids', { userId: 3, amount: 210.5 }),
      primary: json(201, { id: 9001, itemId: 5, amount: 210.5, bidCount: 2 }), shadow: json(201, { id: 8800, itemId: 5, amount: 210.5, bidCount: 1 }),
    };
    const r = await j.judge(pair);
    assert.deepEqual(r.diffs, []);
    assert.equal(r.readBack, true);
    assert.deepEqual([uoldSent[0].url, sandboxSent[0].url], ['/items/5', '/items/5']);
  });

  it('a write that stores a shifted date or a wrong amount shows in the read-back, named by field', async () => {
    const { j } = judge(BID_RULES,
      () => item([{ id: 9001, amount: 210.5, date: '2026-01-01T10:00:00.000Z' }], 1),
      () => item([{ id: 8800, amount: 2105, date: '2026-01-01T15:00:00.000Z' }], 1));
    const r = await j.judge({ id: 1, at: 0, kind: 'write', request: post('/items/5/bids', {}), primary: json(201, { id: 9001 }), shadow: json(201, { id: 8800 }) });
    assert.deepEqual(r.diffs.map((d) => d.field).sort(), ['readback:$.bids[*].amount', 'readback:$.bids[*].date']);
    assert.equal(r.diffs.find((d) => d.field.endsWith('date'))?.right, '"2026-01-01T15:00:00.000Z"');
  });

  it('a record missing from the sandbox\'s list is a difference; the reply is judged by status and shape only', async () => {
    const { j } = judge(BID_RULES, () => item([{ id: 9001, amount: 1, date: '2026-01-01T10:00:00.000Z' }], 1), () => item([{ id: 1, amount: 1, date: '2026-01-01T10:00:00.000Z' }], 1));
    const r = await j.judge({
      id: 1, at: 0, kind: 'write', request: post('/items/5/bids', {}),
      primary: json(201, { id: 9001, bidCount: 7, extraKey: true }), shadow: json(201, { id: 8800, bidCount: '7' }),
    });
    assert.deepEqual(r.diffs.map((d) => `${d.field} ${d.kind}`).sort(), ['$.bidCount type', '$.extraKey missing', 'readback:$.bids[id=<assigned id>] missing']);
  });

  it('without a rule: POST /users with a reply id is read back at /users/{id} in each universe, its id masked', async () => {
    const { j, uoldSent, sandboxSent } = judge({},
      (r) => json(200, { id: Number(r.url.split('/')[2]), nickname: 'ann', createdAt: '2026-01-01T10:00:00Z' }),
      (r) => json(200, { id: Number(r.url.split('/')[2]), nickname: 'ann', createdAt: '2026-01-01T10:00:02Z' }));
    const r = await j.judge({ id: 1, at: 0, kind: 'write', request: post('/users', { nickname: 'ann' }), primary: json(201, { id: 301 }), shadow: json(201, { id: 299 }) });
    assert.deepEqual([uoldSent[0].url, sandboxSent[0].url], ['/users/301', '/users/299']);
    assert.deepEqual(r.diffs, []);
  });

  it('a failed or refused write is not read back; a status difference is a difference', async () => {
    const { j, uoldSent } = judge(BID_RULES, () => json(200, {}), () => json(200, {}));
    const r = await j.judge({ id: 1, at: 0, kind: 'write', request: post('/items/5/bids', {}), primary: json(201, { id: 1 }), shadow: json(409, { error: 'too low' }) });
    assert.equal(r.readBack, false);
    assert.deepEqual(r.diffs.map((d) => `${d.field} ${d.kind}`).sort(), ['$.error extra', '$.id missing', 'status value']);
    assert.equal(uoldSent.length, 0, 'Uold is not read when the write did not succeed on both sides');
  });

  it('timestamps: within the tolerance they are equal, beyond it they differ; other strings untouched', () => {
    assert.deepEqual(alignTimes({ a: '2026-01-01T10:00:00Z', b: 'x', c: ['2026-01-01T10:00:00.000Z'] }, { a: '2026-01-01T10:00:20Z', b: 'y', c: ['2026-01-01T10:01:00.000Z'] }, 30_000),
      { a: '2026-01-01T10:00:00Z', b: 'y', c: ['2026-01-01T10:01:00.000Z'] });
  });

  it('read-back rules are checked: templates name route parameters or reply/request keys, lists are plain paths', () => {
    assert.throws(() => validateCompareRules({ writes: { readBack: [{ route: 'POST /items/:id/bids', get: '/items/{path.itemId}/{oops}', list: '$.bids[*]' }] } }), (e: Error) => {
      assert.match(e.message, /readBack\/0\/get: template \{oops\}/);
      assert.match(e.message, /readBack\/0\/get: \{path\.itemId\} is not a parameter/);
      assert.match(e.message, /readBack\/0\/list: must be a plain path/);
      return true;
    });
  });
});

describe('compare: the latency rule', () => {
  const rule = validateCompareRules({}).latency;
  const reservoir = (uold: number[], unew: number[]) => ({ seen: uold.length, uold, unew });

  it('nearest-rank percentiles', () => {
    const xs = Array.from({ length: 100 }, (_, i) => i + 1);
    assert.deepEqual([percentile(xs, 50), percentile(xs, 99), percentile(xs, 100), percentile([], 50)], [50, 99, 100, 0]);
  });

  it('fails p50 only beyond both the ratio and the noise floor; p99 is judged from 100 pairs', () => {
    const fast = Array(40).fill(2);
    assert.deepEqual(latencyProblems('GET /a', latencyFigures(reservoir(fast, Array(40).fill(20))), rule), [], '10× slower but within the 200 ms floor');
    const slow = latencyProblems('GET /a', latencyFigures(reservoir(fast, Array(40).fill(260))), rule);
    assert.equal(slow.length, 1);
    assert.match(slow[0], /GET \/a: Unew's p50 latency 260 ms vs Uold's 2 ms over 40 mirrored pairs/);
    assert.deepEqual(latencyProblems('GET /a', latencyFigures(reservoir(Array(10).fill(2), Array(10).fill(500))), rule), [], 'too few pairs: not judged');
    const tail = [...Array(98).fill(5), 5, 5];
    const unewTail = [...Array(98).fill(5), 400, 400];
    assert.match(latencyProblems('GET /b', latencyFigures(reservoir(tail, unewTail)), rule).join(), /p99 latency 400 ms/);
    assert.deepEqual(latencyProblems('GET /b', latencyFigures(reservoir(tail.slice(0, 99), unewTail.slice(0, 99))), rule), [], '99 pairs: p99 not judged');
  });

  it('the verdict names the latency rule; write endpoints have no minimum and their own threshold', () => {
    const rules = validateCompareRules({ minSamplesPerEndpoint: 5, writes: { maxRegressionRate: 0.5 } });
    const tally = new Tally(rules);
    const pair = (kind: MirroredPair['kind'], url: string, method = 'GET', uoldMs = 2, unewMs = 300): MirroredPair =>
      ({ id: 1, at: 0, kind, request: { method, url, headers: {} }, primary: { ...json(200, {}), latencyMs: uoldMs }, shadow: { ...json(200, {}), latencyMs: unewMs } });
    for (let i = 0; i < 30; i++) tally.recordPair('GET /slow', pair('read', '/slow'), [], [], 'observed');
    tally.recordPair('POST /w', pair('write', '/w', 'POST'), [{ field: 'readback:$.amount', kind: 'value' }], [], 'observed');
    tally.recordPair('POST /w', pair('write', '/w', 'POST'), [], [], 'observed');
    tally.recordPair('GET /rare', pair('replayed', '/rare'), [], [], 'observed');
    const report = buildReport(tally, rules, { received: 0, compared: 33, dropped: 0, skipped: 0, pending: 0, noiseSamples: 0, noiseSkipped: 0 });
    const v = buildVerdict(report);
    assert.deepEqual(v.failures.map((f) => `${f.rule} ${f.endpoint}`).sort(), ['latency GET /slow', 'min-samples GET /rare']);
    assert.match(v.reasons.find((r) => r.startsWith('GET /rare'))!, /1 pairs compared \(1 replayed by active sampling\)/);
    const w = report.endpoints.find((e) => e.endpoint === 'POST /w')!;
    assert.deepEqual([w.kind, w.regressionRate, w.latency], ['write', 0.5, undefined], 'a write has no latency figures (its shadow is the sandbox)');
    assert.deepEqual(report.endpoints.find((e) => e.endpoint === 'GET /rare')!.replayedUrls, ['/rare']);
    assert.equal(describeActiveSampling({ ...report, activeSampling: { replayed: 1, skipped: 0 } }), '1 pairs replayed to both universes: GET /rare 1 (/rare)', 'the demo names the replayed pairs');
    assert.match(describeShadowWrites(report), /^POST \/w \d+ \(\d+ read back, regression 50\.0%\)$/, 'the demo names the write endpoints judged in the sandbox');
    assert.equal(describeShadowWrites(null), 'no write mirrored into a sandbox');
    assert.match(describeActiveSampling({ ...report, endpoints: report.endpoints.map((e) => ({ ...e, replayed: 0 })), activeSampling: { replayed: 0, skipped: 0 } }), /^none replayed/);
  });
});

describe('compare: a write regression in the verdict', () => {
  it('is named as a write mirrored into the sandbox, its example as the sandbox\'s value (not Unew\'s)', () => {
    const rules = validateCompareRules({ minSamplesPerEndpoint: 5 });
    const tally = new Tally(rules);
    const w: MirroredPair = { id: 1, at: 0, kind: 'write', request: post('/items/7/bids', { amount: 202.26 }), primary: { ...json(201, {}), latencyMs: 1 }, shadow: { ...json(201, {}), latencyMs: 1 } };
    tally.recordPair('POST /items/:id/bids', w, [{ field: 'readback:$.bids[*].amount', kind: 'value', left: '202.26', right: '202' }], [], 'observed');
    const v = buildVerdict(buildReport(tally, rules, { received: 1, compared: 1, dropped: 0, skipped: 0, pending: 0, noiseSamples: 0, noiseSkipped: 0 }));
    assert.deepEqual(v.failures.map((f) => f.rule), ['regression']);
    assert.match(v.reasons[0], /^POST \/items\/:id\/bids: write mirrored into the sandbox: regression rate 100\.0% > 5\.0% \(writes\.maxRegressionRate\): field readback:\$\.bids\[\*\]\.amount .*Uold 202\.26 vs the sandbox 202/);
  });
});

describe('compare: active sampling (bounds)', () => {
  it('replays recorded safe requests of short endpoints only, one at a time, up to maxPerEndpoint; never writes', async () => {
    const rules = validateCompareRules({ minSamplesPerEndpoint: 3, activeSampling: { afterMs: 0, maxPerEndpoint: 2, maxTotal: 10 } });
    const rec = new Recorder({ recentPerEndpoint: 2, maxEndpoints: 10 });
    rec.record('GET /rare', { method: 'GET', url: '/rare?a=1', headers: {} }, false, 1);
    rec.record('GET /rare', { method: 'GET', url: '/rare?a=2', headers: {} }, false, 2);
    rec.record('GET /busy', { method: 'GET', url: '/busy', headers: {} }, false, 3);
    rec.record('POST /w', { method: 'POST', url: '/w', headers: {}, body: Buffer.from('{}') }, true, 4);
    const samples = new Map([['GET /rare', 0], ['GET /busy', 3]]);
    const uold = fakeReplayer(() => json(200, { ok: 1 }));
    const unew = fakeReplayer(() => json(200, { ok: 1 }));
    const pairs: MirroredPair[] = [];
    const s = new ActiveSampler(rules, rec, uold.replayer, unew.replayer, (e) => samples.get(e) ?? 0, (p) => pairs.push(p));
    for (let i = 0; i < 5; i++) { s.tick(); await new Promise((r) => setImmediate(r)); await new Promise((r) => setImmediate(r)); }
    s.stop();
    assert.deepEqual(pairs.map((p) => [p.kind, p.request.url]), [['replayed', '/rare?a=2'], ['replayed', '/rare?a=1']], 'the latest first, then older; bounded by maxPerEndpoint');
    assert.deepEqual(uold.sent.map((r) => r.url), unew.sent.map((r) => r.url), 'each replay went to both universes');
    assert.equal(s.replayed, 2);
    assert.deepEqual(rec.recent().writes.map((w) => w.url), ['/w'], 'writes are recorded for the load test, never sampled');
  });
});
