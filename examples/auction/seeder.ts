/**
 * Seeder: a deterministic auction data set of a chosen size, fast enough for
 * millions of rows (multi-row INSERTs of 2,000 rows, two connections in
 * flight). The same options and seed always give the same rows. It generates
 * v1 rows; into a v2 database it writes their conversion (conversion.ts) plus
 * the derived columns, so "seed v1 then convert" and "seed v2" agree.
 *
 *   npx tsx examples/auction/seeder.ts --url mysql://root@127.0.0.1:3306/auction --users 10000 --items 50000 --bids 200000
 */
import { parseArgs } from 'node:util';
import * as mysql from 'mysql2/promise';
import conversion from './conversion';
import { detectSchema } from './database';
import { dbOptionsOf } from './common/db';
import { REGIONS, CATEGORIES, FIRST_NAMES, LAST_NAMES, ADJECTIVES, NOUNS, rng } from './data';
import type { Row } from '../../transfer/conversion';

export interface SeedOptions {
  users: number;
  items: number;
  bids: number;
  /** Default: bids / 4. */
  comments?: number;
  /** PRNG seed (default 1). */
  seed?: number;
}

export interface SeedResult { rows: number; ms: number; schema: 'v1' | 'v2' }

const BATCH = 2_000;
const BASE = Date.UTC(2026, 0, 1);

/** 'YYYY-MM-DD HH:MM:SS' in UTC: written as text so no time zone can shift it. */
export function sqlDate(ms: number): string {
  return new Date(ms).toISOString().slice(0, 19).replace('T', ' ');
}

const money = (cents: number) => (cents / 100).toFixed(2);

class Inserter {
  private inflight: Array<Promise<unknown>> = [];
  private next = 0;
  rows = 0;
  constructor(private readonly conns: mysql.Connection[]) {}

