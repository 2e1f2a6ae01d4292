/**
 * The auction's API contract, as a runnable suite against any base URL (v1,
 * v2, Unew during an upgrade). Read-only by default, so it can run against a
 * Unew that must stay an exact converted copy of Uold; --writes adds the
 * write checks (register, bid, buy-now, comment, and bad input that must be
 * refused with a 4xx and leave nothing written).
 *
 *   npx tsx examples/auction/tests/contract.ts http://127.0.0.1:8080 [--writes]   # exit 0 = all passed
 */
import { strict as assert } from 'node:assert';
import * as http from 'node:http';
import { parseArgs } from 'node:util';

export interface ContractReport { passed: string[]; failed: Array<{ name: string; error: string }>; skipped: string[] }

type Reply = { status: number; body: any };

function call(base: string, method: string, path: string, body?: unknown, raw?: string): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const payload = raw ?? (body === undefined ? undefined : JSON.stringify(body));
    const req = http.request(`${base}${path}`, {
      method, agent: false, timeout: 10_000,
      headers: payload === undefined ? {} : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) },
    }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { text += d; });
      res.on('end', () => { let b: any; try { b = text ? JSON.parse(text) : undefined; } catch { b = text; } resolve({ status: res.statusCode ?? 0, body: b }); });
    });
    req.on('timeout', () => req.destroy(new Error(`${method} ${path}: timeout`)));
    req.on('error', (e) => ((e as NodeJS.ErrnoException).code === 'EPIPE' || (e as NodeJS.ErrnoException).code === 'ECONNRESET' ? resolve({ status: 0, body: e.message }) : reject(e)));
    req.end(payload);
  });
}

const isInt = (v: unknown) => Number.isInteger(v);
const isMoney = (v: unknown) => typeof v === 'number' && Math.abs(Math.round(v * 100) - v * 100) < 1e-6;
const isIso = (v: unknown) => typeof v === 'string' && !Number.isNaN(Date.parse(v)) && v.endsWith('Z');

function expectError(r: Reply, status: number, code?: string): void {
  assert.equal(r.status, status, `expected ${status}, got ${r.status}: ${JSON.stringify(r.body)}`);
  assert.equal(typeof r.body?.error?.message, 'string', 'error replies carry error.message');
  assert.ok(r.body.error.message.length > 5, 'the message says what was wrong');
  if (code) assert.equal(r.body.error.code, code);
}

function expectSummary(i: any): void {
  assert.ok(isInt(i.id) && typeof i.name === 'string', 'item summary id/name');
  assert.ok(isMoney(i.initialPrice), 'initialPrice is money');
  assert.ok(i.maxBid === null || isMoney(i.maxBid), 'maxBid is money or null');
  assert.ok(isInt(i.bidCount) && i.bidCount >= 0, 'bidCount');
  assert.equal(i.maxBid === null, i.bidCount === 0, 'maxBid is null exactly when there is no bid');
  assert.ok(i.buyNow === null || isMoney(i.buyNow), 'buyNow');
  assert.ok(isIso(i.endDate), 'endDate is ISO UTC');
}

