/**
 * The MariaDB layer of the data transfer: how connections are opened, how
 * identifiers and key predicates are written, and how a consistent snapshot
 * and its binlog coordinate are read. Every mysql2 connection or pool that
 * the transfer opens goes through connectionConfig(), so a setting that
 * concerns every connection (TLS, time zone, timeouts) is added in one place.
 */
import * as mysql from 'mysql2/promise';
import { sslOptions, tlsOfUrl } from './db-tls';
import { imagoError } from './errors';

/** What a caller may ask of a connection. Extensible: new settings go here and into connectionConfig. */
export interface ConnectOptions {
  /** Default database of the session. */
  database?: string;
  /** Several statements per query (set-up scripts only). */
  multipleStatements?: boolean;
  /** Milliseconds to wait for the server's handshake (mysql2 default 10 s). */
  connectTimeoutMs?: number;
  /**
   * Statements sent without values are sent as they are (not scanned for
   * `?`): the copy's prebuilt multi-row upserts are hundreds of KiB of text.
   */
  rawWhenNoValues?: boolean;
}

export interface PoolOptions extends ConnectOptions {
  connectionLimit: number;
}

/**
 * The one place that turns a URL and options into mysql2's settings. Numbers
 * come back as JS numbers where exact (supportBigNumbers: larger ones as
 * strings), dates as Date in the process's zone — the same values the binlog
 * reader decodes, so the copy and the change stream convert alike.
 */
