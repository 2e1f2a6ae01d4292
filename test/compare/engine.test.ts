import { strict as assert } from 'node:assert';
import { randomUUID } from 'node:crypto';
import v8 from 'node:v8';
import vm from 'node:vm';
import { createCompareEngine, validateCompareRules, positionReached, type CompareEngine } from '../../compare';
import { Normaliser } from '../../compare/normaliser';
import { Differ } from '../../compare/differ';
import { isImagoError } from '../../lib/errors';
import { closeMirrorAgent, jsonReply, jsonServer, mirror, pairOf, type JsonServer } from './mirror';

interface Item { id: number; cents: number; title: string }

/** A realistic item reply; `fault` changes it the way a buggy v2 would. */
function itemJson(it: Item, fault?: 'cents' | 'missing' | 'order') {
  return {
    id: it.id,
    title: it.title,
    price: fault === 'cents' ? Math.floor(it.cents / 100) : it.cents / 100,
    ...(fault === 'missing' ? {} : { seller: { id: 7, nickname: 'bob' } }),
    bids: (fault === 'order' ? [2, 1] : [1, 2]).map((n) => ({ id: it.id * 10 + n, amount: (it.cents + n * 50) / 100 })),
    servedAt: new Date(Date.now() + Math.floor(Math.random() * 1000)).toISOString(),
    requestId: randomUUID(),
  };
}

function catalogue(n = 10): Map<number, Item> {
  return new Map(Array.from({ length: n }, (_, i) => [i + 1, { id: i + 1, cents: 1000 + i * 137, title: `Item ${i + 1}` }]));
}

function itemServer(items: Map<number, Item>, fault?: 'cents' | 'missing' | 'order'): Promise<JsonServer> {
  return jsonServer((path) => {
    const m = /^\/items\/(\d+)/.exec(path);
    const it = m ? items.get(Number(m[1])) : undefined;
    return it ? [200, itemJson(it, fault)] : [404, { error: 'not found' }];
  });
}

describe('compare: rules', () => {
  it('fills defaults and freezes the result', () => {
    const r = validateCompareRules({ routes: ['/items/:id'] });
    assert.equal(r.minSamplesPerEndpoint, 30);
    assert.equal(r.maxRegressionRate, 0.01);
    assert.equal(r.noise.minSamples, 5);
    assert.equal(r.limits.queueSize, 2000);
    assert.ok(Object.isFrozen(r) && Object.isFrozen(r.routes));
  });

  it('rejects unknown keys and bad values, reporting every error with its path', () => {
    assert.throws(() => validateCompareRules({ bogus: 1, maxRegressionRate: 2, noise: { what: 1 }, routes: ['items'] }), (e: unknown) => {
      assert.ok(isImagoError(e, 'COMPARE_RULES_INVALID'));
      for (const s of ["compare: unknown key 'bogus'", 'compare/maxRegressionRate', "compare/noise: unknown key 'what'", 'compare/routes/0']) assert.ok(e.message.includes(s), `${s} in ${e.message}`);
      return true;
    });
    assert.throws(() => validateCompareRules({ ignoreValues: [{ pattern: '(' }], ignorePaths: ['$.a[x'] }), (e: unknown) => {
      assert.ok(isImagoError(e, 'COMPARE_RULES_INVALID'));
      assert.match(e.message, /compare\/ignorePaths\/0: not a valid JSON path/);
      assert.match(e.message, /compare\/ignoreValues\/0\/pattern: not a valid regular expression/);
      return true;
    });
  });

  it('rejects an engine config without usable URLs', () => {
    assert.throws(() => createCompareEngine({ uoldUrl: 'nope', unewUrl: 'http://127.0.0.1:1', minSamplesPerEndpoint: 0 }), (e: unknown) => {
      assert.ok(isImagoError(e, 'COMPARE_RULES_INVALID'));
      assert.match(e.message, /compare\/uoldUrl/);
      assert.match(e.message, /compare\/minSamplesPerEndpoint/);
      return true;
    });
  });
});

