import * as mysql from 'mysql2/promise';
import { Streamer } from '../interceptors/egress/streamer';
import { mysqlOptionsOf } from '../lib/db-tls';
import type { ConversionModule, Row } from './conversion';
import { afterKey as afterWhere } from './copier';
import { flushTo } from './flush';
import { Inspector } from './inspector';
import { convertChecked, keyOf, keyText, mapTable, type MappedTable } from './mapper';
import { STATE_TABLE } from './meta';
import { GtidPosition } from './position';
import type { Endpoint } from './options';

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

type Keys = Map<string, Map<string, unknown[]>>; // table -> keyText -> key

interface Ctx { o: Required<VerifyOptions>; source: mysql.Pool; target: mysql.Connection; tables: Map<string, MappedTable>; preserve: Map<string, Set<string>> }

/** Values as text, so '9.99' (DECIMAL from Unew) equals 9.99 (a converted number). */
function norm(v: unknown): string | null {
  if (v === null || v === undefined) return null;
  if (v instanceof Date) return v.toISOString();
  if (Buffer.isBuffer(v)) return v.toString('hex');
  if (typeof v === 'number' || typeof v === 'bigint') return String(v);
  if (typeof v === 'string' && /^-?\d+(\.\d+)?$/.test(v) && Number.isFinite(Number(v))) return String(Number(v));
  if (typeof v === 'boolean') return v ? '1' : '0';
  return typeof v === 'object' ? JSON.stringify(v) : String(v);
}

async function open(o: VerifyOptions): Promise<Ctx> {
  const full: Required<VerifyOptions> = { chunkSize: 2_000, flushTimeoutMs: 30_000, maxRechecks: 5, niceRatio: 0, ...o };
  const source = mysql.createPool({ ...mysqlOptionsOf(o.source.url), database: o.source.database, connectionLimit: 2, supportBigNumbers: true, bigNumberStrings: false });
  const target = await mysql.createConnection({ ...mysqlOptionsOf(o.target.url), database: o.target.database, supportBigNumbers: true, bigNumberStrings: false });
  const ins = new Inspector(source, o.source.database);
  const tables = new Map<string, MappedTable>();
  const preserve = new Map<string, Set<string>>();
  for (const tc of o.conversion.tables) {
    tables.set(tc.source, mapTable(tc, await ins.primaryKey(tc.source)));
    for (const [t, cols] of Object.entries(tc.preserveColumns ?? {})) for (const c of cols) (preserve.get(t) ?? preserve.set(t, new Set()).get(t)!).add(c);
  }
  return { o: full, source, target, tables, preserve };
}

async function close(ctx: Ctx): Promise<void> {
  await ctx.source.end().catch(() => undefined);
  await ctx.target.end().catch(() => undefined);
}

/** Opens a Unew snapshot once Unew has applied `p`; returns the position that snapshot reflects. */
async function unewSnapshotAt(ctx: Ctx, p: GtidPosition): Promise<GtidPosition> {
  const hasState = await ctx.target.query(`SELECT 1 FROM ${STATE_TABLE} LIMIT 1`).then(() => true, () => false);
  if (hasState) await flushTo(ctx.o.target.url, ctx.o.target.database, p.toString(), ctx.o.flushTimeoutMs);
  await ctx.target.query('START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY');
  if (!hasState) return p; // a static copy: nothing moves
  const [[r]] = await ctx.target.query(`SELECT applied_gtid AS g FROM ${STATE_TABLE} WHERE id = 1`) as [any[], unknown];
  return GtidPosition.parse(r.g);
}

async function unewRows(ctx: Ctx, table: string, keyCols: string[], keys: unknown[][]): Promise<Map<string, Row>> {
  const out = new Map<string, Row>();
  for (let i = 0; i < keys.length; i += 1_000) {
    const part = keys.slice(i, i + 1_000);
    const where = keyCols.length === 1 ? `\`${keyCols[0]}\` IN (?)` : `(${keyCols.map((c) => `\`${c}\``).join(', ')}) IN (?)`;
    const [rows] = await ctx.target.query(`SELECT * FROM \`${table}\` WHERE ${where}`, [keyCols.length === 1 ? part.map((k) => k[0]) : part]) as [Row[], unknown];
    for (const r of rows) out.set(keyText(keyOf(r, keyCols)), r);
  }
  return out;
}

/**
 * Compares convert(old rows) with Unew for one batch of old rows; records the
 * expected target keys in `expected` and the differences in `report`.
 */
