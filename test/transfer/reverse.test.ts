/**
 * Reverse replication (rollback after the switchover) at the transfer level:
 * the auction's v1 in Uold, convert(Uold) in Unew (the reference copier),
 * then v2-style writes on Unew — inserts, updates, a key move, deletes —
 * reach Uold converted back through the conversion's reverse, with the
 * position kept in Uold's meta tables: a restarted stream resumes from
 * there, and the verification (Unew -> Uold through the reverse) finds 0
 * differences. The stream writes Uold as the writer account only.
 */
import { strict as assert } from 'node:assert';
import * as mysql from 'mysql2/promise';
import conversion from '../../examples/auction/conversion';
import { copyConverted } from '../../examples/auction/convert-copy';
import { setupDatabase } from '../../examples/auction/database';
import { seed } from '../../examples/auction/seeder';
import type { MariaDbInstance } from '../../lib/mariadb';
import { reverseModule } from '../../transfer/conversion';
import { flushTo, readUoldPosition } from '../../transfer/flush';
import { readAppliedGtid, STATE_TABLE } from '../../transfer/meta';
import { dropReverseState, ReverseStream } from '../../transfer/reverse';
import { verify, verifyChangedSince } from '../../transfer/verify';
import { mariadbFixture } from '../fixtures/servers';
import { readerServerId } from './setup';

