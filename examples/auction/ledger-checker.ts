/**
 * Ledger checker: is every write that a client saw acknowledged in this
 * database, once, with the values the reply gave? Works on schema v1 or v2.
 *  - missing: no row with the acknowledged id;
 *  - altered: the row exists but a field differs (amount compared in cents);
 *  - duplicated: the same write stored twice (a second row with the same
 *    content: same item and amount for a bid, as bids on an item strictly
 *    increase; same unique text for a comment; same nickname for a user), or
 *    one id acknowledged twice in the ledger.
 *
 *   npx tsx examples/auction/ledger-checker.ts --url mysql://... --schema v2 --ledger ledger.json
 */
import * as fs from 'node:fs';
import { parseArgs } from 'node:util';
import * as mysql from 'mysql2/promise';
import { toCents } from './conversion';
import { dbOptionsOf } from './common/db';
import type { LedgerEntry, WriteKind } from './workload/mix';

export interface LedgerReport {
  checked: number;
  missing: LedgerEntry[];
  duplicated: Array<{ entry: LedgerEntry; count: number }>;
  altered: Array<{ entry: LedgerEntry; found: Record<string, unknown>; fields: string[] }>;
}

interface KindSpec {
  /** SELECT returning id plus the fields compared, for `WHERE <id> IN (?)`. */
  select: string;
  compare(e: LedgerEntry, row: any): string[];
  /** Optional: content duplicates; returns counts per content key for the given entries. */
  dupSql?: { sql: string; args(es: LedgerEntry[]): unknown[]; key(e: LedgerEntry): string; rowKey(r: any): string };
}

const diff = (pairs: Array<[string, unknown, unknown]>) => pairs.filter(([, a, b]) => a !== undefined && String(a) !== String(b)).map(([f]) => f);

function specs(schema: 'v1' | 'v2'): Record<WriteKind, KindSpec> {
  const v1 = schema === 'v1';
  const money = (e: LedgerEntry) => (e.amount === undefined ? undefined : toCents(e.amount));
  return {
    bid: {
      select: v1 ? 'SELECT id, item_id, user_id, qty, amount AS amt FROM bids WHERE id IN (?)' : 'SELECT bid_id AS id, item_id, user_id, qty, amount_cents AS amt FROM item_bids WHERE bid_id IN (?)',
      compare: (e, r) => diff([['itemId', e.itemId, r.item_id], ['userId', e.userId, r.user_id], ['qty', e.qty, r.qty], ['amount', money(e), v1 ? toCents(r.amt) : Number(r.amt)]]),
      dupSql: {
        sql: v1 ? 'SELECT item_id, amount AS amt, COUNT(*) AS n FROM bids WHERE (item_id, amount) IN (?) GROUP BY item_id, amount HAVING n > 1'
          : 'SELECT item_id, amount_cents AS amt, COUNT(*) AS n FROM item_bids WHERE (item_id, amount_cents) IN (?) GROUP BY item_id, amount_cents HAVING n > 1',
        args: (es) => [es.map((e) => [e.itemId, v1 ? (toCents(e.amount) / 100).toFixed(2) : toCents(e.amount)])],
        key: (e) => `${e.itemId}|${toCents(e.amount)}`,
        rowKey: (r) => `${r.item_id}|${v1 ? toCents(r.amt) : Number(r.amt)}`,
      },
    },
    'buy-now': {
      select: `SELECT id, buyer_id, item_id, qty FROM ${v1 ? 'buy_now' : 'purchases'} WHERE id IN (?)`,
      compare: (e, r) => diff([['itemId', e.itemId, r.item_id], ['userId', e.userId, r.buyer_id], ['qty', e.qty, r.qty]]),
    },
    comment: {
      select: `SELECT id, from_user_id, to_user_id, item_id, rating, ${v1 ? 'comment' : 'body'} AS text FROM comments WHERE id IN (?)`,
      compare: (e, r) => diff([['userId', e.userId, r.from_user_id], ['toUserId', e.toUserId, r.to_user_id], ['itemId', e.itemId, r.item_id], ['rating', e.rating, r.rating], ['text', e.text, r.text]]),
      dupSql: {
        sql: `SELECT ${v1 ? 'comment' : 'body'} AS text, COUNT(*) AS n FROM comments WHERE ${v1 ? 'comment' : 'body'} IN (?) GROUP BY text HAVING n > 1`,
        args: (es) => [es.map((e) => e.text)], key: (e) => String(e.text), rowKey: (r) => String(r.text),
      },
    },
    register: {
      select: v1 ? 'SELECT id, nickname, name FROM users WHERE id IN (?)' : "SELECT id, nickname, TRIM(CONCAT(first_name, ' ', last_name)) AS name FROM users WHERE id IN (?)",
      compare: (e, r) => diff([['nickname', e.nickname, r.nickname], ['name', e.name, r.name]]),
      dupSql: {
        sql: 'SELECT nickname, COUNT(*) AS n FROM users WHERE nickname IN (?) GROUP BY nickname HAVING n > 1',
        args: (es) => [es.map((e) => e.nickname)], key: (e) => String(e.nickname), rowKey: (r) => String(r.nickname),
      },
    },
  };
}