async function compareRows(ctx: Ctx, m: MappedTable, oldRows: Row[], expected: Keys, report: VerifyReport): Promise<void> {
  const want = new Map<string, Array<{ row: Row; srcKey: unknown[] }>>();
  for (const r of oldRows) for (const [t, rows] of convertChecked(m, r)) for (const row of rows) (want.get(t) ?? want.set(t, []).get(t)!).push({ row, srcKey: keyOf(r, m.sourceKey) });
  for (const [t, rows] of want) {
    const keyCols = m.targetKeys.get(t)!;
    const got = await unewRows(ctx, t, keyCols, rows.map((x) => keyOf(x.row, keyCols)));
    const exp = expected.get(t) ?? expected.set(t, new Map()).get(t)!;
    for (const { row, srcKey } of rows) {
      const key = keyOf(row, keyCols);
      const kt = keyText(key);
      exp.set(kt, key);
      const actual = got.get(kt);
      if (!actual) { report.missing.push({ table: t, key, sourceTable: m.conv.source, sourceKey: srcKey }); continue; }
      const skip = ctx.preserve.get(t);
      const cols = Object.keys(row).filter((c) => !skip?.has(c) && norm(row[c]) !== norm(actual[c]));
      if (cols.length) report.different.push({ table: t, key, columns: cols, sourceTable: m.conv.source, sourceKey: srcKey });
    }
  }
}

function emptyReport(): VerifyReport {
  return { ok: false, position: '', rowsChecked: 0, tables: [], targets: [], missing: [], extra: [], different: [], rechecks: 0 };
}

/** Keys of old rows (per old table) and of target rows touched by Uold transactions after `from` up to `to`. */
async function touchedBetween(ctx: Ctx, from: GtidPosition, to: GtidPosition): Promise<{ old: Keys; targets: Keys }> {
  const old: Keys = new Map();
  const targets: Keys = new Map();
  if (from.covers(to)) return { old, targets };
  const s = new Streamer({ url: ctx.o.source.url, database: ctx.o.source.database, tables: [...ctx.tables.keys()], serverId: ctx.o.serverId }, from.toString());
  const done = new Promise<void>((resolve, reject) => {
    s.on('failed', reject);
    s.on('txn', (t: { changes: Array<{ table: string; before: Row | null; after: Row | null }> }) => {
      for (const c of t.changes) {
        const m = ctx.tables.get(c.table)!;
        for (const img of [c.before, c.after]) {
          if (!img) continue;
          const k = keyOf(img, m.sourceKey);
          (old.get(c.table) ?? old.set(c.table, new Map()).get(c.table)!).set(keyText(k), k);
          for (const [tt, rows] of convertChecked(m, img)) for (const r of rows) { const tk = keyOf(r, m.targetKeys.get(tt)!); (targets.get(tt) ?? targets.set(tt, new Map()).get(tt)!).set(keyText(tk), tk); }
        }
      }
      if (s.position.covers(to)) resolve();
    });
  });
  try {
    await s.start();
    await done;
  } finally { s.stop(); }
  return { old, targets };
}

/** Compares only the given old keys (and asserts the given target keys are absent unless produced), at one consistent position. */
async function compareKeys(ctx: Ctx, oldKeys: Keys, targetCandidates: Keys, report: VerifyReport): Promise<{ p: GtidPosition; q: GtidPosition }> {
  const conn = await ctx.source.getConnection();
  const expected: Keys = new Map();
  let p: GtidPosition;
  let q: GtidPosition;
  try {
    await conn.query('START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY');
    const [st] = await conn.query("SHOW STATUS LIKE 'binlog_snapshot_%'") as [any[], unknown];
    const [[g]] = await conn.query('SELECT BINLOG_GTID_POS(?, ?) AS g', [st[0].Value, Number(st[1].Value)]) as [any[], unknown];
    p = GtidPosition.parse(g.g);
    q = await unewSnapshotAt(ctx, p);
    for (const [table, keys] of oldKeys) {
      const m = ctx.tables.get(table)!;
      const list = [...keys.values()];
      for (let i = 0; i < list.length; i += 1_000) {
        const part = list.slice(i, i + 1_000);
        const where = m.sourceKey.length === 1 ? `\`${m.sourceKey[0]}\` IN (?)` : `(${m.sourceKey.map((c) => `\`${c}\``).join(', ')}) IN (?)`;
        const [rows] = await conn.query(`SELECT * FROM \`${table}\` WHERE ${where}`, [m.sourceKey.length === 1 ? part.map((k) => k[0]) : part]) as [Row[], unknown];
        await compareRows(ctx, m, rows, expected, report);
        report.rowsChecked += rows.length;
      }
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
async function settle(ctx: Ctx, report: VerifyReport, p: GtidPosition, q: GtidPosition): Promise<void> {
  for (let i = 0; i < ctx.o.maxRechecks && !p.covers(q); i++) {
    if (report.missing.length + report.extra.length + report.different.length === 0) return;
    const touched = await touchedBetween(ctx, p, q);
    const unstable = (d: RowDiff) => (d.sourceTable && touched.old.get(d.sourceTable)?.has(keyText(d.sourceKey!))) || touched.targets.get(d.table)?.has(keyText(d.key));
    const recheck = [...report.missing, ...report.different, ...report.extra].filter(unstable);
    if (recheck.length === 0) return;
    report.missing = report.missing.filter((d) => !unstable(d));
    report.different = report.different.filter((d) => !unstable(d));
    report.extra = report.extra.filter((d) => !unstable(d));
    const oldKeys: Keys = touched.old;
    const candidates: Keys = touched.targets;
    for (const d of recheck) {
      if (d.sourceTable) (oldKeys.get(d.sourceTable) ?? oldKeys.set(d.sourceTable, new Map()).get(d.sourceTable)!).set(keyText(d.sourceKey!), d.sourceKey!);
      (candidates.get(d.table) ?? candidates.set(d.table, new Map()).get(d.table)!).set(keyText(d.key), d.key);
    }
    report.rechecks++;
    ({ p, q } = await compareKeys(ctx, oldKeys, candidates, report));
    report.position = p.toString();
  }
}