describe('compare: normaliser and differ', () => {
  const rules = validateCompareRules({ routes: ['/items/:id'], ignorePaths: ['$..servedAt'], ignoreValues: [{ pattern: '^[0-9a-f-]{36}$', paths: ['$.requestId'] }] });
  const n = new Normaliser(rules);
  const d = new Differ();

  it('names endpoints by route pattern, else by replacing id-like segments', () => {
    assert.equal(n.endpointOf({ method: 'get', url: '/items/42?x=1', headers: {} }), 'GET /items/:id');
    assert.equal(n.endpointOf({ method: 'GET', url: '/users/17/bids', headers: {} }), 'GET /users/:id/bids');
    assert.equal(n.endpointOf({ method: 'GET', url: '/s/3f2504e0-4f89-11d3-9a0c-0305e82c3301', headers: {} }), 'GET /s/:id');
  });

  it('drops ignored paths and values, then diffs field by field', () => {
    const it = { id: 1, cents: 1250, title: 'A' };
    const a = n.normalise(jsonReply(itemJson(it)));
    assert.deepEqual(d.diff(a, n.normalise(jsonReply(itemJson(it)))), [], 'servedAt and requestId are ignored by the rules');
    const cents = d.diff(a, n.normalise(jsonReply(itemJson(it, 'cents'))));
    assert.deepEqual(cents.map((x) => [x.field, x.kind, x.left, x.right]), [['$.price', 'value', '12.5', '12']]);
    const missing = d.diff(a, n.normalise(jsonReply(itemJson(it, 'missing'))));
    assert.deepEqual(missing.map((x) => [x.field, x.kind]), [['$.seller', 'missing']]);
    const order = d.diff(a, n.normalise(jsonReply(itemJson(it, 'order'))));
    assert.deepEqual(order.map((x) => [x.field, x.kind]), [['$.bids', 'order']], 'reordered records give one order difference, not one per element');
  });

  it('compares status, headers and text bodies', () => {
    const html = (s: string, status = 200) => ({ status, headers: { 'content-type': 'text/html', date: s, 'x-v': 'same' }, body: Buffer.from(`<p>${s}</p>\n<b>x</b>`), latencyMs: 1 });
    const diffs = d.diff(n.normalise(html('a')), n.normalise(html('b', 500)));
    assert.deepEqual(diffs.map((x) => x.field), ['status', 'text'], 'the date header is ignored by default');
    const withPattern = new Normaliser(validateCompareRules({ textPatterns: ['<p>[ab]</p>'] }));
    assert.deepEqual(d.diff(withPattern.normalise(html('a')), withPattern.normalise(html('b'))), []);
  });

  it('compares replication positions (MariaDB GTID lists, numbers)', () => {
    assert.ok(positionReached('0-1-10', '0-2-10'));
    assert.ok(!positionReached('0-1-11', '0-1-10'));
    assert.ok(!positionReached('0-1-5,1-1-3', '0-1-9'));
    assert.ok(positionReached('0-1-5,1-1-3', '1-1-4,0-1-9'));
    assert.ok(positionReached('17', '20') && !positionReached('20', '17'));
  });
});

