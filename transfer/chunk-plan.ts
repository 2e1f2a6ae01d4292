/**
 * A copied chunk turned into what the applier sends: pure work (no I/O), done
 * as soon as the chunk is read, so that it overlaps Unew writing the
 * previous one.
 */
import type { Row } from './conversion';
import { convertRaw, keyOf, keyText, type MappedTable, type Op } from './mapper';
import { id, idList, literal } from '../lib/sql';

/** Rows of one target table from a chunk, all with the same columns and distinct keys. */
export interface ChunkTarget { table: string; cols: string[]; rows: Row[] }

export interface ChunkPlan {
  /** Rows per target table, ready for multi-row upserts (the usual case), or null when `ops` must be used. */
  fast: ChunkTarget[] | null;
  /** Upserts in the chunk's order, for the generic path (a repeated target key or differing column sets). */
  ops: Op[];
}

/**
 * Converts a chunk, every row checked as convertChecked does. When every
 * target table's rows share one column set and have distinct keys — the
 * usual case, as the chunk's old keys are distinct — the rows are written as
 * they are (fast); otherwise as upsert ops, which keep the later image of a
 * repeated key and split differing column sets.
 */
export function planChunk(m: MappedTable, rows: Row[]): ChunkPlan {
  const targets = new Map<string, ChunkTarget & { keys: Set<unknown> }>();
  const converted: Array<Record<string, Row[]>> = new Array(rows.length);
  let fast = true;
  for (let i = 0; i < rows.length; i++) {
    const out = convertRaw(m, rows[i]);
    converted[i] = out;
    if (!fast) continue;
    for (const table in out) {
      if (!Object.prototype.hasOwnProperty.call(out, table)) continue;
      const list = out[table];
      if (list.length === 0) continue;
      let t = targets.get(table);
      if (!t) { t = { table, cols: Object.keys(list[0]), rows: [], keys: new Set() }; targets.set(table, t); }
      const key = m.targetKeys.get(table)!;
      for (const r of list) {
        if (!sameColumns(r, t.cols)) { fast = false; break; }
        const k = key.length === 1 && (typeof r[key[0]] === 'number' || typeof r[key[0]] === 'string') ? r[key[0]] : '\u0000' + keyText(keyOf(r, key));
        if (t.keys.has(k)) { fast = false; break; }
        t.keys.add(k);
        t.rows.push(r);
      }
      if (!fast) break;
    }
  }
  if (fast) return { fast: [...targets.values()].map(({ table, cols, rows: rs }) => ({ table, cols, rows: rs })), ops: [] };
  const ops: Op[] = [];
  for (const out of converted) for (const [table, list] of Object.entries(out)) for (const row of list) ops.push({ kind: 'upsert', table, row });
  return { fast: null, ops };
}

/** The row has exactly these columns (as a set). */
function sameColumns(r: Row, cols: string[]): boolean {
  let n = 0;
  for (const c in r) { if (Object.prototype.hasOwnProperty.call(r, c)) n++; }
  if (n !== cols.length) return false;
  for (let i = 0; i < cols.length; i++) if (!Object.prototype.hasOwnProperty.call(r, cols[i])) return false;
  return true;
}

/**
 * ` ON DUPLICATE KEY UPDATE …` for these columns: every non-key column the
 * conversion owns (`preserved` ones, maintained by refresh, are kept).
 */
export function upsertTail(cols: readonly string[], key: readonly string[], preserved: ReadonlySet<string>): string {
  const k = new Set(key);
  const updates = cols.filter((c) => !k.has(c) && !preserved.has(c));
  return ` ON DUPLICATE KEY UPDATE ${(updates.length ? updates : [cols[0]]).map((c) => `${id(c)} = VALUES(${id(c)})`).join(', ')}`;
}

/** A chunk's statements are about this many bytes of SQL each, sent back to back. */
export const CHUNK_STATEMENT_BYTES = 256 * 1024;
const YIELD_ROWS = 1_000;

/**
 * Multi-row upserts written as text, about CHUNK_STATEMENT_BYTES each:
 * numbers and NULL inline, every other value escaped as mysql2 escapes a
 * parameter. Yields to the event loop every YIELD_ROWS rows, so that the
 * replies of the chunk being written (and its COMMIT) are not kept waiting.
 */
export async function upsertStatements(targets: ChunkTarget[], tailOf: (table: string, cols: string[]) => string): Promise<string[]> {
  const out: string[] = [];
  for (const { table, cols, rows } of targets) {
    const head = `INSERT INTO ${id(table)} (${idList(cols)}) VALUES `;
    const tail = tailOf(table, cols);
    // Tuples are collected and joined: the statement is one flat string at
    // once, and the pieces die young instead of living on as a rope until sent.
    let tuples: string[] = [];
    let bytes = 0;
    for (let i = 0; i < rows.length; i++) {
      if (i && i % YIELD_ROWS === 0) await new Promise<void>((resolve) => setImmediate(resolve));
      const r = rows[i];
      let tuple = '(';
      for (let c = 0; c < cols.length; c++) {
        const v = r[cols[c]];
        tuple += (c ? ', ' : '') + (v === null || v === undefined ? 'NULL' : typeof v === 'number' ? String(v) : literal(v));
      }
      tuples.push(tuple + ')');
      bytes += tuple.length + 3;
      if (bytes >= CHUNK_STATEMENT_BYTES) { out.push(head + tuples.join(', ') + tail); tuples = []; bytes = 0; }
    }
    if (tuples.length) out.push(head + tuples.join(', ') + tail);
  }
  return out;
}
