/**
 * The compare engine on the sample system: auction v1 on a seeded v1 database
 * as Uold, auction v2 on the same data converted row by row (conversion.ts)
 * as Unew. Pairs are made by sending the same GETs to both, as the ingress
 * interceptor's mirror does. Both services sit behind a decorating proxy that
 * adds a timestamp, a random id and a random header (noise to be learned).
 */
import { strict as assert } from 'node:assert';
import * as mysql from 'mysql2/promise';
import { mariadbFixture, onTeardown } from '../fixtures/servers';
import { setupDatabase } from '../../examples/auction/database';
import { seed } from '../../examples/auction/seeder';
import { copyConverted } from '../../examples/auction/convert-copy';
import { startAuction, type RunningAuction } from '../../examples/auction/launcher';
import conversion from '../../examples/auction/conversion';
import { createCompareEngine, type CompareEngine, type CompareReport } from '../../compare';
import type { MariaDbInstance } from '../../lib/mariadb';
import { closeMirrorAgent, get, mirror } from './mirror';
import { noisyProxy, type NoisyProxy } from './noisy-proxy';

const RULES = {
  routes: ['/items/:id', '/users/:id', '/users/:id/about-me', '/categories/:id/items'],
  minSamplesPerEndpoint: 12,
  maxRegressionRate: 0.01,
  noiseSamplingRate: 0.5,
  noise: { minSamples: 5 },
  lag: { recheckDelayMs: 50, attempts: 2, positionTimeoutMs: 5000 },
};
const ITEMS = 60; const USERS = 40;
const MONEY_FIELDS = ['$.initialPrice', '$.maxBid', '$.buyNow', '$.bids[*].amount'];

/** 15 requests per endpoint, deterministic. */
function workload(): string[] {
  const urls: string[] = [];
  for (let i = 0; i < 15; i++) {
    urls.push(`/items/${1 + ((i * 7) % ITEMS)}`, `/users/${1 + ((i * 3) % USERS)}`, `/users/${1 + ((i * 5) % USERS)}/about-me`, `/categories/${1 + (i % 10)}/items?size=10`);
  }
  return urls;
}

