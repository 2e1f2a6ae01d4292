/**
 * What the verification passes share: the options and report, opening both
 * sides, a Unew snapshot at a known position, and comparing convert(old rows)
 * with Unew by key; the re-check of differences on rows that moved meanwhile.
 */
import type * as mysql from 'mysql2/promise';
import { connect, connectPool, snapshotGtid, id, inList, openSnapshot } from '../../lib/sql';
import type { ConversionModule, Row } from '../conversion';
import { flushTo } from '../flush';
import { Inspector } from '../inspector';
import { convertChecked, keyOf, keyText, mapTable, type MappedTable } from '../mapper';
import { STATE_TABLE } from '../meta';
import type { Endpoint } from '../options';
import { GtidPosition } from '../position';
import { addKey, touchedBetween, type Keys } from './binlog-scan';

export interface VerifyOptions {
  source: Endpoint;
  target: Endpoint;
  conversion: ConversionModule;
  chunkSize?: number;
  /** Server id for the binlog reads that find rows changed between positions. */
  serverId: number;
  /** How long to wait for Unew to reach each compare position. */
  flushTimeoutMs?: number;
  /** How many times rows that changed during a compare are compared again. */
  maxRechecks?: number;
  /** Called after each chunk of Uold's rows compared, with its row count (progress for a heartbeat). */
  onRows?: (rows: number) => void;
  /**
   * After each chunk of the full verification, rest niceRatio × the time the
   * chunk took (1 = verify at most half the time). Uold keeps serving its
   * clients meanwhile, on the same CPUs and disks; a full pass reads every row.
   */
  niceRatio?: number;
}

export interface RowDiff { table: string; key: unknown[]; columns?: string[]; sourceTable?: string; sourceKey?: unknown[] }

export interface VerifyReport {
  ok: boolean;
  /** Uold position of the (last) compare. */
  position: string;
  rowsChecked: number;
  tables: Array<{ source: string; rows: number }>;
  targets: Array<{ table: string; expected: number; actual: number }>;
  missing: RowDiff[];
  extra: RowDiff[];
  different: RowDiff[];
  rechecks: number;
}

export interface Ctx { o: Required<VerifyOptions>; source: mysql.Pool; target: mysql.Connection; tables: Map<string, MappedTable>; preserve: Map<string, Set<string>> }

/** Values as text, so '9.99' (DECIMAL from Unew) equals 9.99 (a converted number). */
export function norm(v: unknown): string | null {
  if (v === null || v === undefined) return null;
  if (v instanceof Date) return v.toISOString();
  if (Buffer.isBuffer(v)) return v.toString('hex');
  if (typeof v === 'number' || typeof v === 'bigint') return String(v);
  if (typeof v === 'string' && /^-?\d+(\.\d+)?$/.test(v) && Number.isFinite(Number(v))) return String(Number(v));
  if (typeof v === 'boolean') return v ? '1' : '0';
  return typeof v === 'object' ? JSON.stringify(v) : String(v);
}

export async function open(o: VerifyOptions): Promise<Ctx> {
  const full: Required<VerifyOptions> = { chunkSize: 2_000, flushTimeoutMs: 30_000, maxRechecks: 5, niceRatio: 0, onRows: () => undefined, ...o };
  const source = connectPool(o.source.url, { database: o.source.database, connectionLimit: 2 });
  let target: mysql.Connection | undefined;
  try {
    target = await connect(o.target.url, { database: o.target.database });
    const ins = new Inspector(source, o.source.database);
    const tables = new Map<string, MappedTable>();
    const preserve = new Map<string, Set<string>>();
    for (const tc of o.conversion.tables) {
      tables.set(tc.source, mapTable(tc, await ins.primaryKey(tc.source)));
      for (const [t, cols] of Object.entries(tc.preserveColumns ?? {})) for (const c of cols) (preserve.get(t) ?? preserve.set(t, new Set()).get(t)!).add(c);
    }
    return { o: full, source, target, tables, preserve };
  } catch (err) {
    await target?.end().catch(() => undefined);
    await source.end().catch(() => undefined);
    throw err;
  }
}

export async function close(ctx: Ctx): Promise<void> {
  await ctx.source.end().catch(() => undefined);
  await ctx.target.end().catch(() => undefined);
}

export function emptyReport(): VerifyReport {
  return { ok: false, position: '', rowsChecked: 0, tables: [], targets: [], missing: [], extra: [], different: [], rechecks: 0 };
}

export function finish(report: VerifyReport): VerifyReport {
  report.ok = report.missing.length + report.extra.length + report.different.length === 0;
  return report;
}

/** Opens a Uold snapshot on `conn` and returns its exact GTID position (a BINLOG_GTID_POS per pass, unless Uold is quiescent). */
export async function uoldSnapshot(conn: mysql.PoolConnection): Promise<GtidPosition> {
  return GtidPosition.parse(await snapshotGtid(conn, await openSnapshot(conn)));
}

/** Opens a Unew snapshot once Unew has applied `p`; returns the position that snapshot reflects. */
export async function unewSnapshotAt(ctx: Ctx, p: GtidPosition): Promise<GtidPosition> {
  const hasState = await ctx.target.query(`SELECT 1 FROM ${STATE_TABLE} LIMIT 1`).then(() => true, () => false);
  if (hasState) await flushTo(ctx.o.target.url, ctx.o.target.database, p.toString(), ctx.o.flushTimeoutMs);
  await ctx.target.query('START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY');
  if (!hasState) return p; // a static copy: nothing moves
  const [[r]] = await ctx.target.query(`SELECT applied_gtid AS g FROM ${STATE_TABLE} WHERE id = 1`) as [any[], unknown];
  return GtidPosition.parse(r.g);
}