export function connectionConfig(url: string, options: ConnectOptions = {}): mysql.ConnectionOptions {
  const u = new URL(url);
  // TLS travels in the URL (?ssl-mode=…&ssl-ca=…, see lib/db-tls.ts), so every
  // connection of the transfer, the verification and the binlog reader gets it.
  const ssl = sslOptions(tlsOfUrl(url));
  return {
    host: u.hostname,
    port: Number(u.port || 3306),
    user: decodeURIComponent(u.username),
    password: decodeURIComponent(u.password),
    database: options.database ?? (decodeURIComponent(u.pathname.replace(/^\//, '')) || undefined),
    supportBigNumbers: true,
    bigNumberStrings: false,
    multipleStatements: options.multipleStatements ?? false,
    connectTimeout: options.connectTimeoutMs ?? 10_000,
    ...(options.rawWhenNoValues ? { queryFormat: rawWhenNoValues } : {}),
    ...(ssl ? { ssl } : {}),
  };
}

/**
 * A connection that never throws from an 'error' event: mysql2 emits one for
 * a fatal error (the server went away) when no query is waiting, and an
 * unhandled 'error' event would crash the process. The next query on the
 * connection then fails with that error instead, where the caller handles it.
 */
export async function connect(url: string, options: ConnectOptions = {}): Promise<mysql.Connection> {
  const conn = await mysql.createConnection(connectionConfig(url, options));
  conn.on('error', () => undefined);
  return conn;
}

/** A pool with the same settings; its connections get the same 'error' guard. */
export function connectPool(url: string, options: PoolOptions): mysql.Pool {
  const pool = mysql.createPool({ ...connectionConfig(url, options), connectionLimit: options.connectionLimit });
  pool.on('connection', (c) => { c.on('error', () => undefined); });
  return pool;
}

const format = mysql.format as (sql: string, values: unknown, stringifyObjects: boolean, timezone: string) => string;
/** mysql2's own formatting (its defaults: stringifyObjects false, local time zone), except that a statement without values is sent as it is. */
function rawWhenNoValues(sql: string, values: unknown): string {
  return values === undefined || (Array.isArray(values) && values.length === 0) ? sql : format(sql, values, false, 'local');
}

/** One identifier, quoted: `a.b` stays one name (never split into database and table). */
export function id(name: string): string {
  return mysql.escapeId(name, true);
}

/** `db`.`table` */
export function qualified(database: string, table: string): string {
  return `${id(database)}.${id(table)}`;
}

/** `a`, `b`, `c` */
export function idList(cols: readonly string[]): string {
  return cols.map(id).join(', ');
}

/** A value escaped as mysql2 would, for statements written as text. */
export function literal(v: unknown): string {
  return mysql.escape(v as Parameters<typeof mysql.escape>[0]);
}

export interface Predicate { sql: string; params: unknown[] }

/**
 * `key IN (…)` for a list of keys: one column gives `a IN (?)` with the flat
 * values, several give `(a, b) IN (?)` with tuples (mysql2 expands both).
 * The caller keeps lists to a sensible length (about a thousand keys).
 */
export function inList(cols: readonly string[], keys: readonly unknown[][]): Predicate {
  if (keys.length === 0) return { sql: '0', params: [] };
  return cols.length === 1
    ? { sql: `${id(cols[0])} IN (?)`, params: [keys.map((k) => k[0])] }
    : { sql: `(${idList(cols)}) IN (?)`, params: [keys] };
}

/**
 * The keyset predicate `(k1, k2, …) > (?, ?, …)`, written as an OR of
 * prefixes so that the primary-key index serves it as a range.
 */
export function afterKey(cols: readonly string[], key: readonly unknown[]): Predicate {
  const ors: string[] = [];
  const params: unknown[] = [];
  for (let i = 0; i < cols.length; i++) {
    const eq = cols.slice(0, i).map((c) => `${id(c)} = ?`);
    ors.push(`(${[...eq, `${id(cols[i])} > ?`].join(' AND ')})`);
    params.push(...key.slice(0, i), key[i]);
  }
  return { sql: ors.join(' OR '), params };
}

/** `(k1, k2, …) <= (?, ?, …)`: the upper bound of a keyset range. */
export function atMostKey(cols: readonly string[], key: readonly unknown[]): Predicate {
  return { sql: `(${idList(cols)}) <= (${cols.map(() => '?').join(', ')})`, params: [...key] };
}

/** `SELECT * FROM db.t WHERE key > after [AND key <= upTo] ORDER BY key LIMIT n` */
export function keysetSelect(database: string | null, table: string, cols: readonly string[], after: readonly unknown[] | null, limit: number, upTo: readonly unknown[] | null = null, select = '*'): Predicate {
  const parts: Predicate[] = [];
  if (after) parts.push(afterKey(cols, after));
  if (upTo) parts.push(atMostKey(cols, upTo));
  const where = parts.length ? parts.map((p) => `(${p.sql})`).join(' AND ') : '1';
  const from = database === null ? id(table) : qualified(database, table);
  return { sql: `SELECT ${select} FROM ${from} WHERE ${where} ORDER BY ${idList(cols)} LIMIT ${Math.floor(Number(limit))}`, params: parts.flatMap((p) => p.params) };
}

/** A position in a server's binary log: file name and byte offset. */
export interface BinlogCoordinate { file: string; pos: number }

/**
 * Opens a consistent, read-only snapshot on `conn` and returns the binlog
 * coordinate it reflects exactly: every transaction that ends at or before
 * it is visible, none after. The caller ends it with COMMIT.
 */
export async function openSnapshot(conn: mysql.Connection | mysql.PoolConnection): Promise<BinlogCoordinate> {
  await conn.query('START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY');
  const [rows] = await conn.query("SHOW STATUS LIKE 'binlog_snapshot_%'") as [Array<{ Variable_name: string; Value: string }>, unknown];
  const file = rows.find((r) => r.Variable_name.toLowerCase() === 'binlog_snapshot_file')?.Value;
  const pos = Number(rows.find((r) => r.Variable_name.toLowerCase() === 'binlog_snapshot_position')?.Value);
  if (!file || !Number.isFinite(pos)) throw imagoError('IMAGO_PREFLIGHT_BINLOG', 'the server reports no binlog snapshot coordinate (binlog_snapshot_file): is log_bin on?');
  return { file, pos };
}

/**
 * The GTID position of a snapshot opened by openSnapshot at `at`. When
 * nothing has been written to the binlog since the snapshot (its coordinate
 * is still the binlog's end, before and after the read), the server's
 * current @@gtid_binlog_pos is that position, read without a scan: the case
 * of a quiescent Uold inside the cut-over's hold, where the scan below cost
 * ~100 ms per GB of active binlog file. Otherwise gtidAt.
 */
export async function snapshotGtid(conn: mysql.Connection | mysql.PoolConnection, at: BinlogCoordinate): Promise<string> {
  const end = async () => {
    const [[m]] = await conn.query('SHOW MASTER STATUS') as [Array<{ File: string; Position: number | string }>, unknown];
    return m && m.File === at.file && Number(m.Position) === at.pos;
  };
  // A user without the right to SHOW MASTER STATUS takes the scan.
  if (await end().catch(() => false)) {
    const [[r]] = await conn.query('SELECT @@gtid_binlog_pos AS g') as [Array<{ g: string }>, unknown];
    // Why again: a commit between the first check and the read would be in @@gtid_binlog_pos but not in the snapshot.
    if (await end().catch(() => false)) return String(r.g);
  }
  return gtidAt(conn, at);
}

/**
 * The GTID position of a binlog coordinate. Costly: the server reads the
 * binlog file from its start up to `pos`. For one-off reads (a verification
 * pass), never per chunk.
 */
export async function gtidAt(conn: mysql.Connection | mysql.PoolConnection, at: BinlogCoordinate): Promise<string> {
  const [rows] = await conn.query('SELECT BINLOG_GTID_POS(?, ?) AS g', [at.file, at.pos]) as [Array<{ g: string | null }>, unknown];
  return String(rows[0]?.g ?? '');
}

/** mysql2 error codes of a connection that is gone or never came (as opposed to a statement the server refused). */
const CONNECTION_CODES = new Set([
  'ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN',
  'PROTOCOL_CONNECTION_LOST', 'PROTOCOL_SEQUENCE_TIMEOUT', 'ER_SERVER_SHUTDOWN', 'ER_CON_COUNT_ERROR',
  'ER_CONNECTION_KILLED', 'CR_SERVER_GONE_ERROR', 'CR_SERVER_LOST',
]);

/** True when `err` says the server cannot be reached (rather than that it refused a statement). */
export function isConnectionError(err: unknown): boolean {
  const e = err as { code?: string; fatal?: boolean; message?: string } | null;
  if (!e || typeof e !== 'object') return false;
  if (e.code && CONNECTION_CODES.has(e.code)) return true;
  // mysql2 rejects commands on a connection it has already closed with a plain Error.
  if (/connection is in closed state|Connection lost|connect ETIMEDOUT|Pool is closed/i.test(e.message ?? '')) return true;
  return e.fatal === true && !e.code?.startsWith('ER_');
}

/** InnoDB chose this transaction as a deadlock victim or gave up waiting for a lock: retrying it is correct. */
export function isLockConflict(err: unknown): boolean {
  const code = (err as { code?: string } | null)?.code;
  return code === 'ER_LOCK_DEADLOCK' || code === 'ER_LOCK_WAIT_TIMEOUT';
}