describe('compare: the auction sample system (v1 as Uold, converted v2 as Unew)', function () {
  let db1: MariaDbInstance; let db2: MariaDbInstance;
  let uold: NoisyProxy; let v1: RunningAuction;
  const engines: CompareEngine[] = [];

  before(async function () {
    [db1, db2] = await Promise.all([mariadbFixture(), mariadbFixture()]);
    const app = { database: 'auction', appUser: 'app', appPassword: 'pw' };
    await setupDatabase(db1, 'v1', app);
    await setupDatabase(db2, 'v2', app);
    await seed(`${db1.rootUrl}auction`, { users: USERS, items: ITEMS, bids: 240, seed: 7 });
    await copyConverted(`${db1.rootUrl}auction`, `${db2.rootUrl}auction`);
    v1 = await startAuction({ version: 'v1', dbUrl: db1.urlFor('app', 'pw', 'auction') });
    onTeardown(() => v1.stop());
    uold = await noisyProxy(v1.url);
    onTeardown(() => uold.close());
  });

  after(async () => {
    for (const e of engines) await e.close();
    closeMirrorAgent();
  });

  async function withV2<T>(fault: string | undefined, fn: (unewUrl: string) => Promise<T>): Promise<T> {
    const v2 = await startAuction({ version: 'v2', dbUrl: db2.urlFor('app', 'pw', 'auction'), env: fault ? { AUCTION_V2_FAULT: fault } : {} });
    const unew = await noisyProxy(v2.url);
    try { return await fn(unew.url); } finally { await unew.close(); await v2.stop(); }
  }

  async function compareAll(unewUrl: string, extra: Record<string, unknown> = {}): Promise<CompareEngine> {
    const engine = createCompareEngine({ ...RULES, ...extra, uoldUrl: uold.url, unewUrl });
    engines.push(engine);
    for (const url of workload()) engine.onPair(await mirror(uold.url, unewUrl, url));
    await engine.drain();
    return engine;
  }

  const endpoint = (r: CompareReport, name: string) => r.endpoints.find((e) => e.endpoint === name)!;
  const regressionFields = (r: CompareReport, name: string) => endpoint(r, name).fields.filter((f) => f.classification === 'regression').map((f) => f.field);

  it('passes the correct v2 and learns the timestamp, random id and trace header as noise', async () => {
    await withV2(undefined, async (unewUrl) => {
      const engine = await compareAll(unewUrl);
      const v = engine.verdict();
      assert.equal(v.pass, true, v.reasons.join('\n'));
      const r = engine.report();
      assert.deepEqual(r.endpoints.map((e) => e.endpoint).sort(), ['GET /categories/:id/items', 'GET /items/:id', 'GET /users/:id', 'GET /users/:id/about-me']);
      for (const e of r.endpoints) {
        assert.equal(e.samples, 15);
        assert.equal(e.regressions, 0, e.endpoint);
        const noise = e.fields.filter((f) => f.classification === 'noise').map((f) => f.field).sort();
        assert.deepEqual(noise, ['$.requestId', '$.servedAt', 'header:x-trace-id'], e.endpoint);
      }
    });
  });

  it('fails v2 with cents-rounding, naming GET /items/:id and a money field', async () => {
    await withV2('cents-rounding', async (unewUrl) => {
      const engine = await compareAll(unewUrl);
      const v = engine.verdict();
      assert.equal(v.pass, false);
      const reason = v.reasons.find((x) => x.startsWith('GET /items/:id: regression rate'));
      assert.ok(reason, v.reasons.join('\n'));
      const fields = regressionFields(engine.report(), 'GET /items/:id');
      assert.ok(fields.length > 0 && fields.every((f) => MONEY_FIELDS.includes(f)), `regression fields ${fields}`);
      assert.ok(reason.includes(`field ${fields[0]} `), reason);
      assert.ok(!v.reasons.some((x) => x.startsWith('GET /users/:id:')), 'user pages carry no amounts and pass');
    });
  });

  /** A v2 fault that fails exactly one endpoint on exactly one field: the one reason, and the field in the report. */
  async function expectOneRegression(fault: string, reason: RegExp, field: string): Promise<void> {
    await withV2(fault, async (unewUrl) => {
      const engine = await compareAll(unewUrl);
      const v = engine.verdict();
      assert.equal(v.pass, false);
      assert.equal(v.reasons.length, 1, v.reasons.join('\n'));
      assert.match(v.reasons[0], reason);
      assert.deepEqual(regressionFields(engine.report(), 'GET /items/:id'), [field]);
    });
  }

  it('fails v2 with missing-field, naming GET /items/:id and $.buyNow', () =>
    expectOneRegression('missing-field', /^GET \/items\/:id: regression rate 100\.0% > 1\.0% \(maxRegressionRate\): field \$\.buyNow \(missing\)/, '$.buyNow'));

  it('fails v2 with ordering, naming GET /items/:id and $.bids', () =>
    expectOneRegression('ordering', /^GET \/items\/:id: regression rate \d+\.\d% > 1\.0% \(maxRegressionRate\): field \$\.bids \(order\)/, '$.bids'));

  it('does not report a lagging Unew as a regression (positions hook), and would without rechecks', async () => {
    const c1 = await mysql.createConnection({ uri: `${db1.rootUrl}auction`, timezone: 'Z' });
    const c2 = await mysql.createConnection({ uri: `${db2.rootUrl}auction`, timezone: 'Z' });
    const gtid = async () => ((await c1.query('SELECT @@gtid_binlog_pos AS p') as any)[0][0].p as string);
    let applied = await gtid();
    const pendingApplies: Array<Promise<void>> = [];
    const bids = conversion.tables.find((t) => t.source === 'bids')!;
    /** A bid on Uold (v1); its converted rows reach Unew 400 ms later, as a lagging replication would deliver them. */
    const bidOnUold = async (itemId: number) => {
      const item = JSON.parse((await get(v1.url, `/items/${itemId}`)).body.toString());
      const amount = Math.max(item.maxBid ?? 0, item.initialPrice) + 1.25;
      const res = await fetch(`${v1.url}/items/${itemId}/bids`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ userId: 1 + (itemId % USERS), amount }) });
      const text = await res.text();
      assert.equal(res.status, 201, text);
      const { id } = JSON.parse(text) as { id: number };
      const position = await gtid();
      const [[row]] = await c1.query('SELECT * FROM bids WHERE id = ?', [id]) as any;
      pendingApplies.push(new Promise<void>((resolve, reject) => setTimeout(() => {
        (async () => {
          for (const r of bids.convert(row).item_bids) await c2.query('INSERT INTO item_bids SET ?', [r]);
          for (const spec of bids.refresh ?? []) for (const k of spec.keysOf(row)) await c2.query(spec.sql, k);
          applied = position;
        })().then(resolve, reject);
      }, 400)));
    };
    const scenario = (extra: Record<string, unknown>, unewUrl: string) => async () => {
      const engine = createCompareEngine({ ...RULES, ...extra, uoldUrl: uold.url, unewUrl });
      engines.push(engine);
      let n = 0;
      for (const url of workload()) {
        const m = /^\/items\/(\d+)$/.exec(url);
        if (m && n++ % 3 === 0) await bidOnUold(Number(m[1]));
        engine.onPair(await mirror(uold.url, unewUrl, url, async () => ({ primary: await gtid(), shadow: applied })));
      }
      await engine.drain();
      await Promise.all(pendingApplies.splice(0));
      return engine;
    };
    try {
      await withV2(undefined, async (unewUrl) => {
        const hooked = await scenario({ positions: { uold: gtid, unewApplied: async () => applied } }, unewUrl)();
        const items = endpoint(hooked.report(), 'GET /items/:id');
        assert.equal(items.regressions, 0, hooked.verdict().reasons.join('\n'));
        assert.ok(items.lagExplained >= 5, `${items.lagExplained} lag-explained pairs`);
        assert.equal(hooked.verdict().pass, true, hooked.verdict().reasons.join('\n'));

        const blind = await scenario({ lag: { attempts: 0 } }, unewUrl)();
        assert.ok(endpoint(blind.report(), 'GET /items/:id').regressions >= 5);
        assert.equal(blind.verdict().pass, false);
      });
    } finally {
      await c1.end(); await c2.end();
    }
  });
});