export async function runContract(base: string, opts: { writes?: boolean } = {}): Promise<ContractReport> {
  const report: ContractReport = { passed: [], failed: [], skipped: [] };
  const ctx: Record<string, any> = {};
  const check = async (name: string, fn: () => Promise<void | 'skip'>) => {
    try { if ((await fn()) === 'skip') report.skipped.push(name); else report.passed.push(name); } catch (err) { report.failed.push({ name, error: (err as Error).message }); }
  };
  const get = (p: string) => call(base, 'GET', p);
  const post = (p: string, b?: unknown, raw?: string) => call(base, 'POST', p, b, raw);

  await check('health answers ok', async () => { const r = await get('/health'); assert.equal(r.status, 200); assert.equal(r.body.status, 'ok'); });
  for (const what of ['regions', 'categories']) {
    await check(`${what} are listed by id`, async () => {
      const r = await get(`/${what}`);
      assert.equal(r.status, 200);
      const list = r.body[what];
      assert.ok(Array.isArray(list) && list.length > 0, `${what} is a non-empty list`);
      for (const x of list) assert.ok(isInt(x.id) && typeof x.name === 'string');
      assert.deepEqual(list.map((x: any) => x.id), list.map((x: any) => x.id).sort((a: number, b: number) => a - b));
      ctx[what] = list;
    });
  }
  await check('items in a category are paged and ordered by end date', async () => {
    for (const c of ctx.categories ?? []) {
      const r = await get(`/categories/${c.id}/items?size=5`);
      assert.equal(r.status, 200);
      assert.ok(r.body.items.length <= 5 && r.body.size === 5 && r.body.page === 0);
      r.body.items.forEach(expectSummary);
      const keys = r.body.items.map((i: any) => `${i.endDate}|${String(i.id).padStart(10, '0')}`);
      assert.deepEqual(keys, keys.slice().sort());
      if (r.body.items.length > 0 && !ctx.item) ctx.category = c.id;
      ctx.items = [...(ctx.items ?? []), ...r.body.items];
      const p1 = await get(`/categories/${c.id}/items?size=5&page=1`);
      assert.equal(p1.status, 200);
      for (const i of p1.body.items) assert.ok(!r.body.items.some((x: any) => x.id === i.id), 'pages do not overlap');
    }
    assert.ok(ctx.items.length > 0, 'some category has items');
  });
  await check('unknown or malformed category is refused', async () => {
    expectError(await get('/categories/99999999/items'), 404, 'NOT_FOUND');
    expectError(await get('/categories/abc/items'), 400, 'BAD_REQUEST');
    expectError(await get(`/categories/${ctx.category ?? 1}/items?size=1000`), 400, 'BAD_REQUEST');
  });
  await check('search finds items by name, case-insensitively, ordered by id', async () => {
    expectError(await get('/search?q=x'), 400, 'BAD_REQUEST');
    const word: string = (ctx.items?.[0]?.name ?? 'lamp').split(' ')[1] ?? 'lamp';
    const r = await get(`/search?q=${encodeURIComponent(word.toUpperCase())}&size=10`);
    assert.equal(r.status, 200);
    assert.ok(r.body.items.length > 0, `search for '${word}' finds the item it came from`);
    for (const i of r.body.items) { expectSummary(i); assert.ok(i.name.toLowerCase().includes(word.toLowerCase())); }
    assert.deepEqual(r.body.items.map((i: any) => i.id), r.body.items.map((i: any) => i.id).sort((a: number, b: number) => a - b));
  });
  await check('view item shows the max bid and the bid history, highest first', async () => {
    const withBids = (ctx.items ?? []).find((i: any) => i.bidCount > 1) ?? ctx.items?.[0];
    const r = await get(`/items/${withBids.id}`);
    assert.equal(r.status, 200);
    const it = r.body;
    expectSummary(it);
    assert.ok(isInt(it.seller?.id) && typeof it.seller?.nickname === 'string' && isInt(it.quantity) && isIso(it.startDate));
    assert.ok('buyNow' in it, 'buyNow is present (null when not offered)');
    assert.ok(Array.isArray(it.bids) && it.bids.length <= it.bidCount);
    for (let k = 1; k < it.bids.length; k++) assert.ok(it.bids[k - 1].amount > it.bids[k].amount, 'bid history is highest first');
    if (it.bids.length) assert.equal(it.maxBid, it.bids[0].amount, 'maxBid is the highest bid');
    for (const b of it.bids) assert.ok(isInt(b.id) && isInt(b.userId) && isMoney(b.amount) && isIso(b.date) && typeof b.nickname === 'string');
    ctx.item = it;
    expectError(await get('/items/999999999'), 404, 'NOT_FOUND');
  });
  await check('view user shows comments, newest first; about-me lists bids, sales, purchases', async () => {
    const id = ctx.item.seller.id;
    const r = await get(`/users/${id}`);
    assert.equal(r.status, 200);
    assert.ok(r.body.id === id && typeof r.body.name === 'string' && isInt(r.body.rating) && typeof r.body.region === 'string' && isIso(r.body.createdAt));
    const dates = r.body.comments.map((c: any) => c.date);
    assert.deepEqual(dates, dates.slice().sort().reverse());
    const a = await get(`/users/${id}/about-me`);
    assert.equal(a.status, 200);
    assert.ok(a.body.user.id === id && isMoney(a.body.user.balance) && Array.isArray(a.body.bids) && Array.isArray(a.body.purchases));
    // selling lists the seller's 20 newest items: the item is among them, or all 20 are newer (a large store).
    const selling = a.body.selling as Array<{ id: number }>;
    assert.ok(selling.some((i) => i.id === ctx.item.id) || (selling.length === 20 && selling.every((i) => i.id > ctx.item.id)), 'the seller sells the item');
    expectError(await get('/users/999999999'), 404, 'NOT_FOUND');
  });
  await check('unknown endpoints and methods are refused', async () => {
    expectError(await get('/no-such-thing'), 404);
    expectError(await call(base, 'DELETE', '/regions'), 405);
  });

  if (!opts.writes) { report.skipped.push('write checks (pass --writes)'); return report; }

  const nick = `ct${Date.now().toString(36)}${Math.floor(Math.random() * 1e6).toString(36)}`;
  await check('register creates a user; a taken nickname and bad fields are refused', async () => {
    const r = await post('/users', { nickname: nick, name: 'Grace  Brewster Hopper', email: `${nick}@example.test`, password: 'secret1', regionId: ctx.regions[0].id });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    assert.ok(isInt(r.body.id) && r.body.nickname === nick && r.body.name === 'Grace Brewster Hopper');
    const u = await get(`/users/${r.body.id}`);
    assert.equal(u.body.name, 'Grace Brewster Hopper');
    assert.equal(u.body.rating, 0);
    ctx.user = r.body.id;
    expectError(await post('/users', { nickname: nick, name: 'X Y', email: 'a@b.c', password: 'secret1', regionId: ctx.regions[0].id }), 409, 'CONFLICT');
    expectError(await post('/users', { nickname: `${nick}b`, name: 'X', email: 'not-an-email', password: 'secret1', regionId: 1 }), 400, 'BAD_REQUEST');
    expectError(await post('/users', { nickname: `${nick}c`, name: 'X', email: 'a@b.c', password: 'secret1', regionId: 99999 }), 404, 'NOT_FOUND');
    expectError(await post('/users', undefined, '{"nickname": "abc",'), 400, 'BAD_REQUEST');
    expectError(await post('/users', undefined, JSON.stringify({ nickname: `${nick}d`, name: 'x'.repeat(20), pad: 'y'.repeat(2_000_000) })), 413, 'PAYLOAD_TOO_LARGE');
    // Refused registrations must not have taken a row: the next id is still free
    // (this assumes no other writer registers meanwhile, true in our tests).
    const next = await get(`/users/${ctx.user + 1}`);
    assert.equal(next.status, 404, 'refused registrations wrote no user');
  });
  await check('a bid above the max is accepted and becomes the max; a lower one is refused and writes nothing', async () => {
    const before = (await get(`/items/${ctx.item.id}`)).body;
    const amount = Math.round(((before.maxBid ?? before.initialPrice) + 1.37) * 100) / 100;
    const r = await post(`/items/${ctx.item.id}/bids`, { userId: ctx.user, amount });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    assert.ok(isInt(r.body.id) && r.body.amount === amount && r.body.maxBid === amount && r.body.bidCount === before.bidCount + 1);
    const after = (await get(`/items/${ctx.item.id}`)).body;
    assert.equal(after.maxBid, amount);
    assert.equal(after.bidCount, before.bidCount + 1);
    assert.equal(after.bids[0].id, r.body.id);
    const low = await post(`/items/${ctx.item.id}/bids`, { userId: ctx.user, amount });
    expectError(low, 409, 'CONFLICT');
    assert.equal(low.body.error.currentMax, amount);
    expectError(await post(`/items/${ctx.item.id}/bids`, { userId: 999999999, amount: amount + 5 }), 404, 'NOT_FOUND');
    expectError(await post('/items/999999999/bids', { userId: ctx.user, amount: amount + 5 }), 404, 'NOT_FOUND');
    expectError(await post(`/items/${ctx.item.id}/bids`, { userId: ctx.user, amount: 'lots' }), 400, 'BAD_REQUEST');
    expectError(await post(`/items/${ctx.item.id}/bids`, { userId: ctx.user, amount: amount + 1.001 }), 400, 'BAD_REQUEST');
    expectError(await post(`/items/${ctx.item.id}/bids`, undefined, 'not json'), 400, 'BAD_REQUEST');
    const last = (await get(`/items/${ctx.item.id}`)).body;
    assert.equal(last.bidCount, after.bidCount, 'refused bids wrote nothing');
    assert.equal(last.maxBid, amount);
  });
  await check('a comment is stored and raises the rating of the user it is about', async () => {
    const to = ctx.item.seller.id;
    const before = (await get(`/users/${to}`)).body;
    const text = `contract comment ${nick}`;
    const r = await post('/comments', { fromUserId: ctx.user, toUserId: to, itemId: ctx.item.id, rating: 4, text });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    const after = (await get(`/users/${to}`)).body;
    assert.equal(after.rating, before.rating + 4);
    assert.ok(after.comments.some((c: any) => c.id === r.body.id && c.text === text && c.fromNickname === nick));
    expectError(await post('/comments', { fromUserId: ctx.user, toUserId: to, itemId: ctx.item.id, rating: 9, text }), 400, 'BAD_REQUEST');
    expectError(await post('/comments', { fromUserId: ctx.user, toUserId: 999999999, itemId: ctx.item.id, rating: 1, text }), 404, 'NOT_FOUND');
    assert.equal((await get(`/users/${to}`)).body.rating, after.rating, 'refused comments changed no rating');
  });
  await check('buy-now sells one unit at the buy-now price', async () => {
    const candidates = (ctx.items ?? []).filter((i: any) => i.buyNow !== null);
    for (const c of candidates) {
      const before = (await get(`/items/${c.id}`)).body;
      if (before.quantity < 1) continue;
      const r = await post(`/items/${c.id}/buy-now`, { userId: ctx.user, qty: 1 });
      assert.equal(r.status, 201, JSON.stringify(r.body));
      assert.ok(isInt(r.body.id) && r.body.price === before.buyNow && r.body.remaining === before.quantity - 1);
      assert.equal((await get(`/items/${c.id}`)).body.quantity, before.quantity - 1);
      const me = (await get(`/users/${ctx.user}/about-me`)).body;
      assert.ok(me.purchases.some((p: any) => p.id === r.body.id && p.itemId === c.id));
      expectError(await post(`/items/${c.id}/buy-now`, { userId: ctx.user, qty: before.quantity }), 409, 'CONFLICT');
      return;
    }
    return 'skip';
  });
  return report;
}

if (require.main === module) {
  const { values, positionals } = parseArgs({ allowPositionals: true, options: { writes: { type: 'boolean', default: false } } });
  if (positionals.length !== 1) { console.error('usage: contract.ts <baseUrl> [--writes]'); process.exit(2); }
  runContract(positionals[0].replace(/\/$/, ''), { writes: values.writes }).then((r) => {
    for (const p of r.passed) console.log(`ok    ${p}`);
    for (const s of r.skipped) console.log(`skip  ${s}`);
    for (const f of r.failed) console.log(`FAIL  ${f.name}: ${f.error}`);
    console.log(`${r.passed.length} passed, ${r.failed.length} failed, ${r.skipped.length} skipped`);
    process.exit(r.failed.length === 0 ? 0 : 1);
  }, (e) => { console.error(e.message); process.exit(1); });
}