/**
 * Full verification in the manner of VDiff: every old row, converted, against
 * Unew by key, plus Unew rows no old row produces. Uold is read in one
 * consistent snapshot at position P; Unew in one snapshot taken after it has
 * applied P (its snapshot is at Q >= P). Rows changed in Uold between P and Q
 * are compared again at a later pair of positions (see docs/verification.md).
 */
export async function verify(o: VerifyOptions): Promise<VerifyReport> {
  const ctx = await open(o);
  const report = emptyReport();
  try {
    const snap = await ctx.source.getConnection();
    let p: GtidPosition;
    let q: GtidPosition;
    const expected: Keys = new Map();
    try {
      await snap.query('START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY');
      const [st] = await snap.query("SHOW STATUS LIKE 'binlog_snapshot_%'") as [any[], unknown];
      const [[g]] = await snap.query('SELECT BINLOG_GTID_POS(?, ?) AS g', [st[0].Value, Number(st[1].Value)]) as [any[], unknown];
      p = GtidPosition.parse(g.g);
      q = await unewSnapshotAt(ctx, p);
      for (const m of ctx.tables.values()) {
        let after: unknown[] | null = null;
        let rows = 0;
        for (;;) {
          const t0 = Date.now();
          const c = await readChunkIn(snap, o.source.database, m, after, ctx.o.chunkSize);
          await compareRows(ctx, m, c.rows, expected, report);
          if (ctx.o.niceRatio > 0) await new Promise((r) => setTimeout(r, ctx.o.niceRatio * (Date.now() - t0)));
          rows += c.rows.length;
          after = c.lastKey;
          if (c.done) break;
        }
        report.tables.push({ source: m.conv.source, rows });
        report.rowsChecked += rows;
      }
      const targetKeys = new Map<string, string[]>();
      for (const m of ctx.tables.values()) for (const [t, k] of m.targetKeys) targetKeys.set(t, k);
      for (const [t, keyCols] of targetKeys) {
        const exp = expected.get(t) ?? new Map();
        let actual = 0;
        let after: unknown[] | null = null;
        for (;;) {
          const { sql, params } = after ? afterWhere(keyCols, after) : { sql: '1', params: [] };
          const [rows] = await ctx.target.query(`SELECT ${keyCols.map((c) => `\`${c}\``).join(', ')} FROM \`${t}\` WHERE ${sql} ORDER BY ${keyCols.map((c) => `\`${c}\``).join(', ')} LIMIT ${ctx.o.chunkSize}`, params) as [Row[], unknown];
          for (const r of rows) { const k = keyOf(r, keyCols); if (!exp.has(keyText(k))) report.extra.push({ table: t, key: k }); }
          actual += rows.length;
          if (rows.length < ctx.o.chunkSize) break;
          after = keyOf(rows[rows.length - 1], keyCols);
        }
        report.targets.push({ table: t, expected: exp.size, actual });
      }
    } finally {
      await snap.query('COMMIT').catch(() => undefined);
      snap.release();
      await ctx.target.query('COMMIT').catch(() => undefined);
    }
    report.position = p.toString();
    await settle(ctx, report, p, q);
    report.ok = report.missing.length + report.extra.length + report.different.length === 0;
    return report;
  } finally { await close(ctx); }
}

/**
 * The fast check for the termination pause: only the rows changed in Uold
 * since `since` (found in the binlog), compared at one consistent position.
 */
export async function verifyChangedSince(o: VerifyOptions, since: string): Promise<VerifyReport> {
  const ctx = await open(o);
  const report = emptyReport();
  try {
    const now = GtidPosition.parse(await new Inspector(ctx.source, o.source.database).gtidBinlogPos());
    const touched = await touchedBetween(ctx, GtidPosition.parse(since), now);
    const { p, q } = await compareKeys(ctx, touched.old, touched.targets, report);
    report.position = p.toString();
    await settle(ctx, report, p, q);
    report.ok = report.missing.length + report.extra.length + report.different.length === 0;
    return report;
  } finally { await close(ctx); }
}

async function readChunkIn(conn: mysql.PoolConnection, database: string, m: MappedTable, after: unknown[] | null, limit: number): Promise<{ rows: Row[]; lastKey: unknown[] | null; done: boolean }> {
  const where = after ? afterWhere(m.sourceKey, after) : { sql: '1', params: [] };
  const [rows] = await conn.query(`SELECT * FROM \`${database}\`.\`${m.conv.source}\` WHERE ${where.sql} ORDER BY ${m.sourceKey.map((c) => `\`${c}\``).join(', ')} LIMIT ${Number(limit)}`, where.params) as [Row[], unknown];
  return { rows, lastKey: rows.length ? keyOf(rows[rows.length - 1], m.sourceKey) : after, done: rows.length < limit };
}

