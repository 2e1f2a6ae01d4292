/**
 * The checks of `imago plan validate` beyond the loader's: they run the
 * user's code or start a server, so the loader (called on every start and on
 * the worker) does not make them.
 *  - the conversion module loads as the worker loads it (require, through
 *    tsx for TypeScript) and exports a ConversionModule;
 *  - the schema file applies to an empty database on a throwaway MariaDB
 *    (skipped, and said so, with `offline` or when mariadbd is not installed);
 *    then every table the conversion writes exists there with the key it
 *    declares.
 * Every error has its path; with the loader's errors, all come in one run.
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { imagoError, isImagoError } from '../lib/errors';
import { MariaDbInstance, mariadbBinary } from '../lib/mariadb';
import type { RowDataPacket } from 'mysql2/promise';
import type { ConversionModule } from '../transfer/conversion';
import { reverseCoverageProblems } from '../transfer/inverse';
import { checkPlan, readPlanFile } from './load';
import { DEFAULT_APP_PRIVILEGES } from './schema';
import type { UpgradePlan } from './types';

export interface PlanInspection {
  /** The loaded plan, when every check passed. */
  plan?: UpgradePlan;
  errors: string[];
  /** Checks that were not made, and why (e.g. no mariadbd on this host). */
  notChecked: string[];
}

export interface InspectOptions {
  /** Do not start a throwaway MariaDB to apply the schema file. */
  offline?: boolean;
}

/** Reads a plan file and makes every check: the loader's and the deep ones. Throws only IMAGO_PLAN_UNREADABLE. */
export async function inspectPlanFile(file: string, opts: InspectOptions = {}): Promise<PlanInspection> {
  const { parsed, dir } = readPlanFile(file);
  const { plan, errors, files } = checkPlan(parsed, dir);
  const notChecked: string[] = [];
  let conversion: ConversionModule | undefined;
  if (files.conversion) {
    try { conversion = loadConversionModule(files.conversion); } catch (err) { errors.push(problem(err)); }
    // A plan that wants rollback needs the inverse of every Unew table the conversion writes.
    const wantsRollback = (parsed as { postSwitchover?: { rollback?: { enabled?: unknown } } }).postSwitchover?.rollback?.enabled === true;
    if (conversion && wantsRollback) errors.push(...reverseCoverageProblems(conversion).map((p) => `/unew/conversion: reverse: ${p} (ROLLBACK_REVERSE_MISSING; postSwitchover.rollback.enabled is true)`));
  }
  if (files.schemaFile) {
    const unew = (parsed as { unew?: { database?: unknown; grants?: { privileges?: unknown } } }).unew;
    const database = typeof unew?.database === 'string' && /^[A-Za-z0-9_]+$/.test(unew.database) ? unew.database : 'imago_check';
    const privileges = Array.isArray(unew?.grants?.privileges) && unew.grants.privileges.length ? unew.grants.privileges.map(String) : DEFAULT_APP_PRIVILEGES;
    if (opts.offline) notChecked.push('/unew/schemaFile: not applied to a scratch MariaDB (--offline)');
    else {
      const r = await checkSchemaFile(files.schemaFile, { database, privileges, conversion });
      errors.push(...r.errors);
      if (r.notChecked) notChecked.push(r.notChecked);
    }
  }
  return errors.length ? { errors, notChecked } : { plan, errors, notChecked };
}

/**
 * Loads a conversion module as the worker does and checks its shape. Throws
 * TRANSFER_CONVERSION_FAILED naming `/unew/conversion`, the file and what is
 * wrong (the module's own error when it throws while loading).
 */
export function loadConversionModule(file: string): ConversionModule {
  const abs = path.resolve(file);
  let mod: { default?: unknown };
  try { mod = require(abs); } catch (err) {
    throw imagoError('TRANSFER_CONVERSION_FAILED', `/unew/conversion: ${abs} throws when loaded: ${firstLine(err)}`);
  }
  const conv = (mod.default ?? mod) as unknown;
  const problems = conversionShapeProblems(conv);
  if (problems.length) throw imagoError('TRANSFER_CONVERSION_FAILED', `/unew/conversion: ${abs} does not export a ConversionModule (transfer/conversion.ts): ${problems.join('; ')}`);
  return conv as ConversionModule;
}