/** Rows of a table by key, a thousand keys per statement. */
export async function rowsByKey(conn: mysql.Connection | mysql.PoolConnection, table: string, keyCols: string[], keys: unknown[][], database?: string): Promise<Row[]> {
  const out: Row[] = [];
  const from = database ? `${id(database)}.${id(table)}` : id(table);
  for (let i = 0; i < keys.length; i += 1_000) {
    const where = inList(keyCols, keys.slice(i, i + 1_000));
    const [rows] = await conn.query(`SELECT * FROM ${from} WHERE ${where.sql}`, where.params) as [Row[], unknown];
    out.push(...rows);
  }
  return out;
}

export async function unewRows(ctx: Ctx, table: string, keyCols: string[], keys: unknown[][]): Promise<Map<string, Row>> {
  const out = new Map<string, Row>();
  for (const r of await rowsByKey(ctx.target, table, keyCols, keys)) out.set(keyText(keyOf(r, keyCols)), r);
  return out;
}

/**
 * Compares convert(old rows) with Unew for one batch of old rows; records the
 * expected target keys in `expected` and the differences in `report`.
 */
export async function compareRows(ctx: Ctx, m: MappedTable, oldRows: Row[], expected: Keys, report: VerifyReport): Promise<void> {
  const want = new Map<string, Array<{ row: Row; srcKey: unknown[] }>>();
  for (const r of oldRows) for (const [t, rows] of convertChecked(m, r)) for (const row of rows) (want.get(t) ?? want.set(t, []).get(t)!).push({ row, srcKey: keyOf(r, m.sourceKey) });
  for (const [t, rows] of want) {
    const keyCols = m.targetKeys.get(t)!;
    const got = await unewRows(ctx, t, keyCols, rows.map((x) => keyOf(x.row, keyCols)));
    for (const { row, srcKey } of rows) {
      const key = keyOf(row, keyCols);
      addKey(expected, t, key);
      const actual = got.get(keyText(key));
      if (!actual) { report.missing.push({ table: t, key, sourceTable: m.conv.source, sourceKey: srcKey }); continue; }
      const skip = ctx.preserve.get(t);
      const cols = Object.keys(row).filter((c) => !skip?.has(c) && norm(row[c]) !== norm(actual[c]));
      if (cols.length) report.different.push({ table: t, key, columns: cols, sourceTable: m.conv.source, sourceKey: srcKey });
    }
  }
}

/** Compares only the given old keys (and asserts the given target keys are absent unless produced), at one consistent position. */
export async function compareKeys(ctx: Ctx, oldKeys: Keys, targetCandidates: Keys, report: VerifyReport): Promise<{ p: GtidPosition; q: GtidPosition }> {
  const conn = await ctx.source.getConnection();
  const expected: Keys = new Map();
  let p: GtidPosition;
  let q: GtidPosition;
  try {
    p = await uoldSnapshot(conn);
    q = await unewSnapshotAt(ctx, p);
    for (const [table, keys] of oldKeys) {
      const m = ctx.tables.get(table)!;
      const rows = await rowsByKey(conn, table, m.sourceKey, [...keys.values()]);
      for (let i = 0; i < rows.length; i += 1_000) await compareRows(ctx, m, rows.slice(i, i + 1_000), expected, report);
      report.rowsChecked += rows.length;
    }
    for (const [t, keys] of targetCandidates) {
      const keyCols = [...ctx.tables.values()].find((m) => m.targetKeys.has(t))!.targetKeys.get(t)!;
      const got = await unewRows(ctx, t, keyCols, [...keys.values()]);
      for (const [kt, row] of got) if (!expected.get(t)?.has(kt)) report.extra.push({ table: t, key: keyOf(row, keyCols) });
    }
  } finally {
    await conn.query('COMMIT').catch(() => undefined);
    conn.release();
    await ctx.target.query('COMMIT').catch(() => undefined);
  }
  return { p, q };
}

/**
 * Re-compares differences whose rows changed between the Uold and Unew
 * positions of a compare, until they are stable (or maxRechecks is used up).
 * A difference on a row nobody touched in between is real and is kept.
 */
export async function settle(ctx: Ctx, report: VerifyReport, p: GtidPosition, q: GtidPosition): Promise<void> {
  for (let i = 0; i < ctx.o.maxRechecks && !p.covers(q); i++) {
    if (report.missing.length + report.extra.length + report.different.length === 0) return;
    const touched = await touchedBetween({ url: ctx.o.source.url, database: ctx.o.source.database, serverId: ctx.o.serverId }, ctx.tables, p, q);
    const unstable = (d: RowDiff) => (d.sourceTable && touched.old.get(d.sourceTable)?.has(keyText(d.sourceKey!))) || touched.targets.get(d.table)?.has(keyText(d.key));
    const recheck = [...report.missing, ...report.different, ...report.extra].filter(unstable);
    if (recheck.length === 0) return;
    report.missing = report.missing.filter((d) => !unstable(d));
    report.different = report.different.filter((d) => !unstable(d));
    report.extra = report.extra.filter((d) => !unstable(d));
    const oldKeys: Keys = touched.old;
    const candidates: Keys = touched.targets;
    for (const d of recheck) {
      if (d.sourceTable) addKey(oldKeys, d.sourceTable, d.sourceKey!);
      addKey(candidates, d.table, d.key);
    }
    report.rechecks++;
    ({ p, q } = await compareKeys(ctx, oldKeys, candidates, report));
    report.position = p.toString();
  }
}
