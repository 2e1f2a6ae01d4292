/**
 * A plain, offline reference copier: reads every v1 table in key order,
 * applies conversion.ts row by row, writes the v2 rows, then runs the refresh
 * specs for the keys they touched. It is NOT Imago's data transfer (no change
 * capture, no throttling, no resume); tests and the benchmark use it to get
 * "v2 data produced by the conversion" without depending on that engine.
 */
import * as mysql from 'mysql2/promise';
import type { ConversionModule, Row } from '../../transfer/conversion';
import conversion from './conversion';

export async function copyConverted(v1Url: string, v2Url: string, mod: ConversionModule = conversion): Promise<{ rows: number }> {
  const src = await mysql.createConnection({ uri: v1Url, timezone: 'Z' });
  const dst = await mysql.createConnection({ uri: v2Url, timezone: 'Z' });
  let rows = 0;
  try {
    for (const t of mod.tables) {
      const refresh = new Map<string, { sql: string; keys: Map<string, unknown[]> }>();
      let last: unknown = null;
      for (;;) {
        const [chunk] = await src.query(`SELECT * FROM \`${t.source}\` ${last === null ? '' : 'WHERE id > ?'} ORDER BY id LIMIT 2000`, last === null ? [] : [last]) as [Row[], unknown];
        if (chunk.length === 0) break;
        last = chunk[chunk.length - 1].id;
        const out = new Map<string, Row[]>();
        for (const r of chunk) {
          for (const [table, rs] of Object.entries(t.convert(r))) out.set(table, [...(out.get(table) ?? []), ...rs]);
          for (const spec of t.refresh ?? []) {
            const entry = refresh.get(spec.sql + spec.table) ?? { sql: spec.sql, keys: new Map() };
            refresh.set(spec.sql + spec.table, entry);
            for (const k of spec.keysOf(r)) entry.keys.set(JSON.stringify(k), k);
          }
        }
        for (const [table, rs] of out) {
          const cols = Object.keys(rs[0]);
          const keep = new Set(t.preserveColumns?.[table] ?? []);
          const upd = cols.filter((c) => !keep.has(c)).map((c) => `\`${c}\` = VALUES(\`${c}\`)`).join(', ');
          await dst.query(`INSERT INTO \`${table}\` (${cols.map((c) => `\`${c}\``).join(',')}) VALUES ? ON DUPLICATE KEY UPDATE ${upd}`, [rs.map((r) => cols.map((c) => r[c]))]);
          rows += rs.length;
        }
      }
      for (const { sql, keys } of refresh.values()) for (const k of keys.values()) await dst.query(sql, k);
    }
    // v2 hands out bid ids from its own sequence: start it after the copied ids.
    await dst.query('UPDATE bid_sequence SET next_id = GREATEST(next_id, (SELECT COALESCE(MAX(bid_id), 0) + 1 FROM item_bids)) WHERE id = 1');
    return { rows };
  } finally {
    await src.end();
    await dst.end();
  }
}
