import type * as mysql from 'mysql2/promise';
import type { Row } from './conversion';
import { keyOf } from './mapper';
import { GtidPosition } from './position';

export interface Chunk {
  table: string;
  rows: Row[];
  /** Key of the last row read, or the previous one when the chunk is empty. */
  lastKey: unknown[] | null;
  /** True when fewer rows than asked came back: the table is fully copied. */
  done: boolean;
  /** Uold's GTID position that this chunk's snapshot reflects exactly. */
  position: GtidPosition;
}

/** `WHERE (k1, k2) > (?, ?)` written so that the primary-key index serves it. */
export function afterKey(cols: string[], key: unknown[]): { sql: string; params: unknown[] } {
  const ors: string[] = [];
  const params: unknown[] = [];
  for (let i = 0; i < cols.length; i++) {
    const eq = cols.slice(0, i).map((c) => `\`${c}\` = ?`);
    ors.push(`(${[...eq, `\`${cols[i]}\` > ?`].join(' AND ')})`);
    params.push(...key.slice(0, i), key[i]);
  }
  return { sql: ors.join(' OR '), params };
}

/** Per source pool, the last snapshot binlog coordinate and its GTID position. */
const lastSnapshot = new WeakMap<mysql.Pool, { file: string; pos: number; gtid: string }>();

/**
 * The GTID position of a binlog coordinate. BINLOG_GTID_POS reads the binlog
 * file from its start, which grows with every write; a coordinate equal to
 * the previous chunk's (nothing was committed in between) has the same
 * position, so that one is answered without asking.
 */
async function snapshotGtid(pool: mysql.Pool, conn: mysql.PoolConnection, file: string, pos: number): Promise<GtidPosition> {
  const last = lastSnapshot.get(pool);
  if (last && last.file === file && last.pos === pos) return GtidPosition.parse(last.gtid);
  const [[g]] = await conn.query('SELECT BINLOG_GTID_POS(?, ?) AS g', [file, pos]) as [any[], unknown];
  lastSnapshot.set(pool, { file, pos, gtid: g.g });
  return GtidPosition.parse(g.g);
}

/**
 * The copier reads one chunk of a table from Uold by primary key, inside a
 * consistent snapshot whose binlog position it also reads. InnoDB snapshot
 * reads take no locks, so live writes are never blocked. Knowing the exact
 * position of the snapshot is what lets the transfer apply the change stream
 * up to that point before writing the chunk (see docs/data-transfer.md).
 */
export async function readChunk(pool: mysql.Pool, database: string, table: string, keyCols: string[], after: unknown[] | null, limit: number, upTo: unknown[] | null): Promise<Chunk> {
  const conn = await pool.getConnection();
  try {
    await conn.query('START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY');
    try {
      const [st] = await conn.query("SHOW STATUS LIKE 'binlog_snapshot_%'") as [any[], unknown];
      const file = st.find((r) => r.Variable_name === 'Binlog_snapshot_file')?.Value;
      const pos = Number(st.find((r) => r.Variable_name === 'Binlog_snapshot_position')?.Value);
      const position = await snapshotGtid(pool, conn, file, pos);
      const where = after ? afterKey(keyCols, after) : { sql: '1', params: [] };
      const order = keyCols.map((c) => `\`${c}\``).join(', ');
      // Rows above the bound were inserted after the copy began: the stream brings them.
      const bound = upTo ? ` AND (${order}) <= (${upTo.map(() => '?').join(', ')})` : '';
      const [rows] = await conn.query(`SELECT * FROM \`${database}\`.\`${table}\` WHERE (${where.sql})${bound} ORDER BY ${order} LIMIT ${Number(limit)}`, [...where.params, ...(upTo ?? [])]) as [Row[], unknown];
      const lastKey = rows.length ? keyOf(rows[rows.length - 1], keyCols) : after;
      return { table, rows, lastKey, done: rows.length < limit || upTo === null, position };
    } finally {
      await conn.query('COMMIT');
    }
  } finally {
    conn.release();
  }
}

/** The highest key of a table now (null when empty): the copy stops there, so appends cannot make it chase forever. */
export async function maxKey(pool: mysql.Pool, database: string, table: string, keyCols: string[]): Promise<unknown[] | null> {
  const order = keyCols.map((c) => `\`${c}\` DESC`).join(', ');
  const [rows] = await pool.query(`SELECT ${keyCols.map((c) => `\`${c}\``).join(', ')} FROM \`${database}\`.\`${table}\` ORDER BY ${order} LIMIT 1`) as [Row[], unknown];
  return rows.length ? keyOf(rows[0], keyCols) : null;
}