  async insert(table: string, rows: Row[]): Promise<void> {
    if (rows.length === 0) return;
    const cols = Object.keys(rows[0]);
    const values = rows.map((r) => cols.map((c) => r[c]));
    const i = this.next++ % this.conns.length;
    await this.inflight[i];
    this.inflight[i] = this.retrying(i, `INSERT INTO \`${table}\` (${cols.map((c) => `\`${c}\``).join(',')}) VALUES ?`, [values]);
    this.rows += rows.length;
  }

  /** Two connections insert side by side: InnoDB may pick one as a deadlock victim; its statement was rolled back, so it is sent again. */
  private async retrying(i: number, sql: string, params: unknown[]): Promise<unknown> {
    for (let attempt = 1; ; attempt++) {
      try { return await this.conns[i].query(sql, params); } catch (err) {
        if ((err as { errno?: number }).errno !== 1213 || attempt >= 5) throw err;
      }
    }
  }

  async flush(): Promise<void> { await Promise.all(this.inflight); this.inflight = []; }
}

export async function seed(dbUrl: string, opts: SeedOptions): Promise<SeedResult> {
  const started = Date.now();
  const { users, items, bids } = opts;
  const comments = opts.comments ?? Math.floor(bids / 4);
  if (users < 1 || items < 0 || bids < 0 || comments < 0) throw new Error('seed: users >= 1 and items, bids, comments >= 0');
  const conns = await Promise.all([0, 1].map(() => mysql.createConnection({ ...dbOptionsOf(dbUrl), timezone: 'Z' })));
  try {
    const schema = await detectSchema(conns[0]);
    for (const c of conns) await c.query('SET unique_checks = 0, foreign_key_checks = 0');
    const ins = new Inserter(conns);
    const byTable = new Map(conversion.tables.map((t) => [t.source, t]));
    // Buffers per v1 table; in v2 mode each v1 row is converted on the way.
    const buffers = new Map<string, Row[]>();
    const put = async (v1Table: string, row: Row) => {
      const out = schema === 'v1' ? { [v1Table]: [row] } : byTable.get(v1Table)!.convert(row);
      for (const [t, rs] of Object.entries(out)) {
        const buf = buffers.get(t) ?? [];
        buffers.set(t, buf);
        buf.push(...rs);
        if (buf.length >= BATCH) { await ins.insert(t, buf.splice(0)); }
      }
    };
    const flushAll = async () => { for (const [t, buf] of buffers) await ins.insert(t, buf.splice(0)); };

    const rand = rng(opts.seed ?? 1);
    const pick = <T>(a: readonly T[]) => a[Math.floor(rand() * a.length)];
    const int = (lo: number, hi: number) => lo + Math.floor(rand() * (hi - lo + 1));

    for (let i = 0; i < REGIONS.length; i++) await put('regions', { id: i + 1, name: REGIONS[i] });
    for (let i = 0; i < CATEGORIES.length; i++) await put('categories', { id: i + 1, name: CATEGORIES[i] });

    const rating = new Int32Array(users + 1);
    // Comments raise the rating of the user they are about: compute first so
    // user rows are written once with their final rating.
    const commentRows: Array<[number, number, number, number]> = [];
    const sellerOf = new Int32Array(items + 1);
    const initCents = new Int32Array(items + 1);
    const itemRand = rng((opts.seed ?? 1) * 7919 + 1);
    for (let id = 1; id <= items; id++) {
      sellerOf[id] = 1 + Math.floor(itemRand() * users);
      initCents[id] = 100 + Math.floor(itemRand() * 10_000);
    }
    for (let id = 1; id <= comments && items > 0; id++) {
      const item = int(1, items);
      const to = sellerOf[item];
      const r = int(0, 5);
      rating[to] += r;
      commentRows.push([int(1, users), to, item, r]);
    }

    for (let id = 1; id <= users; id++) {
      await put('users', {
        id, name: `${pick(FIRST_NAMES)} ${pick(LAST_NAMES)}`, nickname: `user${id}`, password: `pw${id}`,
        email: `user${id}@example.test`, rating: rating[id], balance: money(int(0, 500_000)),
        region_id: int(1, REGIONS.length), created_at: sqlDate(BASE + id * 60_000),
      });
    }

    // Bids are generated before items are written so v2 rows carry their final
    // max_bid_cents / bid_count (what v2 itself would have maintained).
    const maxCents = new Int32Array(items + 1);
    const count = new Int32Array(items + 1);
    const bidRand = rng((opts.seed ?? 1) * 104_729 + 3);
    const bidItem = new Int32Array(bids + 1);
    const bidAmount = new Int32Array(bids + 1);
    for (let id = 1; id <= bids && items > 0; id++) {
      const item = 1 + Math.floor(bidRand() * items);
      const cents = Math.max(maxCents[item], initCents[item]) + 100 + Math.floor(bidRand() * 500);
      maxCents[item] = cents;
      count[item]++;
      bidItem[id] = item;
      bidAmount[id] = cents;
    }

    for (let id = 1; id <= items; id++) {
      const start = BASE + id * 30_000;
      const hasBuyNow = rand() < 0.3;
      const row: Row = {
        id, name: `${pick(ADJECTIVES)} ${pick(NOUNS)} ${id}`, description: `A fine item number ${id}, as described by its seller.`,
        initial_price: money(initCents[id]), quantity: int(1, 5), reserve_price: money(rand() < 0.2 ? initCents[id] * 2 : 0),
        buy_now: money(hasBuyNow ? initCents[id] * 5 : 0), start_date: sqlDate(start), end_date: sqlDate(start + 3650 * 86_400_000),
        seller_id: sellerOf[id], category_id: int(1, CATEGORIES.length),
      };
      if (schema === 'v2') {
        const [r2] = byTable.get('items')!.convert(row).items;
        r2.max_bid_cents = maxCents[id];
        r2.bid_count = count[id];
        const buf = buffers.get('items') ?? [];
        buffers.set('items', buf);
        buf.push(r2);
        if (buf.length >= BATCH) await ins.insert('items', buf.splice(0));
      } else {
        await put('items', row);
      }
    }
    for (let id = 1; id <= bids && items > 0; id++) {
      await put('bids', {
        id, user_id: 1 + Math.floor(bidRand() * users), item_id: bidItem[id], qty: 1,
        amount: money(bidAmount[id]), created_at: sqlDate(BASE + 86_400_000 + id * 1_000),
      });
    }
    for (let i = 0; i < commentRows.length; i++) {
      const [from, to, item, r] = commentRows[i];
      await put('comments', {
        id: i + 1, from_user_id: from, to_user_id: to, item_id: item, rating: r,
        created_at: sqlDate(BASE + 2 * 86_400_000 + i * 1_000), comment: `Comment ${i + 1}: rated ${r}.`,
      });
    }
    await flushAll();
    await ins.flush();
    if (schema === 'v2') await conns[0].query('UPDATE bid_sequence SET next_id = GREATEST(next_id, ?) WHERE id = 1', [bids + 1]);
    return { rows: ins.rows, ms: Date.now() - started, schema };
  } finally {
    await Promise.all(conns.map((c) => c.end().catch(() => undefined)));
  }
}

if (require.main === module) {
  const { values } = parseArgs({
    options: {
      url: { type: 'string' }, users: { type: 'string', default: '1000' }, items: { type: 'string', default: '5000' },
      bids: { type: 'string', default: '20000' }, comments: { type: 'string' }, seed: { type: 'string', default: '1' },
    },
  });
  const url = values.url ?? process.env.DATABASE_URL;
  if (!url) { console.error('usage: seeder.ts --url mysql://user:pw@127.0.0.1:PORT/db [--users N --items N --bids N --comments N --seed S]'); process.exit(2); }
  seed(url, {
    users: Number(values.users), items: Number(values.items), bids: Number(values.bids),
    comments: values.comments === undefined ? undefined : Number(values.comments), seed: Number(values.seed),
  }).then((r) => { console.log(`seeded ${r.rows} rows (${r.schema}) in ${r.ms} ms, ${Math.round(r.rows / (r.ms / 1000))} rows/s`); })
    .catch((e) => { console.error(e.message); process.exit(1); });
}
