/**
 * Derived values (a conversion's `refresh` specs), in two forms:
 *  - during the bulk copy nothing is recomputed per row; once every table is
 *    copied, a pass walks each refreshed table by primary key and runs the
 *    spec's set-based `setSql` once per batch of keys;
 *  - for the change stream, `sql` runs per affected key in the batch's
 *    transaction, for a spec whose pass has started (before that, the pass
 *    recomputes every row anyway).
 * Both run on the follower's connection, between stream batches, so a pass
 * batch and a stream batch never interleave: each sees the other's writes.
 */
import * as crypto from 'node:crypto';
import { imagoError } from '../lib/errors';
import type { ConversionModule } from './conversion';

export interface RefreshPlan {
  /** Stable id of the spec (its table and statements): the key of its pass state in Unew. */
  id: string;
  table: string;
  sql: string;
  setSql: string;
}

export function refreshId(table: string, sql: string, setSql: string): string {
  return crypto.createHash('sha1').update(`${table}\u0000${sql}\u0000${setSql}`).digest('hex');
}

/** Every distinct refresh spec of the conversion (two tables feeding the same spec share it). */
export function refreshPlans(conv: ConversionModule): RefreshPlan[] {
  const out = new Map<string, RefreshPlan>();
  for (const t of conv.tables) {
    for (const r of t.refresh ?? []) {
      const id = refreshId(r.table, r.sql, r.setSql);
      if (!out.has(id)) out.set(id, { id, table: r.table, sql: r.sql, setSql: r.setSql });
    }
  }
  return [...out.values()];
}

/** A row of `EXPLAIN` (MariaDB's columns; only those read here). */
export interface ExplainRow { table: string | null; type: string | null; rows: number | string | null }

/**
 * Tables a pass's `setSql` reads whole for one batch, by its plan: a base
 * table (not a derived table or subquery) accessed by `ALL` with more than
 * ten batches' worth of rows. Such a pass costs a scan of that table per
 * batch, so its time grows with the square of the table: MariaDB, for one,
 * turns an IN list of 1,000 values or more into a derived table and may then
 * read a grouped subquery's table whole. Warned about, not refused: the plan
 * rests on statistics that may lag a bulk copy, and a slow pass is still correct.
 */
export function wholeTableScans(explain: ExplainRow[], batch: number): Array<{ table: string; rows: number }> {
  return explain
    .filter((r) => r.type === 'ALL' && typeof r.table === 'string' && !r.table.startsWith('<') && Number(r.rows) > 10 * batch)
    .map((r) => ({ table: r.table as string, rows: Number(r.rows) }));
}

/** The operator's warning for a pass whose setSql scans tables whole (see wholeTableScans). */
export function wholeScanWarning(plan: Pick<RefreshPlan, 'table'>, scans: Array<{ table: string; rows: number }>, batch: number): string {
  const what = scans.map((s) => `${s.table} (about ${s.rows.toLocaleString('en-US')} rows)`).join(', ');
  return `the refresh pass of '${plan.table}' reads ${what} whole for every batch of ${batch} keys, so it slows with the square of the table: `
    + 'write its setSql so each key is found by an index (e.g. subqueries correlated on the key; see docs/data-transfer.md, "Refresh statements")';
}

/** Every refresh spec carries both forms; all omissions reported at once. */
export function validateRefreshSpecs(conv: ConversionModule): void {
  const wrong: string[] = [];
  for (const t of conv.tables) {
    (t.refresh ?? []).forEach((r, i) => {
      const where = `table '${t.source}', refresh[${i}] (of '${r?.table}')`;
      if (!r || typeof r.table !== 'string' || !r.table) wrong.push(`${where}: no target table`);
      if (typeof r?.keysOf !== 'function') wrong.push(`${where}: keysOf is not a function`);
      if (typeof r?.sql !== 'string' || !r.sql.includes('?')) wrong.push(`${where}: sql (per key, with ? parameters) is missing`);
      if (typeof r?.setSql !== 'string' || !r.setSql.includes('?')) wrong.push(`${where}: setSql (the set-based form for the bulk copy, every ? bound to a list of keys) is missing`);
    });
  }
  if (wrong.length) throw imagoError('TRANSFER_CONVERSION_INVALID', `conversion '${conv.name}': ${wrong.join('; ')}`);
}

/** The number of `?` placeholders outside quoted strings and comments-free SQL (the caller's statements are plain). */
export function placeholderCount(sql: string): number {
  let n = 0;
  let quote: string | null = null;
  for (let i = 0; i < sql.length; i++) {
    const c = sql[i];
    if (quote) { if (c === '\\') i++; else if (c === quote) quote = null; }
    else if (c === "'" || c === '"' || c === '`') quote = c;
    else if (c === '?') n++;
  }
  return n;
}
