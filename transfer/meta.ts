import type * as mysql from 'mysql2/promise';
import { imagoError } from '../lib/errors';

/**
 * The transfer's state lives in Unew, next to the rows it describes:
 *  - _imago_transfer_state (one row): the Uold GTID position applied so far;
 *  - _imago_transfer_tables: per old table, the last copied key and counts.
 * The applier updates them in the same transaction as the rows, so after a
 * crash (kill -9 of us or of Unew's server) the state matches the rows
 * exactly and the transfer resumes from there: nothing lost, nothing twice.
 */
export const STATE_TABLE = '_imago_transfer_state';
export const TABLES_TABLE = '_imago_transfer_tables';
export const META_TABLES = [STATE_TABLE, TABLES_TABLE];

export interface SavedState {
  sourceId: string;
  conversion: string;
  startGtid: string;
  appliedGtid: string;
  eventsApplied: number;
  tables: Map<string, { lastKey: unknown[] | null; rowsCopied: number; done: boolean }>;
}

export async function ensureMetaTables(conn: mysql.Connection): Promise<void> {
  await conn.query(`CREATE TABLE IF NOT EXISTS ${STATE_TABLE} (
    id TINYINT PRIMARY KEY, source_id VARCHAR(255) NOT NULL, conversion VARCHAR(255) NOT NULL,
    start_gtid TEXT NOT NULL, applied_gtid TEXT NOT NULL, events_applied BIGINT NOT NULL DEFAULT 0,
    updated_at DATETIME(3) NOT NULL) ENGINE=InnoDB`);
  await conn.query(`CREATE TABLE IF NOT EXISTS ${TABLES_TABLE} (
    source_table VARCHAR(64) PRIMARY KEY, last_key TEXT NULL, rows_copied BIGINT NOT NULL DEFAULT 0,
    done TINYINT NOT NULL DEFAULT 0) ENGINE=InnoDB`);
}

export async function loadState(conn: mysql.Connection): Promise<SavedState | null> {
  const [rows] = await conn.query(`SELECT * FROM ${STATE_TABLE} WHERE id = 1`) as [any[], unknown];
  if (rows.length === 0) return null;
  const [tables] = await conn.query(`SELECT * FROM ${TABLES_TABLE}`) as [any[], unknown];
  return {
    sourceId: rows[0].source_id, conversion: rows[0].conversion, startGtid: rows[0].start_gtid,
    appliedGtid: rows[0].applied_gtid, eventsApplied: Number(rows[0].events_applied),
    tables: new Map(tables.map((t) => [t.source_table, { lastKey: t.last_key === null ? null : JSON.parse(t.last_key), rowsCopied: Number(t.rows_copied), done: !!t.done }])),
  };
}

/** Writes the initial state once; a different source or conversion in a non-empty Unew is refused. */
export async function initState(conn: mysql.Connection, sourceId: string, conversion: string, startGtid: string, tables: string[]): Promise<SavedState> {
  const existing = await loadState(conn);
  if (existing) {
    if (existing.sourceId !== sourceId || existing.conversion !== conversion) {
      throw imagoError('TRANSFER_STATE_MISMATCH', `Unew holds state of source '${existing.sourceId}' with conversion '${existing.conversion}', this transfer is '${sourceId}' with '${conversion}'`);
    }
    return existing;
  }
  await conn.query('START TRANSACTION');
  await conn.query(`INSERT INTO ${STATE_TABLE} (id, source_id, conversion, start_gtid, applied_gtid, updated_at) VALUES (1, ?, ?, ?, ?, NOW(3))`, [sourceId, conversion, startGtid, startGtid]);
  for (const t of tables) await conn.query(`INSERT INTO ${TABLES_TABLE} (source_table) VALUES (?)`, [t]);
  await conn.query('COMMIT');
  return (await loadState(conn))!;
}

/** The applied position, read by flush and verify from any process. */
export async function readAppliedGtid(conn: mysql.Connection): Promise<string | null> {
  try {
    const [rows] = await conn.query(`SELECT applied_gtid FROM ${STATE_TABLE} WHERE id = 1`) as [any[], unknown];
    return rows.length ? rows[0].applied_gtid : null;
  } catch (err) {
    if ((err as { code?: string }).code === 'ER_NO_SUCH_TABLE') return null;
    throw err;
  }
}
