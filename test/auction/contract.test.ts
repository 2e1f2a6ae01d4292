import { strict as assert } from 'node:assert';
import * as http from 'node:http';
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { prepare, start, getJson, rowCounts, SMALL, type AuctionDbs } from './helpers';
import { runContract } from '../../examples/auction/tests/contract';
import { seed } from '../../examples/auction/seeder';
import { setupDatabase } from '../../examples/auction/database';
import conversion, { toCents, splitName } from '../../examples/auction/conversion';
import type { RunningAuction } from '../../examples/auction/launcher';

/** Runs one of the auction's commands the way an operator or the upgrade plan would. */
function command(file: string, args: string[], env: Record<string, string> = {}) {
  const r = spawnSync(process.execPath, ['--require', require.resolve('tsx/cjs'), path.join(__dirname, '../../examples/auction', file), ...args],
    { env: { ...process.env, ...env }, encoding: 'utf8', timeout: 60_000 });
  return { code: r.status, out: `${r.stdout}${r.stderr}` };
}

function post(base: string, path: string, raw: string): Promise<{ status: number; body: any }> {
  return new Promise((resolve, reject) => {
    const req = http.request(`${base}${path}`, { method: 'POST', agent: false, headers: { 'content-type': 'application/json' } }, (res) => {
      let t = '';
      res.on('data', (d) => { t += d; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: t ? JSON.parse(t) : undefined }));
    });
    req.on('error', reject);
    req.end(raw);
  });
}

/** A sample of read requests across every endpoint, chosen from the seeded data. */
function sample(): string[] {
  const paths = ['/regions', '/categories', '/categories/999999/items', '/items/99999999', '/users/99999999', '/search?q=a'];
  for (let c = 1; c <= 20; c += 3) paths.push(`/categories/${c}/items?size=10`, `/categories/${c}/items?page=2&size=7`);
  for (const q of ['lamp', 'VINTAGE', 'clock 1', 'golden', '%', 'guitar']) paths.push(`/search?q=${encodeURIComponent(q)}&size=15`);
  for (let i = 1; i <= SMALL.items; i += 37) paths.push(`/items/${i}`);
  for (let u = 1; u <= SMALL.users; u += 23) paths.push(`/users/${u}`, `/users/${u}/about-me`);
  return paths;
}

