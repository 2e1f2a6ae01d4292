import type * as mysql from 'mysql2/promise';
import { imagoError, isImagoError } from '../lib/errors';
import { Applier } from './applier';
import type { Row } from './conversion';
import { Inspector } from './inspector';
import { convertChecked, keyOf, keyText, mapTable, type MappedTable, type Op } from './mapper';
import { META_TABLES } from './meta';
import type { TransferOptions } from './options';

export interface PreflightResult {
  tables: Map<string, MappedTable>;
  /** Tables that must be fully copied before each table starts (see refreshDeps). */
  deps: Map<string, string[]>;
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
    const [rows] = await source.query(`SELECT * FROM \`${opts.source.database}\`.\`${m.conv.source}\` ORDER BY ${m.sourceKey.map((c) => `\`${c}\``).join(', ')} LIMIT ${opts.sampleRows}`) as [Row[], unknown];
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
  return { tables, deps: refreshDeps(tables), sourceId: await old.sourceId() };
}

/** For each table, the tables that must be fully copied before it starts (producers of the rows its refresh specs update). */
export function refreshDeps(tables: Map<string, MappedTable>): Map<string, string[]> {
  const producers = new Map<string, string[]>();
  for (const m of tables.values()) for (const t of m.targetKeys.keys()) (producers.get(t) ?? producers.set(t, []).get(t)!).push(m.conv.source);
  const deps = new Map<string, string[]>();
  for (const m of tables.values()) {
    const d = new Set<string>();
    for (const spec of m.conv.refresh ?? []) for (const p of producers.get(spec.table) ?? []) if (p !== m.conv.source) d.add(p);
    deps.set(m.conv.source, [...d]);
  }
  // Why: a cycle would wait forever; drop the dependencies of tables on a cycle (refresh then still runs on every write).
  for (const [name, d] of deps) for (const p of d) if (deps.get(p)?.includes(name)) { deps.set(name, []); deps.set(p, []); }
  return deps;
}