/** What a ConversionModule must hold that its type says (functions cannot be checked by a JSON Schema). */
export function conversionShapeProblems(conv: unknown): string[] {
  if (!conv || typeof conv !== 'object') return ['the default export is not an object'];
  const c = conv as Record<string, unknown>;
  const out: string[] = [];
  const isStrings = (v: unknown) => Array.isArray(v) && v.every((x) => typeof x === 'string' && x.length > 0);
  if (typeof c.name !== 'string' || !c.name) out.push("'name' must be a non-empty string");
  if (c.ignoreTables !== undefined && !isStrings(c.ignoreTables)) out.push("'ignoreTables' must be a list of table names");
  if (!Array.isArray(c.tables)) return [...out, "'tables' must be a list of TableConversion"];
  c.tables.forEach((t: unknown, i: number) => {
    const at = `tables[${i}]`;
    if (!t || typeof t !== 'object') { out.push(`${at} must be an object`); return; }
    const tc = t as Record<string, unknown>;
    if (typeof tc.source !== 'string' || !tc.source) out.push(`${at}.source must be a table name`);
    if (typeof tc.convert !== 'function') out.push(`${at}.convert must be a function`);
    if (!Array.isArray(tc.targets) || tc.targets.length === 0) out.push(`${at}.targets must be a non-empty list`);
    else tc.targets.forEach((x: unknown, j: number) => {
      const tt = (x ?? {}) as Record<string, unknown>;
      if (typeof tt.table !== 'string' || !tt.table) out.push(`${at}.targets[${j}].table must be a table name`);
      if (!isStrings(tt.key) || (tt.key as string[]).length === 0) out.push(`${at}.targets[${j}].key must be a non-empty list of column names`);
    });
    if (tc.refresh !== undefined) {
      if (!Array.isArray(tc.refresh)) out.push(`${at}.refresh must be a list`);
      else tc.refresh.forEach((x: unknown, j: number) => {
        const r = (x ?? {}) as Record<string, unknown>;
        if (typeof r.table !== 'string' || typeof r.sql !== 'string' || typeof r.keysOf !== 'function') out.push(`${at}.refresh[${j}] needs table, sql and keysOf()`);
      });
    }
  });
  return out;
}

/**
 * Applies a schema file to an empty database on a throwaway MariaDB, as the
 * worker applies it to Unew (one multi-statement query, the application's
 * account already there for GRANT/REVOKE), then checks that each table the
 * conversion writes exists with the key it declares. `notChecked` when this
 * host has no mariadbd.
 */
export async function checkSchemaFile(file: string, opts: { database: string; privileges: string[]; conversion?: ConversionModule }): Promise<{ errors: string[]; notChecked?: string }> {
  try { mariadbBinary('mariadbd'); } catch (err) {
    if (isImagoError(err, 'IMAGO_PREREQ_MISSING')) return { errors: [], notChecked: `/unew/schemaFile: not applied: ${err.detail}` };
    throw err;
  }
  const sql = fs.readFileSync(file, 'utf8');
  const db = new MariaDbInstance();
  try {
    await db.start();
    await db.createDatabase(opts.database);
    // The local provider creates the application's account before the schema step: a schema file may GRANT or REVOKE on it.
    await db.createUser('app', crypto.randomBytes(12).toString('hex'), [`${opts.privileges.join(', ')} ON \`${opts.database}\`.*`]);
    const conn = await db.connect(opts.database);
    try {
      try { await conn.query(sql); } catch (err) {
        return { errors: [`/unew/schemaFile: ${file}${fileLine(sql, err)} does not apply to an empty database: ${firstLine(err)}`] };
      }
      return { errors: opts.conversion ? await targetProblems(conn, opts.database, opts.conversion) : [] };
    } finally { await conn.end().catch(() => undefined); }
  } finally {
    await db.destroy();
  }
}

/** Each conversion target against the applied schema: the table exists, and its primary key is the declared key. */
async function targetProblems(conn: Awaited<ReturnType<MariaDbInstance['connect']>>, database: string, conv: ConversionModule): Promise<string[]> {
  const [rows] = await conn.query<RowDataPacket[]>(
    "SELECT TABLE_NAME AS t, COLUMN_NAME AS c FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND COLUMN_KEY = 'PRI' ORDER BY TABLE_NAME, ORDINAL_POSITION", [database]);
  const [tables] = await conn.query<RowDataPacket[]>('SELECT TABLE_NAME AS t FROM information_schema.TABLES WHERE TABLE_SCHEMA = ?', [database]);
  const present = new Set(tables.map((r) => String(r.t)));
  const keys = new Map<string, string[]>();
  for (const r of rows) keys.set(String(r.t), [...(keys.get(String(r.t)) ?? []), String(r.c)]);
  const out: string[] = [];
  conv.tables.forEach((tc, i) => tc.targets.forEach((t, j) => {
    const at = `/unew/conversion: tables[${i}].targets[${j}]`;
    if (!present.has(t.table)) out.push(`${at}: table '${t.table}' is not in the schema file`);
    else if ([...(keys.get(t.table) ?? [])].sort().join() !== [...t.key].sort().join()) {
      out.push(`${at}: key (${t.key.join(', ')}) is not the primary key of '${t.table}' in the schema file (${(keys.get(t.table) ?? []).join(', ') || 'none'})`);
    }
  }));
  return out;
}

/**
 * Where in the file a syntax error is: MariaDB counts lines from the start of
 * the failing statement, so its "near '…'" text is looked up in the file
 * (when it occurs once there).
 */
export function fileLine(sql: string, err: unknown): string {
  const near = /near '([\s\S]*?)' at line \d+/.exec(String((err as Error)?.message ?? ''))?.[1]?.slice(0, 40);
  if (!near) return '';
  const at = sql.indexOf(near);
  if (at < 0 || sql.indexOf(near, at + 1) >= 0) return '';
  return `:${sql.slice(0, at).split('\n').length}`;
}

function problem(err: unknown): string {
  return isImagoError(err) ? err.detail : String((err as Error)?.message ?? err);
}

/** The first line of an error's message: a stack or a long SQL echo would bury the path. */
function firstLine(err: unknown): string {
  return String((err as Error)?.message ?? err).split('\n')[0].slice(0, 500);
}