describe('auction: conversion, v1/v2 equivalence and the API contract', function () {
  let dbs: AuctionDbs;
  let v1: RunningAuction;
  let v2: RunningAuction;

  before(async () => {
    dbs = await prepare({ v2: true });
    [v1, v2] = await Promise.all([start('v1', dbs.v1.app), start('v2', dbs.v2!.app)]);
  });

  it('converts money exactly and splits names the way v2 registers them', () => {
    assert.equal(toCents('0.29'), 29);
    assert.equal(toCents('1234567.05'), 123456705);
    assert.equal(toCents(12.3), 1230);
    assert.deepEqual(splitName('Mary Ann  Lee'), { first_name: 'Mary', last_name: 'Ann Lee' });
    assert.deepEqual(splitName('Cher'), { first_name: 'Cher', last_name: '' });
    const bids = conversion.tables.find((t) => t.source === 'bids')!;
    assert.deepEqual(bids.convert({ id: 9, user_id: 2, item_id: 5, qty: 1, amount: '10.10', created_at: 'x' }),
      { item_bids: [{ item_id: 5, bid_id: 9, user_id: 2, qty: 1, amount_cents: 1010, created_at: 'x' }] });
    assert.deepEqual(bids.refresh![0].keysOf({ item_id: 5 }), [[5]]);
    assert.deepEqual(conversion.tables.find((t) => t.source === 'items')!.preserveColumns, { items: ['max_bid_cents', 'bid_count'] });
  });

  it('sets up databases idempotently, with an app user that can only read, insert and update', async () => {
    const before = await rowCounts(dbs.db, dbs.v1.name);
    const m = /app_v1_\d+/.exec(dbs.v1.app)![0];
    await setupDatabase(dbs.db, 'v1', { database: dbs.v1.name, appUser: m, appPassword: 'pw' });
    assert.deepEqual(await rowCounts(dbs.db, dbs.v1.name), before, 'a repeated set-up keeps the data');
    await assert.rejects(setupDatabase(dbs.db, 'v2', { database: dbs.v1.name, appUser: m, appPassword: 'pw' }), (e: any) => e.code === 'AUCTION_SCHEMA_UNKNOWN');
    const mysql = await import('mysql2/promise');
    const app = await mysql.createConnection(dbs.v1.app);
    try {
      await assert.rejects(app.query('DELETE FROM bids WHERE id = 1'), /command denied/);
      await assert.rejects(app.query('CREATE TABLE x (id INT PRIMARY KEY)'), /command denied/);
      await assert.rejects(app.query('SELECT * FROM mysql.user'), /denied/);
    } finally { await app.end(); }
  });

  it('seeds deterministically, and seeding v2 directly equals converting seeded v1', async () => {
    const name = 'auction_v2_direct';
    await setupDatabase(dbs.db, 'v2', { database: name, appUser: 'app_direct', appPassword: 'pw' });
    const r = await seed(`${dbs.db.rootUrl}${name}`, SMALL);
    assert.equal(r.schema, 'v2');
    assert.equal(r.rows, 16 + 20 + SMALL.users + SMALL.items + SMALL.bids + SMALL.comments!);
    for (const t of ['regions', 'categories', 'users', 'items', 'item_bids', 'comments', 'bid_sequence']) {
      const [row] = await dbs.db.query(`SELECT (SELECT COUNT(*) FROM ${dbs.v2!.name}.${t}) AS n,
        (SELECT COUNT(*) FROM (SELECT * FROM ${dbs.v2!.name}.${t} EXCEPT SELECT * FROM ${name}.${t}) x) AS d1,
        (SELECT COUNT(*) FROM (SELECT * FROM ${name}.${t} EXCEPT SELECT * FROM ${dbs.v2!.name}.${t}) x) AS d2`) as any[];
      assert.ok(Number(row.n) > 0, `${t} has rows`);
      assert.deepEqual([Number(row.d1), Number(row.d2)], [0, 0], `${t}: converted v1 and seeded v2 differ`);
    }
    const [agg] = await dbs.db.query(`SELECT SUM(bid_count) AS n, SUM(max_bid_cents > 0) AS withBids FROM ${name}.items`) as any[];
    assert.equal(Number(agg.n), SMALL.bids, 'denormalised bid counts add up to the bids');
    assert.ok(Number(agg.withBids) > SMALL.items / 2);
  });

  it('v2 serving converted v1 data replies exactly as v1 across all endpoints', async () => {
    const paths = sample();
    let withBids = 0;
    const statuses = new Set<number>();
    for (const p of paths) {
      const [a, b] = await Promise.all([getJson(v1.url + p), getJson(v2.url + p)]);
      assert.deepEqual(b, a, `GET ${p} differs between v1 and v2`);
      statuses.add(a.status);
      if (a.body?.bids?.length > 1) withBids++;
    }
    assert.ok(paths.length >= 70, `sample of ${paths.length} requests`);
    assert.ok(withBids >= 5, 'the sample includes items with a bid history');
    assert.deepEqual([...statuses].sort(), [200, 400, 404]);
  });

  it('each injected v2 fault changes replies that a correct v2 gets right', async () => {
    const paths = sample().filter((p) => p.startsWith('/items/'));
    for (const fault of ['cents-rounding', 'missing-field', 'ordering']) {
      const bad = await start('v2', dbs.v2!.app, { AUCTION_V2_FAULT: fault });
      let differ = 0;
      for (const p of paths) {
        const [a, b] = await Promise.all([getJson(v1.url + p), getJson(bad.url + p)]);
        if (JSON.stringify(a) !== JSON.stringify(b)) differ++;
      }
      await bad.stop();
      assert.ok(differ >= paths.length / 3, `fault ${fault}: only ${differ} of ${paths.length} replies differ`);
    }
  });

  it('refuses bad input with a 4xx and a clear message, and writes nothing', async () => {
    for (const [svc, name] of [[v1, dbs.v1.name], [v2, dbs.v2!.name]] as const) {
      const before = await rowCounts(dbs.db, name);
      const cases: Array<[string, string, number, RegExp]> = [
        ['/items/3/bids', '{"userId": 1, "amount": ', 400, /malformed JSON/],
        ['/items/3/bids', '[1,2]', 400, /JSON object/],
        ['/items/3/bids', JSON.stringify({ userId: 1, amount: 0.001 }), 400, /amount/],
        ['/items/3/bids', JSON.stringify({ userId: 1, amount: 1 }), 409, /current maximum/],
        ['/items/3/bids', JSON.stringify({ userId: 99999, amount: 100000 }), 404, /user 99999 does not exist/],
        ['/items/99999/bids', JSON.stringify({ userId: 1, amount: 100000 }), 404, /item 99999 does not exist/],
        ['/items/3/buy-now', JSON.stringify({ userId: 1, qty: 0 }), 400, /qty/],
        ['/comments', JSON.stringify({ fromUserId: 1, toUserId: 2, itemId: 3, rating: 1 }), 400, /'text'/],
        ['/users', JSON.stringify({ nickname: 'user1', name: 'A B', email: 'a@b.c', password: 'secret', regionId: 1 }), 409, /taken/],
        ['/users', JSON.stringify({ nickname: 'fresh_one', name: 'A B', email: 'a@b.c', password: 'secret', regionId: 1, pad: 'x'.repeat(20_000) }), 413, /limit/],
      ];
      for (const [path, raw, status, msg] of cases) {
        const r = await post(svc.url, path, raw);
        assert.equal(r.status, status, `${path} ${raw.slice(0, 60)}: ${JSON.stringify(r.body)}`);
        assert.match(r.body.error.message, msg);
      }
      assert.deepEqual(await rowCounts(dbs.db, name), before, `${name}: a refused request wrote something`);
    }
  });

  it('the contract command exits 0 on a correct service and 1 on a faulty one', async () => {
    const good = command('tests/contract.ts', [v2.url]);
    assert.equal(good.code, 0, good.out);
    assert.match(good.out, /9 passed, 0 failed, 1 skipped/);
    const bad = await start('v2', dbs.v2!.app, { AUCTION_V2_FAULT: 'ordering' });
    const r = command('tests/contract.ts', [bad.url]);
    await bad.stop();
    assert.equal(r.code, 1, r.out);
    assert.match(r.out, /FAIL +view item shows the max bid and the bid history, highest first: bid history is highest first/);
  });

  it('refuses to start on an invalid configuration, listing every problem', () => {
    const r = command('v1/main.ts', ['--port', '0'], { DATABASE_URL: 'postgres://x', AUCTION_POOL_SIZE: '0', AUCTION_DB_TIMEZONE: 'Mars/Base' });
    assert.equal(r.code, 2, r.out);
    assert.match(r.out, /AUCTION_CONFIG_INVALID/);
    for (const k of ['databaseUrl', 'poolSize', 'timezone']) assert.match(r.out, new RegExp(k));
    const f = command('v2/main.ts', [], { DATABASE_URL: dbs.v2!.app, AUCTION_V2_FAULT: 'bogus' });
    assert.equal(f.code, 2, f.out);
    assert.match(f.out, /AUCTION_V2_FAULT='bogus' is not one of cents-rounding, missing-field, ordering/);
  });

  it('v1 and v2 pass the same API-contract suite, writes included', async () => {
    for (const svc of [v1, v2]) {
      const r = await runContract(svc.url, { writes: true });
      assert.deepEqual(r.failed, [], `${svc.url}: ${JSON.stringify(r.failed)}`);
      assert.deepEqual(r.skipped, []);
      assert.ok(r.passed.length >= 13, `${r.passed.length} checks passed`);
    }
  });
});