describe('compare: engine on live services', function () {
  const engines: CompareEngine[] = [];
  const servers: JsonServer[] = [];
  const rules = { routes: ['/items/:id'], minSamplesPerEndpoint: 20, maxRegressionRate: 0.01, noiseSamplingRate: 1, noise: { minSamples: 10 } };
  /** Uold and Unew serving the same catalogue (Unew with `fault`), compared over `pairs` requests. */
  async function runOnItems(fault: Parameters<typeof itemServer>[1], pairs: number, extra: Record<string, unknown> = {}) {
    const items = catalogue();
    const [uold, unew] = [await itemServer(items), await itemServer(items, fault)];
    servers.push(uold, unew);
    return run(uold, unew, pairs, extra);
  }
  async function run(uold: JsonServer, unew: JsonServer, pairs: number, extra: Record<string, unknown> = {}) {
    const engine = createCompareEngine({ ...rules, ...extra, uoldUrl: uold.url, unewUrl: unew.url });
    engines.push(engine);
    for (let i = 0; i < pairs; i++) engine.onPair(await mirror(uold.url, unew.url, `/items/${(i % 10) + 1}`));
    await engine.drain();
    return engine;
  }
  after(async () => {
    for (const e of engines) await e.close();
    for (const s of servers) await s.close();
    closeMirrorAgent();
  });

  it('passes a correct Unew and learns timestamp and random fields as noise', async () => {
    const engine = await runOnItems(undefined, 40);
    const v = engine.verdict();
    assert.equal(v.pass, true, v.reasons.join('\n'));
    const ep = engine.report().endpoints.find((e) => e.endpoint === 'GET /items/:id')!;
    assert.equal(ep.samples, 40);
    assert.equal(ep.regressions, 0);
    assert.ok(ep.noiseSamples >= 10, `noise samples ${ep.noiseSamples}`);
    for (const f of ['$.servedAt', '$.requestId']) {
      const fr = ep.fields.find((x) => x.field === f)!;
      assert.equal(fr.classification, 'noise', f);
      // Two replies can carry the same millisecond now and then: nearly always different, not always.
      assert.ok(fr.differenceRate > 0.9, `${f} difference rate ${fr.differenceRate}`);
      assert.ok(fr.noiseRate > 0.9, `${f} noise rate ${fr.noiseRate}`);
    }
    assert.ok(JSON.parse(JSON.stringify(engine.report())).endpoints.length >= 1, 'report is JSON-serialisable');
  });

  for (const [fault, field] of [['cents', '$.price'], ['missing', '$.seller'], ['order', '$.bids']] as const) {
    it(`fails a Unew with the ${fault} fault, naming GET /items/:id and ${field}`, async () => {
      const engine = await runOnItems(fault, 30, { lag: { recheckDelayMs: 10, attempts: 1 } });
      const v = engine.verdict();
      assert.equal(v.pass, false);
      assert.equal(v.reasons.length, 1, v.reasons.join('\n'));
      assert.match(v.reasons[0], /^GET \/items\/:id: regression rate (9\d|100)\.0% > 1\.0%/);
      assert.ok(v.reasons[0].includes(`field ${field} `), v.reasons[0]);
      assert.ok(!v.reasons[0].includes('servedAt'), 'noise fields are not blamed');
      const fr = engine.report().endpoints[0].fields[0];
      assert.equal(fr.field, field);
      assert.equal(fr.classification, 'regression');
      assert.ok(fr.examples.length >= 1 && fr.examples[0].diff.some((x) => x.field === field));
      assert.match(fr.examples[0].uold.body, /"price"/);
    });
  }

  it('fails an endpoint with too few samples', async () => {
    const engine = await runOnItems(undefined, 5);
    const v = engine.verdict();
    assert.equal(v.pass, false);
    assert.match(v.reasons.join('\n'), /GET \/items\/:id: 5 pairs compared, needs at least 20/);
  });

  it('explains differences caused by a lagging Unew, and only them', async () => {
    // Uold's items change; Unew applies each change 150 ms later (as replication would).
    const uoldItems = catalogue(); const unewItems = catalogue();
    let applied = 0; let written = 0;
    const [uold, unew] = [await itemServer(uoldItems), await itemServer(unewItems)];
    servers.push(uold, unew);
    const write = (id: number) => {
      const cents = uoldItems.get(id)!.cents + 1;
      uoldItems.get(id)!.cents = cents; written++;
      setTimeout(() => { unewItems.get(id)!.cents = cents; applied++; }, 150);
    };
    const scenario = async (extra: Record<string, unknown>) => {
      const engine = createCompareEngine({ ...rules, ...extra, uoldUrl: uold.url, unewUrl: unew.url });
      engines.push(engine);
      for (let i = 0; i < 30; i++) {
        const id = (i % 10) + 1;
        if (i % 3 === 0) write(id);
        engine.onPair(await mirror(uold.url, unew.url, `/items/${id}`));
      }
      await engine.drain();
      return engine;
    };
    const timed = await scenario({ lag: { recheckDelayMs: 200, attempts: 3 } });
    const ep = timed.report().endpoints[0];
    assert.equal(ep.regressions, 0, JSON.stringify(timed.verdict().reasons));
    // At least every read right after a write differed at first (later reads within 150 ms differ too).
    assert.ok(ep.lagExplained >= 10, `${ep.lagExplained} lag-explained pairs`);
    assert.equal(ep.fields.find((f) => f.field === '$.price')!.classification, 'lag-explained');
    assert.equal(timed.verdict().pass, true);

    const hooked = await scenario({ lag: { recheckDelayMs: 20, attempts: 2, positionTimeoutMs: 2000 }, positions: { uold: async () => String(written), unewApplied: async () => String(applied) } });
    assert.equal(hooked.report().endpoints[0].regressions, 0);
    assert.ok(hooked.report().endpoints[0].lagExplained >= 10);

    // The same traffic without rechecks: the lag differences count, so the check can fail.
    const blind = await scenario({ lag: { attempts: 0 } });
    assert.ok(blind.report().endpoints[0].regressions >= 10);
    assert.equal(blind.verdict().pass, false);
  });

  it('does not recheck when the pair positions prove Unew had caught up', async () => {
    const items = catalogue();
    const [uold, unew] = [await itemServer(items), await itemServer(items, 'cents')];
    servers.push(uold, unew);
    const engine = createCompareEngine({ ...rules, uoldUrl: uold.url, unewUrl: unew.url });
    engines.push(engine);
    for (let i = 0; i < 5; i++) engine.onPair(await mirror(uold.url, unew.url, `/items/${i + 1}`, async () => ({ primary: '0-1-9', shadow: '0-1-9' })));
    await engine.drain();
    const ep = engine.report().endpoints[0];
    assert.equal(ep.rechecks, 0);
    assert.equal(ep.regressions, 5);
  });
});

