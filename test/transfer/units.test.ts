import { strict as assert } from 'node:assert';
import { isImagoError } from '../../lib/errors';
import type { ConversionModule, Row } from '../../transfer/conversion';
import { createCopyUnit } from '../../transfer/copy-unit';
import { flushTo, readUoldPosition } from '../../transfer/flush';
import { createTransfer } from '../../transfer/transfer';
import { verify } from '../../transfer/verify';
import { readerServerId, startPair, expectOrderTotals } from './setup';

const OLD = [
  'CREATE TABLE people (id INT PRIMARY KEY, full_name VARCHAR(60) NOT NULL, city VARCHAR(30))',
  'CREATE TABLE orders (id INT PRIMARY KEY, person_id INT NOT NULL, amount DECIMAL(10,2) NOT NULL)',
];
const NEW = [
  'CREATE TABLE persons (pid INT PRIMARY KEY, first VARCHAR(30) NOT NULL, last VARCHAR(30) NOT NULL, order_total_cents BIGINT NOT NULL DEFAULT 0)',
  'CREATE TABLE purchases (order_no INT PRIMARY KEY, pid INT NOT NULL, cents BIGINT NOT NULL, KEY by_pid (pid))',
];
const REFRESH = 'UPDATE persons SET order_total_cents = (SELECT COALESCE(SUM(cents), 0) FROM purchases WHERE pid = ?) WHERE pid = ?';
const REFRESH_SET = 'UPDATE persons p LEFT JOIN (SELECT pid, SUM(cents) AS c FROM purchases WHERE pid IN (?) GROUP BY pid) x ON x.pid = p.pid SET p.order_total_cents = COALESCE(x.c, 0) WHERE p.pid IN (?)';
const conv: ConversionModule = {
  name: 'people v1->v2 (units)',
  tables: [
    {
      source: 'people', targets: [{ table: 'persons', key: ['pid'] }],
      convert: (r: Row) => { const [first, ...rest] = String(r.full_name).split(' '); return { persons: [{ pid: r.id, first, last: rest.join(' ') }] }; },
      preserveColumns: { persons: ['order_total_cents'] },
      refresh: [{ table: 'persons', keysOf: (r) => [[r.id, r.id]], sql: REFRESH, setSql: REFRESH_SET }],
    },
    {
      source: 'orders', targets: [{ table: 'purchases', key: ['order_no'] }],
      convert: (r: Row) => ({ purchases: [{ order_no: r.id, pid: r.person_id, cents: Math.round(Number(r.amount) * 100) }] }),
      refresh: [{ table: 'persons', keysOf: (r) => [[r.person_id, r.person_id]], sql: REFRESH, setSql: REFRESH_SET }],
    },
  ],
};

describe('transfer: tables copied by copy units beside one follower', () => {
  it('a follower (copyTables: []) and two units, one table each, under writes: verify 0 differences, derived totals right; a table has one copier', async () => {
    const p = await startPair(OLD, NEW);
    const c = await p.uold.connect('shop');
    await c.query('INSERT INTO people VALUES ?', [Array.from({ length: 20_000 }, (_, i) => [i + 1, `Ann${i} Lee`, null])]);
    for (let i = 0; i < 60_000; i += 10_000) await c.query('INSERT INTO orders VALUES ?', [Array.from({ length: 10_000 }, (_, j) => [i + j + 1, 1 + ((i + j) % 20_000), ((i + j) % 400 + 1) / 4])]);
    const common = { source: { url: p.sourceUrl, database: 'shop' }, target: { url: p.targetUrl, database: 'shop2' }, conversion: conv };
    const follower = createTransfer({ ...common, serverId: readerServerId(), copyTables: [] });
    const ac = new AbortController();
    const following = follower.run(ac.signal);
    // Started before the follower's state exists: a unit waits for it.
    const units = [createCopyUnit({ ...common, tables: ['people'], chunkSize: 1_000 }), createCopyUnit({ ...common, tables: ['orders'], chunkSize: 1_000 })];
    const copying = units.map((u) => u.run(ac.signal));
    let stop = false;
    const writer = (async () => {
      let n = 0;
      while (!stop) {
        const id = 1 + (n * 7919) % 20_000;
        await c.query("UPDATE people SET full_name = CONCAT('Bo', ?, ' Chen') WHERE id = ?", [n, id]);
        await c.query('INSERT INTO orders VALUES (?, ?, ?)', [100_000 + n, id, 2.5]);
        if (n % 3 === 0) await c.query('DELETE FROM orders WHERE id = ?', [1 + (n * 31) % 60_000]);
        if (n % 7 === 0) await c.query('UPDATE orders SET person_id = ? WHERE id = ?', [1 + (n * 13) % 20_000, 1 + (n * 17) % 60_000]);
        n++;
        await new Promise((r) => setTimeout(r, 3));
      }
      return n;
    })();
    try {
      await Promise.all(copying);
      for (const u of units) assert.equal(u.progress().phase, 'done');
      assert.equal(units[1].progress().tables[0].table, 'orders');
      assert.ok(units[1].progress().rowsCopied >= 50_000, `orders copied ${units[1].progress().rowsCopied}`);
      // A third unit cannot take a table another copier holds.
      await assert.rejects(createCopyUnit({ ...common, tables: ['people', 'orders'] }).run(new AbortController().signal),
        (e: unknown) => isImagoError(e, 'IMAGO_OPTIONS_INVALID') && /already copied by another copier/.test((e as Error).message));
      // The follower sees every table done and runs the refresh pass, then follows.
      const end = Date.now() + 60_000;
      while (follower.progress().phase !== 'following') {
        if (Date.now() > end) throw new Error(`follower did not finish: ${JSON.stringify(follower.progress())}`);
        await new Promise((r) => setTimeout(r, 50));
      }
      const fp = follower.progress();
      assert.deepEqual(fp.tables.map((t) => [t.table, t.done]).sort(), [['orders', true], ['people', true]]);
      assert.ok(fp.refreshRowsDone >= 20_000, `refresh pass ${fp.refreshRowsDone}`);
      stop = true;
      assert.ok(await writer > 50);
      await flushTo(p.targetUrl, 'shop2', await readUoldPosition(p.rootOld), 30_000);
      const report = await verify({ ...common, serverId: readerServerId() });
      assert.equal(report.ok, true, JSON.stringify(report).slice(0, 800));
      await expectOrderTotals(c, p);
    } finally { stop = true; await writer.catch(() => 0); await c.end(); ac.abort(); await following; await Promise.allSettled(copying); }
  });

  it('a unit with no follower state gives TRANSFER_STATE_MISSING after its wait', async () => {
    const p = await startPair(OLD, NEW);
    await assert.rejects(createCopyUnit({ source: { url: p.sourceUrl, database: 'shop' }, target: { url: p.targetUrl, database: 'shop2' }, conversion: conv, tables: ['people'], waitForStateMs: 500 }).run(new AbortController().signal),
      (e: unknown) => isImagoError(e, 'TRANSFER_STATE_MISSING'));
  });
});
