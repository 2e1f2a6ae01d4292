import type * as mysql from 'mysql2/promise';
import { imagoError } from '../lib/errors';
import { connect } from '../lib/sql';

/**
 * The transfer's state lives in Unew, next to the rows it describes:
 *  - _imago_transfer_state (one row): the Uold GTID position applied by the
 *    follower, its lag, and a heartbeat (updated_at);
 *  - _imago_transfer_tables: per old table, the last copied key, counts, done,
 *    its copier, and the oldest snapshot a chunk still to be written may have;
 *  - _imago_transfer_touched: per old table still being copied, the old keys
 *    the change stream wrote and the binlog coordinate of that change (how a
 *    chunk read earlier knows to leave them alone, see docs/data-transfer.md);
 *  - _imago_transfer_refresh: per set-based refresh, how far its pass got.
 * Each writer updates its rows in the same transaction as the rows they
 * describe, so after a crash (kill -9 of us or of Unew's server) the state
 * matches the rows exactly and the transfer resumes from there.
 */
export const STATE_TABLE = '_imago_transfer_state';
export const TABLES_TABLE = '_imago_transfer_tables';
export const TOUCHED_TABLE = '_imago_transfer_touched';
export const REFRESH_TABLE = '_imago_transfer_refresh';
export const META_TABLES = [STATE_TABLE, TABLES_TABLE, TOUCHED_TABLE, REFRESH_TABLE];

export interface TableState {
  lastKey: unknown[] | null;
  rowsCopied: number;
  rowsTotal: number | null;
  done: boolean;
  /** Every chunk still to be written has a snapshot at or after this binlog coordinate (see overlap.ts). */
  floor: bigint;
  /** The highest key the copy goes to, fixed when it first starts (null: the table was empty; undefined: not started). */
  bound: unknown[] | null | undefined;
}
export interface RefreshState { table: string; lastKey: unknown[] | null; rowsDone: number; done: boolean }

export interface SavedState {
  sourceId: string;
  conversion: string;
  startGtid: string;
  appliedGtid: string;
  eventsApplied: number;
  tables: Map<string, TableState>;
  refresh: Map<string, RefreshState>;
}

type Db = mysql.Connection | mysql.PoolConnection;

export async function ensureMetaTables(conn: Db): Promise<void> {
  await conn.query(`CREATE TABLE IF NOT EXISTS ${STATE_TABLE} (
    id TINYINT PRIMARY KEY, source_id VARCHAR(255) NOT NULL, conversion VARCHAR(255) NOT NULL,
    start_gtid TEXT NOT NULL, applied_gtid TEXT NOT NULL, events_applied BIGINT NOT NULL DEFAULT 0,
    lag_ms INT NOT NULL DEFAULT 0, updated_at DATETIME(3) NOT NULL) ENGINE=InnoDB`);
  await conn.query(`CREATE TABLE IF NOT EXISTS ${TABLES_TABLE} (
    source_table VARCHAR(64) PRIMARY KEY, last_key TEXT NULL, rows_copied BIGINT NOT NULL DEFAULT 0,
    rows_total BIGINT NULL, done TINYINT NOT NULL DEFAULT 0, owner VARCHAR(255) NULL,
    floor_coord BIGINT UNSIGNED NOT NULL DEFAULT 0, bound_key TEXT NULL) ENGINE=InnoDB`);
  await conn.query(`CREATE TABLE IF NOT EXISTS ${TOUCHED_TABLE} (
    source_table VARCHAR(64) NOT NULL, key_hash BINARY(16) NOT NULL, coord BIGINT UNSIGNED NOT NULL,
    PRIMARY KEY (source_table, key_hash), KEY by_coord (source_table, coord)) ENGINE=InnoDB`);
  await conn.query(`CREATE TABLE IF NOT EXISTS ${REFRESH_TABLE} (
    spec_id VARCHAR(64) PRIMARY KEY, target_table VARCHAR(64) NOT NULL, last_key TEXT NULL,
    rows_done BIGINT NOT NULL DEFAULT 0, done TINYINT NOT NULL DEFAULT 0) ENGINE=InnoDB`);
}

const parseKey = (v: string | null): unknown[] | null => (v === null ? null : JSON.parse(v));

export async function readTables(conn: Db): Promise<Map<string, TableState>> {
  const [tables] = await conn.query(`SELECT * FROM ${TABLES_TABLE}`) as [any[], unknown];
  return new Map(tables.map((t) => [t.source_table, {
    lastKey: parseKey(t.last_key), rowsCopied: Number(t.rows_copied), rowsTotal: t.rows_total === null ? null : Number(t.rows_total), done: !!t.done,
    floor: BigInt(t.floor_coord ?? 0), bound: t.bound_key === null ? undefined : JSON.parse(t.bound_key),
  }]));
}

export async function readRefresh(conn: Db): Promise<Map<string, RefreshState>> {
  const [rows] = await conn.query(`SELECT * FROM ${REFRESH_TABLE}`) as [any[], unknown];
  return new Map(rows.map((r) => [r.spec_id, { table: r.target_table, lastKey: parseKey(r.last_key), rowsDone: Number(r.rows_done), done: !!r.done }]));
}

export async function loadState(conn: Db): Promise<SavedState | null> {
  const [rows] = await conn.query(`SELECT * FROM ${STATE_TABLE} WHERE id = 1`) as [any[], unknown];
  if (rows.length === 0) return null;
  return {
    sourceId: rows[0].source_id, conversion: rows[0].conversion, startGtid: rows[0].start_gtid,
    appliedGtid: rows[0].applied_gtid, eventsApplied: Number(rows[0].events_applied),
    tables: await readTables(conn), refresh: await readRefresh(conn),
  };
}

