import { imagoError } from '../lib/errors';
import type { Row, TableConversion } from './conversion';
import { refreshId } from './refresh';

/**
 * The mapper turns old rows into write operations on Unew through the user's
 * conversion, and checks what comes back: a conversion that throws, returns
 * an undeclared target or a row without its key stops the transfer with the
 * table and the old key named — nothing is skipped silently.
 */
export type Op =
  | { kind: 'upsert'; table: string; row: Row }
  | { kind: 'delete'; table: string; key: unknown[] };

export interface MappedTable {
  conv: TableConversion;
  /** Old primary-key columns, read from Uold's catalog. */
  sourceKey: string[];
  targetKeys: Map<string, string[]>;
}

export function mapTable(conv: TableConversion, sourceKey: string[]): MappedTable {
  return { conv, sourceKey, targetKeys: new Map(conv.targets.map((t) => [t.table, t.key])) };
}

export function keyOf(row: Row, cols: string[]): unknown[] {
  return cols.map((c) => row[c]);
}

/** A stable text form of a key, for maps and reports. */
export function keyText(key: unknown[]): string {
  return JSON.stringify(key.map((v) => (v instanceof Date ? v.toISOString() : Buffer.isBuffer(v) ? v.toString('hex') : typeof v === 'bigint' ? v.toString() : v)));
}

/** convert(oldRow), checked. Returns the rows per declared target table. */
export function convertChecked(m: MappedTable, oldRow: Row): Map<string, Row[]> {
  return new Map(Object.entries(convertRaw(m, oldRow)));
}

function where(m: MappedTable, oldRow: Row): string {
  return `table '${m.conv.source}', key ${keyText(keyOf(oldRow, m.sourceKey))}`;
}

/**
 * convert(oldRow) with the same checks as convertChecked, returning the
 * conversion's own object (no copy): the copy calls this once per row, so
 * the checks allocate nothing unless they fail.
 */
export function convertRaw(m: MappedTable, oldRow: Row): Record<string, Row[]> {
  let out: Record<string, Row[]>;
  try {
    out = m.conv.convert(oldRow);
  } catch (err) {
    throw imagoError('TRANSFER_CONVERSION_FAILED', `${where(m, oldRow)}: convert threw: ${(err as Error)?.message ?? err}`, err);
  }
  if (!out || typeof out !== 'object') throw imagoError('TRANSFER_CONVERSION_FAILED', `${where(m, oldRow)}: convert returned ${String(out)}, not an object of rows per target table`);
  for (const table in out) {
    if (!Object.prototype.hasOwnProperty.call(out, table)) continue;
    const rows = out[table];
    const key = m.targetKeys.get(table);
    if (!key) throw imagoError('TRANSFER_CONVERSION_FAILED', `${where(m, oldRow)}: convert returned rows for '${table}', which is not among its declared targets (${[...m.targetKeys.keys()].join(', ')})`);
    if (!Array.isArray(rows)) throw imagoError('TRANSFER_CONVERSION_FAILED', `${where(m, oldRow)}: convert returned a non-array for '${table}'`);
    for (let i = 0; i < rows.length; i++) {
      const r = rows[i];
      for (let k = 0; k < key.length; k++) {
        if (r?.[key[k]] === undefined || r?.[key[k]] === null) {
          const missing = key.filter((c) => r?.[c] === undefined || r?.[c] === null);
          throw imagoError('TRANSFER_CONVERSION_FAILED', `${where(m, oldRow)}: a row for '${table}' lacks its key column(s) ${missing.join(', ')}`);
        }
      }
    }
  }
  return out;
}

/**
 * The operations that bring Unew from convert(before) to convert(after):
 * upsert everything after produces, delete the target keys before produced
 * that after no longer does (this is how deletes and key changes are applied).
 */
export function changeOps(m: MappedTable, before: Row | null, after: Row | null): Op[] {
  const ops: Op[] = [];
  const produced = new Set<string>();
  if (after) {
    for (const [table, rows] of convertChecked(m, after)) {
      const key = m.targetKeys.get(table)!;
      for (const row of rows) { ops.push({ kind: 'upsert', table, row }); produced.add(table + '\u0000' + keyText(keyOf(row, key))); }
    }
  }
  if (before) {
    for (const [table, rows] of convertChecked(m, before)) {
      const keyCols = m.targetKeys.get(table)!;
      for (const row of rows) {
        const key = keyOf(row, keyCols);
        if (!produced.has(table + '\u0000' + keyText(key))) ops.unshift({ kind: 'delete', table, key });
      }
    }
  }
  return ops;
}

/** Per refresh spec (by id), the keys these old rows feed (deduplicated); only specs in `active` when given. */
export function refreshKeys(m: MappedTable, rows: Array<Row | null>, into: Map<string, { sql: string; keys: Map<string, unknown[]> }>, active?: ReadonlySet<string>): void {
  for (const spec of m.conv.refresh ?? []) {
    const id = refreshId(spec.table, spec.sql, spec.setSql);
    if (active && !active.has(id)) continue;
    let slot = into.get(id);
    if (!slot) { slot = { sql: spec.sql, keys: new Map() }; into.set(id, slot); }
    for (const r of rows) {
      if (!r) continue;
      for (const k of spec.keysOf(r)) slot.keys.set(keyText(k), k);
    }
  }
}
