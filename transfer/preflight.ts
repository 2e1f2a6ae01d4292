import type * as mysql from 'mysql2/promise';
import { imagoError, isImagoError } from '../lib/errors';
import { Applier } from './applier';
import type { Row } from './conversion';
import { Inspector } from './inspector';
import { convertChecked, keyOf, keyText, mapTable, type MappedTable, type Op } from './mapper';
import { META_TABLES } from './meta';
import type { TransferOptions } from './options';
import { refreshPlans, validateRefreshSpecs, type RefreshPlan } from './refresh';
import { keysetSelect } from '../lib/sql';

export interface PreflightResult {
  tables: Map<string, MappedTable>;
  /** Each set-based refresh with the primary key of the Unew table it recomputes. */
  refresh: Array<RefreshPlan & { keyCols: string[] }>;
  sourceId: string;
}

/**
 * Checks everything that can be checked before the first write to Unew:
 * Uold's binlog is ROW/FULL, the reader has its privileges, every table has a
 * primary key and is either converted or deliberately ignored, and the
 * conversion of a sample of real rows fits Unew's schema (written, then
 * rolled back). Each failure is a registry error naming the table and key.
 */
export async function preflight(opts: Pick<TransferOptions, 'source' | 'target' | 'conversion' | 'sampleRows'>, source: mysql.Pool, target: mysql.Connection): Promise<PreflightResult> {
  validateRefreshSpecs(opts.conversion);
  const old = new Inspector(source, opts.source.database);
  const neu = new Inspector(target, opts.target.database);
  await old.expectRowBinlog();
  await old.expectReplicationPrivileges(decodeURIComponent(new URL(opts.source.url).username));

  const present = new Set(await old.tables());
  const conv = opts.conversion;
  const named = conv.tables.map((t) => t.source);
  const absent = named.filter((t) => !present.has(t));
  if (absent.length) throw imagoError('TRANSFER_TABLE_MISSING', `Uold database '${opts.source.database}' has no table ${absent.join(', ')} named by conversion '${conv.name}'`);
  const ignored = new Set(conv.ignoreTables ?? []);
  const uncovered = [...present].filter((t) => !named.includes(t) && !ignored.has(t));
  if (uncovered.length) throw imagoError('TRANSFER_CONVERSION_INCOMPLETE', `conversion '${conv.name}' neither converts nor ignores Uold table(s) ${uncovered.join(', ')}`);

  const tables = new Map<string, MappedTable>();
  for (const tc of conv.tables) {
    const key = await old.primaryKey(tc.source);
    if (key.length === 0) throw imagoError('TRANSFER_NO_PRIMARY_KEY', `Uold table '${opts.source.database}.${tc.source}' has no primary key; chunked copy and change apply need one`);
    tables.set(tc.source, mapTable(tc, key));
  }

  const newTables = new Set(await neu.tables());
  const targetCols = new Map<string, Set<string>>();
  for (const tc of conv.tables) {
    for (const t of tc.targets) {
      if (META_TABLES.includes(t.table)) throw imagoError('TRANSFER_SCHEMA_MISMATCH', `target table name '${t.table}' is reserved for the transfer state`);
      if (!newTables.has(t.table)) throw imagoError('TRANSFER_TABLE_MISSING', `Unew database '${opts.target.database}' has no table '${t.table}' (target of '${tc.source}')`);
      const pk = await neu.primaryKey(t.table);
      if (pk.slice().sort().join() !== t.key.slice().sort().join()) {
        throw imagoError('TRANSFER_SCHEMA_MISMATCH', `target '${t.table}' declares key (${t.key.join(', ')}) but Unew's primary key is (${pk.join(', ')})`);
      }
      targetCols.set(t.table, new Set(await neu.columns(t.table)));
    }
  }

  const applier = new Applier(target, tables);
  for (const m of tables.values()) {
    if (opts.sampleRows === 0) break;
    const q = keysetSelect(opts.source.database, m.conv.source, m.sourceKey, null, opts.sampleRows);
    const [rows] = await source.query(q.sql, q.params) as [Row[], unknown];
    const ops: Op[] = [];
    for (const r of rows) {
      const where = `table '${m.conv.source}', key ${keyText(keyOf(r, m.sourceKey))}`;
      for (const [table, out] of convertChecked(m, r)) {
        for (const row of out) {
          const unknown = Object.keys(row).filter((c) => !targetCols.get(table)!.has(c));
          if (unknown.length) throw imagoError('TRANSFER_SCHEMA_MISMATCH', `${where}: converted row for '${table}' has column(s) ${unknown.join(', ')} that Unew's table lacks`);
          ops.push({ kind: 'upsert', table, row });
        }
      }
      try {
        await applier.probe(ops.splice(0));
      } catch (err) {
        if (isImagoError(err)) throw err;
        throw imagoError('TRANSFER_SCHEMA_MISMATCH', `${where}: Unew refused the converted row: ${(err as Error).message}`, err);
      }
    }
  }
  const refresh: PreflightResult['refresh'] = [];
  for (const p of refreshPlans(conv)) {
    if (!newTables.has(p.table)) throw imagoError('TRANSFER_TABLE_MISSING', `Unew database '${opts.target.database}' has no table '${p.table}' (refreshed by conversion '${conv.name}')`);
    const keyCols = await neu.primaryKey(p.table);
    if (keyCols.length === 0) throw imagoError('TRANSFER_NO_PRIMARY_KEY', `Unew table '${p.table}' (refreshed by conversion '${conv.name}') has no primary key; the refresh pass walks it by key`);
    refresh.push({ ...p, keyCols });
  }
  return { tables, refresh, sourceId: await old.sourceId() };
}