describe('compare: bounded memory and queue', function () {
  const gc = (() => { v8.setFlagsFromString('--expose-gc'); return vm.runInNewContext('gc') as () => void; })();
  const offline = { uoldUrl: 'http://127.0.0.1:9', unewUrl: 'http://127.0.0.1:9', noiseSamplingRate: 0, lag: { attempts: 0 } };

  it('fails on Unew server errors below the regression threshold; errors on both sides are not counted', async () => {
    const feed = async (rules: Record<string, unknown>) => {
      const engine = createCompareEngine({ ...offline, routes: ['/items/:id'], minSamplesPerEndpoint: 5, ...rules });
      const body = itemJson({ id: 1, cents: 1234, title: 'x' });
      for (let i = 0; i < 400; i++) {
        const unew = i === 100 ? jsonReply({ error: 'query timed out' }, 500)
          : i === 200 ? { status: 0, headers: {}, body: Buffer.alloc(0), latencyMs: 3, error: 'ECONNRESET' }
            : jsonReply(body);
        engine.onPair(pairOf(`/items/${1 + (i % 9)}`, jsonReply(body), unew));
      }
      engine.onPair(pairOf('/items/1', jsonReply({ error: 'busy' }, 503), jsonReply({ error: 'busy' }, 503)));
      await engine.drain();
      const v = engine.verdict();
      const r = engine.report();
      await engine.close();
      return { v, r };
    };
    const strict = await feed({});
    const e = strict.r.endpoints.find((x) => x.endpoint === 'GET /items/:id')!;
    assert.equal(e.serverErrors, 2, 'the 500 and the reset; not the 503 on both sides');
    assert.ok(e.regressionRate <= 0.01, `regression rate ${e.regressionRate} is under maxRegressionRate`);
    assert.equal(strict.v.pass, false);
    assert.match(strict.v.reasons.join('\n'), /GET \/items\/:id: Unew failed where Uold answered in 2\/401 pairs .*maxServerErrorRate.*e\.g\. GET \/items\/\d: Uold 200 vs Unew 500/);
    const tolerant = await feed({ maxServerErrorRate: 0.01 });
    assert.equal(tolerant.v.pass, true, tolerant.v.reasons.join('\n'));
  });

  it('keeps memory bounded over 100k pairs with many endpoints and fields', async () => {
    const engine = createCompareEngine({ ...offline, routes: ['/items/:id'], limits: { maxEndpoints: 50, maxFieldsPerEndpoint: 40, maxExamples: 100 } });
    const it = { id: 1, cents: 1234, title: 'x' };
    const base = itemJson(it);
    const measure = () => { gc(); return process.memoryUsage().heapUsed; };
    let before = 0;
    for (let i = 0; i < 100_000; i++) {
      // Distinct junk paths (endpoint cap), distinct field names (field cap), a real fault every 7th pair.
      const url = i % 2 ? `/items/${i}` : `/junk-${i % 5000}/x`;
      const left = { ...base, [`k${i % 3000}`]: i };
      const right = { ...base, price: i % 7 ? base.price : 0, [`k${(i + 1) % 3000}`]: i };
      engine.onPair(pairOf(url, jsonReply(left), jsonReply(right)));
      if (i % 1000 === 999) await engine.drain();
      if (i === 9_999) before = measure();
    }
    await engine.drain();
    const after = measure();
    const r = engine.report();
    assert.equal(r.compared, 100_000);
    assert.equal(r.dropped, 0);
    assert.ok(r.endpoints.length <= 51, `${r.endpoints.length} endpoints`);
    assert.ok(r.endpoints.every((e) => e.fields.length <= 41));
    const examples = r.endpoints.reduce((n, e) => n + e.fields.reduce((m, f) => m + f.examples.length, 0), 0);
    assert.ok(examples <= 100, `${examples} examples`);
    const growthMb = (after - before) / 1048576;
    assert.ok(growthMb < 20, `heap grew ${growthMb.toFixed(1)} MB between 10k and 100k pairs`);
    const items = r.endpoints.find((e) => e.endpoint === 'GET /items/:id')!;
    assert.equal(items.samples, 50_000);
    assert.ok(Math.abs(items.fields.find((f) => f.field === '$.price')!.differenceRate - 1 / 7) < 0.01);
    await engine.close();
  });

  it('drops and counts pairs when the queue is full instead of blocking', async () => {
    const engine = createCompareEngine({ ...offline, limits: { queueSize: 100 } });
    const p = pairOf('/a', jsonReply({ a: 1 }), jsonReply({ a: 1 }));
    for (let i = 0; i < 10_000; i++) engine.onPair(p);
    await engine.drain();
    const r = engine.report();
    assert.equal(r.received, 10_000);
    assert.equal(r.dropped, 9_900);
    assert.equal(r.compared, 100);
    await engine.close();
  });
});
