import { strict as assert } from 'node:assert';
import * as mysql from 'mysql2/promise';
import conversion from '../../examples/auction/conversion';
import { setupDatabase } from '../../examples/auction/database';
import { seed } from '../../examples/auction/seeder';
import { flushTo, readUoldPosition } from '../../transfer/flush';
import { Transfer } from '../../transfer/transfer';
import { verify } from '../../transfer/verify';
import { mariadbFixture } from '../fixtures/servers';
import { readerServerId } from './setup';

describe('transfer: the auction v1 -> v2 conversion, > 100k rows, under concurrent writes', () => {
  it('copies and follows; verify reports 0 differences and Unew derived bid counters match Uold', async () => {
    const [uold, unew] = await Promise.all([mariadbFixture(), mariadbFixture()]);
    await setupDatabase(uold, 'v1', { database: 'auction', appUser: 'app', appPassword: 'pw' });
    await setupDatabase(unew, 'v2', { database: 'auction', appUser: 'app', appPassword: 'pw' });
    await uold.createUser('repl', 'pw', ['REPLICATION SLAVE, REPLICATION CLIENT ON *.*', 'SELECT ON auction.*']);
    const seeded = await seed(uold.urlFor('root', '', 'auction'), { users: 20_000, items: 45_000, bids: 30_000, comments: 8_000 });
    assert.ok(seeded.rows >= 100_000, `seeded ${seeded.rows}`);
    const source = { url: uold.urlFor('repl', 'pw'), database: 'auction' };
    const target = { url: unew.rootUrl, database: 'auction' };
    const t = new Transfer({ source, target, conversion, serverId: readerServerId(), chunkSize: 2_000, parallelTables: 2 });
    const ac = new AbortController();
    const running = t.run(ac.signal);
    // Our own SQL writer stands in for the HTTP workload generator (which needs the v1 app running):
    // new bids (refresh of item counters), item edits, deletes of comments, new users.
    let stop = false;
    const w = await mysql.createConnection({ uri: uold.rootUrl, database: 'auction' });
    const writer = (async () => {
      let n = 0;
      while (!stop) {
        const item = 1 + (n * 7919) % 45_000;
        await w.query('INSERT INTO bids (user_id, item_id, qty, amount, created_at) VALUES (?, ?, 1, ?, NOW())', [1 + n % 20_000, item, 10 + n % 90]);
        if (n % 3 === 0) await w.query('UPDATE items SET quantity = quantity + 1, description = CONCAT(LEFT(description, 50), ?) WHERE id = ?', [` e${n}`, item]);
        if (n % 7 === 0) await w.query('DELETE FROM comments WHERE id = ?', [1 + (n * 13) % 8_000]);
        if (n % 11 === 0) await w.query('DELETE FROM bids WHERE id = ?', [1 + (n * 17) % 30_000]);
        n++;
        await new Promise((r) => setTimeout(r, 10));
      }
      return n;
    })();
    try {
      const end = Date.now() + 150_000;
      while (t.progress().phase !== 'following') {
        if (Date.now() > end) throw new Error(`copy did not finish: ${JSON.stringify(t.progress())}`);
        await new Promise((r) => setTimeout(r, 100));
      }
      const pr = t.progress();
      assert.ok(pr.rowsCopied >= 100_000, `copied ${pr.rowsCopied}`);
      stop = true;
      assert.ok(await writer > 50);
      await flushTo(target.url, 'auction', await readUoldPosition(uold.rootUrl), 30_000);
      const report = await verify({ source, target, conversion, serverId: readerServerId() });
      assert.equal(report.ok, true, JSON.stringify({ ...report, tables: undefined }).slice(0, 800));
      assert.ok(report.rowsChecked >= 100_000);
      // The derived counters (refresh specs, not compared by verify) equal Uold's own aggregates.
      const [old] = await w.query('SELECT item_id AS id, COUNT(*) AS n FROM bids GROUP BY item_id') as any;
      const n2 = await unew.connect('auction');
      const [neu] = await n2.query('SELECT id, bid_count AS n FROM items WHERE bid_count > 0') as any;
      await n2.end();
      const want = new Map((old as any[]).map((r) => [r.id, Number(r.n)]));
      assert.equal(neu.length, want.size);
      for (const r of neu as any[]) assert.equal(Number(r.n), want.get(r.id), `bid_count of item ${r.id}`);
    } finally { stop = true; await writer.catch(() => 0); await w.end(); ac.abort(); await running; }
  });
});