/** Refuses state written for another source or conversion. */
export function expectSameTransfer(existing: SavedState, sourceId: string, conversion: string): void {
  if (existing.sourceId !== sourceId || existing.conversion !== conversion) {
    throw imagoError('TRANSFER_STATE_MISMATCH', `Unew holds state of source '${existing.sourceId}' with conversion '${existing.conversion}', this transfer is '${sourceId}' with '${conversion}'`);
  }
}

/**
 * Writes the initial state once, in one transaction: the start position, a
 * row per old table, a row per set-based refresh. A different source or
 * conversion in a non-empty Unew is refused.
 */
export async function initState(conn: Db, sourceId: string, conversion: string, startGtid: string, tables: string[], refresh: Array<{ id: string; table: string }>): Promise<SavedState> {
  const existing = await loadState(conn);
  if (existing) {
    expectSameTransfer(existing, sourceId, conversion);
    return existing;
  }
  await conn.query('START TRANSACTION');
  try {
    await conn.query(`INSERT INTO ${STATE_TABLE} (id, source_id, conversion, start_gtid, applied_gtid, updated_at) VALUES (1, ?, ?, ?, ?, NOW(3))`, [sourceId, conversion, startGtid, startGtid]);
    await conn.query(`INSERT INTO ${TABLES_TABLE} (source_table) VALUES ?`, [tables.map((t) => [t])]);
    if (refresh.length) await conn.query(`INSERT INTO ${REFRESH_TABLE} (spec_id, target_table) VALUES ?`, [refresh.map((r) => [r.id, r.table])]);
    await conn.query('COMMIT');
  } catch (err) {
    await conn.query('ROLLBACK').catch(() => undefined);
    throw err;
  }
  return (await loadState(conn))!;
}

/** Exact row counts, one table after the other (reported as they come), stopping when `signal` aborts; tables whose count fails are left out. */
export async function countTables(uold: { countRows(table: string): Promise<number> }, names: string[], signal: AbortSignal, each: (table: string, rows: number) => void): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (const n of names) {
    if (signal.aborted) break;
    const rows = await uold.countRows(n).catch(() => null);
    if (rows === null) continue;
    out.set(n, rows);
    each(n, rows);
  }
  return out;
}

/** Records row counts (estimates for progress; the copy does not depend on them) on a short connection of their own, best effort. */
export async function saveRowsTotals(target: { url: string; database: string }, counts: Map<string, number>): Promise<void> {
  if (counts.size === 0) return;
  const c = await connect(target.url, { database: target.database }).catch(() => null);
  if (!c) return;
  try {
    for (const [table, rows] of counts) await c.query(`UPDATE ${TABLES_TABLE} SET rows_total = ? WHERE source_table = ? AND rows_total IS NULL`, [rows, table]);
  } catch { /* an estimate only */ } finally { await c.end().catch(() => undefined); }
}

/**
 * Claims tables for one copier (`owner`): a table is copied by one copier
 * only, since its chunks must be written in key order by one writer. A
 * claim by the same owner (a retried activity) is taken over. `floor` is
 * Uold's binlog coordinate now: every chunk the copier will read has a
 * snapshot at or after it (see Applier.applyTransactions for its use).
 */
export async function claimTables(conn: Db, tables: string[], owner: string, floor: bigint): Promise<void> {
  if (tables.length === 0) return;
  await conn.query('START TRANSACTION');
  try {
    const [rows] = await conn.query(`SELECT source_table AS t, owner FROM ${TABLES_TABLE} WHERE source_table IN (?) FOR UPDATE`, [tables]) as [Array<{ t: string; owner: string | null }>, unknown];
    const taken = rows.filter((r) => r.owner !== null && r.owner !== owner).map((r) => `${r.t} (by ${r.owner})`);
    if (taken.length) throw imagoError('IMAGO_OPTIONS_INVALID', `table(s) ${taken.join(', ')} are already copied by another copier; give each table to one copier only`);
    await conn.query(`UPDATE ${TABLES_TABLE} SET owner = ?, floor_coord = GREATEST(floor_coord, ?) WHERE source_table IN (?)`, [owner, floor, tables]);
    await conn.query('COMMIT');
  } catch (err) {
    await conn.query('ROLLBACK').catch(() => undefined);
    throw err;
  }
}

/** The applied position, read by flush and verify from any process. */
export async function readAppliedGtid(conn: Db): Promise<string | null> {
  try {
    const [rows] = await conn.query(`SELECT applied_gtid FROM ${STATE_TABLE} WHERE id = 1`) as [any[], unknown];
    return rows.length ? rows[0].applied_gtid : null;
  } catch (err) {
    if ((err as { code?: string }).code === 'ER_NO_SUCH_TABLE') return null;
    throw err;
  }
}

/**
 * The follower's lag as it last recorded it, and how long ago that was by
 * Unew's own clock (a follower that stopped writing is as late as its silence).
 */
export async function readFollowerLag(conn: Db): Promise<{ lagMs: number; silentMs: number } | null> {
  const [rows] = await conn.query(`SELECT lag_ms AS lag, TIMESTAMPDIFF(MICROSECOND, updated_at, NOW(3)) / 1000 AS silent FROM ${STATE_TABLE} WHERE id = 1`) as [any[], unknown];
  return rows.length ? { lagMs: Number(rows[0].lag), silentMs: Math.max(0, Number(rows[0].silent)) } : null;
}