export async function checkLedger(dbUrl: string, schema: 'v1' | 'v2', ledger: LedgerEntry[]): Promise<LedgerReport> {
  const report: LedgerReport = { checked: 0, missing: [], duplicated: [], altered: [] };
  const conn = await mysql.createConnection({ ...dbOptionsOf(dbUrl), timezone: 'Z' });
  try {
    const all = specs(schema);
    const seen = new Map<string, number>();
    for (const e of ledger) seen.set(`${e.kind}|${e.id}`, (seen.get(`${e.kind}|${e.id}`) ?? 0) + 1);
    for (const kind of Object.keys(all) as WriteKind[]) {
      const spec = all[kind];
      const entries = ledger.filter((e) => e.kind === kind);
      for (let i = 0; i < entries.length; i += 500) {
        const chunk = entries.slice(i, i + 500);
        const [rows] = await conn.query(spec.select, [chunk.map((e) => e.id)]) as [any[], unknown];
        const byId = new Map(rows.map((r) => [Number(r.id), r]));
        const dups = new Map<string, number>();
        if (spec.dupSql) {
          const [drows] = await conn.query(spec.dupSql.sql, spec.dupSql.args(chunk)) as [any[], unknown];
          for (const r of drows) dups.set(spec.dupSql.rowKey(r), Number(r.n));
        }
        for (const e of chunk) {
          report.checked++;
          const row = byId.get(e.id);
          if (!row) { report.missing.push(e); continue; }
          const fields = spec.compare(e, row);
          if (fields.length) report.altered.push({ entry: e, found: { ...row }, fields });
          const twice = seen.get(`${kind}|${e.id}`) ?? 1;
          const content = spec.dupSql ? dups.get(spec.dupSql.key(e)) ?? 1 : 1;
          if (twice > 1 || content > 1) report.duplicated.push({ entry: e, count: Math.max(twice, content) });
        }
      }
    }
    return report;
  } finally {
    await conn.end();
  }
}

if (require.main === module) {
  const { values } = parseArgs({ options: { url: { type: 'string' }, schema: { type: 'string', default: 'v1' }, ledger: { type: 'string' } } });
  if (!values.url || !values.ledger || !['v1', 'v2'].includes(values.schema!)) {
    console.error('usage: ledger-checker.ts --url mysql://... --schema v1|v2 --ledger ledger.json'); process.exit(2);
  }
  checkLedger(values.url, values.schema as 'v1' | 'v2', JSON.parse(fs.readFileSync(values.ledger, 'utf8'))).then((r) => {
    console.log(JSON.stringify({ checked: r.checked, missing: r.missing.length, duplicated: r.duplicated.length, altered: r.altered.length }));
    for (const m of r.missing.slice(0, 10)) console.log('missing', JSON.stringify(m));
    for (const d of r.duplicated.slice(0, 10)) console.log('duplicated', JSON.stringify(d));
    for (const a of r.altered.slice(0, 10)) console.log('altered', JSON.stringify(a));
    process.exit(r.missing.length + r.duplicated.length + r.altered.length === 0 ? 0 : 1);
  }, (e) => { console.error(e.message); process.exit(2); });
}
