/** Shared set-up for the transfer tests: Uold and Unew on their own MariaDB instances, a tiny shop schema. */
import { strict as assert } from 'node:assert';
import * as mysql from 'mysql2/promise';
import type { MariaDbInstance } from '../../lib/mariadb';
import { mariadbFixture } from '../fixtures/servers';

export interface Pair { uold: MariaDbInstance; unew: MariaDbInstance; sourceUrl: string; targetUrl: string; rootOld: string }

let nextServerId = 7000 + (process.pid % 500) * 4;
export function readerServerId(): number { return nextServerId++; }

export async function startPair(oldDdl: string[], newDdl: string[]): Promise<Pair> {
  const [uold, unew] = await Promise.all([mariadbFixture(), mariadbFixture()]);
  await uold.createDatabase('shop');
  await unew.createDatabase('shop2');
  const co = await uold.connect('shop');
  for (const d of oldDdl) await co.query(d);
  await co.end();
  const cn = await unew.connect('shop2');
  for (const d of newDdl) await cn.query(d);
  await cn.end();
  await uold.createUser('repl', 'pw', ['REPLICATION SLAVE, REPLICATION CLIENT ON *.*', 'SELECT ON shop.*']);
  await unew.createUser('admin', 'pw', ['ALL PRIVILEGES ON shop2.*']);
  return { uold, unew, sourceUrl: uold.urlFor('repl', 'pw'), targetUrl: unew.urlFor('admin', 'pw'), rootOld: uold.rootUrl };
}

/** Bounded random INSERT/UPDATE/DELETE load on Uold's `items` table (ids 1..maxId), as the live system would write. */
export function writeLoad(url: string, opts: { maxId: number; connections?: number; untilStopped: { stop: boolean } }): Promise<number> {
  const work = async () => {
    const c = await mysql.createConnection({ uri: url, database: 'shop' });
    let n = 0;
    try {
      while (!opts.untilStopped.stop) {
        const id = 1 + Math.floor(Math.random() * opts.maxId);
        const r = Math.random();
        if (r < 0.5) await c.query('UPDATE items SET qty = qty + 1, name = CONCAT(LEFT(name, 20), ?) WHERE id = ?', [n % 10, id]);
        else if (r < 0.7) await c.query('DELETE FROM items WHERE id = ?', [id]);
        else if (r < 0.9) await c.query('INSERT INTO items (id, name, qty, price) VALUES (?, ?, 1, 9.99) ON DUPLICATE KEY UPDATE qty = qty - 1', [id, `new ${id}`]);
        else { // a primary-key change
          await c.query('UPDATE IGNORE items SET id = ? WHERE id = ?', [1 + Math.floor(Math.random() * opts.maxId), id]);
        }
        n++;
      }
    } finally { await c.end(); }
    return n;
  };
  return Promise.all(Array.from({ length: opts.connections ?? 2 }, work)).then((a) => a.reduce((s, x) => s + x, 0));
}

export const ITEMS_V1 = 'CREATE TABLE items (id INT PRIMARY KEY, name VARCHAR(40) NOT NULL, qty INT NOT NULL, price DECIMAL(10,2) NOT NULL, added DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3))';

export async function seedItems(url: string, n: number): Promise<void> {
  const c = await mysql.createConnection({ uri: url, database: 'shop' });
  try {
    for (let i = 1; i <= n; i += 5000) {
      const rows = [];
      for (let j = i; j < Math.min(i + 5000, n + 1); j++) rows.push([j, `item ${j}`, j % 17, (j % 1000) / 10]);
      await c.query('INSERT INTO items (id, name, qty, price) VALUES ?', [rows]);
    }
  } finally { await c.end(); }
}

/** The derived column of the shop conversion: each person's order total in Unew equals the sum computed in Uold. */
export async function expectOrderTotals(uold: mysql.Connection, p: Pair): Promise<void> {
  const [old] = await uold.query('SELECT person_id AS pid, ROUND(SUM(amount) * 100) AS cents FROM orders GROUP BY person_id') as any;
  const n = await p.unew.connect('shop2');
  const [neu] = await n.query('SELECT pid, order_total_cents AS cents FROM persons WHERE order_total_cents > 0') as any;
  await n.end();
  const want = new Map((old as any[]).map((r) => [r.pid, Number(r.cents)]));
  assert.equal(neu.length, want.size);
  for (const r of neu as any[]) assert.equal(Number(r.cents), want.get(r.pid), `total of person ${r.pid}`);
}

/** Uold and Unew with the same `items` table, Uold seeded with `rows` rows: the identity transfer's pair. */
export async function itemsPair(rows: number): Promise<Pair> {
  const p = await startPair([ITEMS_V1], [ITEMS_V1]);
  await seedItems(p.rootOld, rows);
  return p;
}