describe('transfer: reverse replication Unew -> Uold through the inverse conversion', function () {
  this.timeout(120_000);
  let uold: MariaDbInstance;
  let unew: MariaDbInstance;
  let writerUrl: string;
  let unewUrl: string;
  let uoldRoot: mysql.Connection;
  let unewRoot: mysql.Connection;
  const rev = reverseModule(conversion);

  before(async () => {
    [uold, unew] = await Promise.all([mariadbFixture(), mariadbFixture()]);
    await setupDatabase(uold, 'v1', { database: 'auction', appUser: 'app', appPassword: 'pw' });
    await setupDatabase(unew, 'v2', { database: 'auction', appUser: 'app', appPassword: 'pw' });
    await seed(`${uold.rootUrl}auction`, { users: 50, items: 100, bids: 400, seed: 3 });
    await copyConverted(`${uold.rootUrl}auction`, `${unew.rootUrl}auction`);
    await uold.createUser('writer', 'pw', ['SELECT, INSERT, UPDATE, DELETE, CREATE, DROP ON auction.*']);
    writerUrl = uold.urlFor('writer', 'pw');
    unewUrl = unew.rootUrl;
    uoldRoot = await uold.connect('auction');
    unewRoot = await unew.connect('auction');
  });
  after(async () => {
    await uoldRoot?.end().catch(() => undefined);
    await unewRoot?.end().catch(() => undefined);
  });

  const one = async (c: mysql.Connection, sql: string, params: unknown[] = []) => ((await c.query(sql, params)) as [any[], unknown])[0][0];

  it("v2's writes on Unew after the start position land in Uold converted back; a restart resumes from Uold's state; 0 differences", async () => {
    // The start position: Unew's position at the point of no return (nothing written by v2 yet).
    const start = await readUoldPosition(unewUrl);
    const before = await one(uoldRoot, 'SELECT COUNT(*) AS n, MAX(id) AS m FROM bids');
    const stream = new ReverseStream({ source: { url: unewUrl, database: 'auction' }, target: { url: writerUrl, database: 'auction' }, conversion, startPosition: start, serverId: readerServerId() });
    let ac = new AbortController();
    let running = stream.run(ac.signal);

    // v2's writes: new bids (with the items' derived columns v2 maintains), a balance, a purchase, a renamed user, a bid moved to another item, a deleted comment.
    const newBid = Number(before.m) + 1;
    await unewRoot.query('INSERT INTO item_bids (item_id, bid_id, user_id, qty, amount_cents, created_at) VALUES (?, ?, 1, 1, 12345, NOW()), (?, ?, 2, 2, 29, NOW())', [5, newBid, 6, newBid + 1]);
    await unewRoot.query('UPDATE items SET max_bid_cents = GREATEST(max_bid_cents, 12345), bid_count = bid_count + 1 WHERE id = 5');
    await unewRoot.query('UPDATE users SET balance_cents = balance_cents - 29, first_name = ?, last_name = ? WHERE id = 2', ['Mary Ann', 'van Rossum']);
    await unewRoot.query('INSERT INTO purchases (buyer_id, item_id, qty, created_at) VALUES (3, 7, 1, NOW())');
    await unewRoot.query('UPDATE item_bids SET item_id = 8 WHERE bid_id = ?', [newBid + 1]);
    const comment = await one(unewRoot, 'SELECT MIN(id) AS id FROM comments');
    await unewRoot.query('DELETE FROM comments WHERE id = ?', [comment.id]);

    let pos = await readUoldPosition(unewUrl);
    const f = await flushTo(writerUrl, 'auction', pos, 20_000);
    assert.ok(f.appliedPosition, 'Uold records the Unew position it applied');
    assert.ok(stream.progress().eventsApplied >= 7, `events applied: ${JSON.stringify(stream.progress())}`);
    assert.equal(stream.progress().startPosition, start);

    // Converted back: DECIMAL text from cents, one name column, bids by their own id, purchases into buy_now.
    assert.deepEqual(await one(uoldRoot, 'SELECT item_id, user_id, amount FROM bids WHERE id = ?', [newBid]), { item_id: 5, user_id: 1, amount: '123.45' });
    assert.deepEqual(await one(uoldRoot, 'SELECT item_id, amount FROM bids WHERE id = ?', [newBid + 1]), { item_id: 8, amount: '0.29' });
    assert.equal((await one(uoldRoot, 'SELECT name FROM users WHERE id = 2')).name, 'Mary Ann van Rossum');
    assert.equal((await one(uoldRoot, 'SELECT COUNT(*) AS n FROM comments WHERE id = ?', [comment.id])).n, 0);
    assert.equal((await one(uoldRoot, 'SELECT COUNT(*) AS n FROM bids')).n, Number(before.n) + 2);

    // A stopped stream (a worker crash) resumes from Uold's own state: nothing missed, nothing twice.
    ac.abort();
    await running;
    const saved = await readAppliedGtid(uoldRoot);
    await uoldRoot.query('COMMIT');
    assert.ok(saved, `${STATE_TABLE} in Uold holds the applied position`);
    await unewRoot.query('INSERT INTO item_bids (item_id, bid_id, user_id, qty, amount_cents, created_at) VALUES (9, ?, 4, 1, 100, NOW())', [newBid + 2]);
    await unewRoot.query('UPDATE items SET quantity = quantity + 1 WHERE id = 9');
    const again = new ReverseStream({ source: { url: unewUrl, database: 'auction' }, target: { url: writerUrl, database: 'auction' }, conversion, startPosition: start, serverId: readerServerId() });
    ac = new AbortController();
    running = again.run(ac.signal);
    pos = await readUoldPosition(unewUrl);
    await flushTo(writerUrl, 'auction', pos, 20_000);
    assert.equal(again.progress().eventsApplied - stream.progress().eventsApplied, 2, 'only the two new events were applied after the restart');
    assert.equal((await one(uoldRoot, 'SELECT amount FROM bids WHERE id = ?', [newBid + 2])).amount, '1.00');

    // Every row changed since the start, and every row at all, compared: reverse(Unew) = Uold.
    const quick = await verifyChangedSince({ source: { url: unewUrl, database: 'auction' }, target: { url: writerUrl, database: 'auction' }, conversion: rev, serverId: readerServerId() }, start);
    assert.equal(quick.ok, true, JSON.stringify(quick).slice(0, 600));
    assert.ok(quick.rowsChecked >= 7, `rows changed since the start compared: ${quick.rowsChecked}`);
    const full = await verify({ source: { url: unewUrl, database: 'auction' }, target: { url: writerUrl, database: 'auction' }, conversion: rev, serverId: readerServerId() });
    assert.deepEqual({ missing: full.missing, extra: full.extra, different: full.different }, { missing: [], extra: [], different: [] });
    assert.ok(full.rowsChecked > 600, `rows compared: ${full.rowsChecked}`);
    ac.abort();
    await running;

    // Nothing left in Uold once the rollback is over.
    await dropReverseState({ url: writerUrl, database: 'auction' });
    const [left] = await uoldRoot.query("SELECT table_name FROM information_schema.tables WHERE table_schema = 'auction' AND table_name LIKE '\\_imago%'") as [any[], unknown];
    assert.deepEqual(left, []);
  });

  it('refuses to start without a start position, and a conversion without a full reverse, naming the table', async () => {
    assert.throws(() => new ReverseStream({ source: { url: unewUrl, database: 'auction' }, target: { url: writerUrl, database: 'auction' }, conversion, startPosition: '', serverId: readerServerId() }), /IMAGO_OPTIONS_INVALID/);
    const partial = { ...conversion, reverse: conversion.reverse!.filter((r) => r.source !== 'purchases') };
    const s = new ReverseStream({ source: { url: unewUrl, database: 'auction' }, target: { url: writerUrl, database: 'auction' }, conversion: partial, startPosition: '0-1-1', serverId: readerServerId() });
    await assert.rejects(s.run(new AbortController().signal), /ROLLBACK_REVERSE_MISSING.*Unew table 'purchases' \(written from 'buy_now'\) has no reverse/);
  });
});
