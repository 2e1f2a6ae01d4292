import type * as mysql from 'mysql2/promise';
import type { Row } from './conversion';
import { changeOps, convertRaw, keyOf, keyText, refreshKeys, type MappedTable, type Op } from './mapper';
import { STATE_TABLE, TABLES_TABLE } from './meta';
import type { GtidPosition } from './position';

/** One committed Uold transaction as the streamer delivers it. */
export interface SourceTxn {
  gtid: string;
  changes: Array<{ table: string; before: Row | null; after: Row | null }>;
  receivedAt: number;
}

const MAX_ROWS_PER_STATEMENT = 1_000;
/** A copied chunk is written in statements of about this many bytes of SQL, sent back to back. */
const CHUNK_STATEMENT_BYTES = 256 * 1024;
const YIELD_ROWS = 1_000;

/** A chunk converted and turned into statements before its turn to be written. */
export interface PreparedChunk {
  /** Rows read (the rows themselves are not kept: they would only burden the garbage collector). */
  rows: number;
  /** Ready upserts (the usual case), or null when `ops` must go through the generic path. */
  statements: string[] | null;
  ops: Op[];
  refresh: Map<string, { sql: string; keys: Map<string, unknown[]> }>;
}

/** Rows of one target table from a chunk, all with the same columns and distinct keys. */
interface ChunkTarget { table: string; cols: string[]; rows: Row[] }

/**
 * The applier is the only component that writes to Unew. Every write is one
 * transaction holding the converted rows AND the state that describes them
 * (position, copy progress), so a crash can never separate the two.
 * Writes are idempotent (upsert / delete by the mapped key): a transaction
 * delivered twice by the binlog stream ends in the same rows.
 */
export class Applier {
  constructor(private readonly conn: mysql.Connection, private readonly tables: Map<string, MappedTable>) {}

  /**
   * Converts a chunk and builds its statements, touching nothing: the copy
   * calls this as soon as a chunk is read, so it overlaps Unew writing the
   * previous chunk.
   */
  async prepareChunk(m: MappedTable, rows: Row[]): Promise<PreparedChunk> {
    const plan = this.planChunk(m, rows);
    const refresh = new Map<string, { sql: string; keys: Map<string, unknown[]> }>();
    refreshKeys(m, rows, refresh);
    return { rows: rows.length, statements: plan.fast ? await this.chunkStatements(plan.fast) : null, ops: plan.ops, refresh };
  }

  /** A copied chunk of one table, read at snapshot `position`, with its copy state. */
  async applyChunk(m: MappedTable, prepared: PreparedChunk, lastKey: unknown[] | null, done: boolean, position: GtidPosition): Promise<void> {
    const state: Array<[string, unknown[]]> = [
      [`UPDATE ${TABLES_TABLE} SET last_key = ?, rows_copied = rows_copied + ?, done = ? WHERE source_table = ?`,
        [lastKey === null ? null : JSON.stringify(lastKey), prepared.rows, done ? 1 : 0, m.conv.source]],
      [`UPDATE ${STATE_TABLE} SET applied_gtid = ?, updated_at = NOW(3) WHERE id = 1`, [position.toString()]],
    ];
    await this.inTransaction(async () => {
      if (prepared.statements) {
        // Rows and state go back to back; inTransaction sends COMMIT only after all of them succeeded.
        await this.sendAll([...prepared.statements.map((sql): [string] => [sql]), ...state]);
        await this.runRefresh(prepared.refresh);
      } else {
        await this.runOps(prepared.ops);
        await this.runRefresh(prepared.refresh);
        for (const [sql, params] of state) await this.conn.query(sql, params);
      }
    });
  }

  /**
   * Converts a chunk (every row checked as convertChecked does). When every
   * target table's rows share one column set and have distinct keys — the
   * usual case, as the chunk's old keys are distinct — the rows are written
   * as they are (fast); otherwise as upsert ops through runOps, which keeps
   * the later image of a repeated key and splits differing column sets.
   */
  private planChunk(m: MappedTable, rows: Row[]): { fast: ChunkTarget[] | null; ops: Op[] } {
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

  /**
   * Multi-row upserts written here as text, about CHUNK_STATEMENT_BYTES each.
   * Yields to the event loop every YIELD_ROWS rows, so that the replies of
   * the chunk being written (and its COMMIT) are not kept waiting behind this.
   */
  private async chunkStatements(targets: ChunkTarget[]): Promise<string[]> {
    const out: string[] = [];
    for (const { table, cols, rows } of targets) {
      const head = `INSERT INTO \`${table}\` (${cols.map((c) => `\`${c}\``).join(', ')}) VALUES `;
      const tail = this.upsertTail(table, cols);
      // Tuples are collected and joined: the statement is one flat string at
      // once, and the pieces die young instead of living on as a rope until sent.
      let tuples: string[] = [];
      let bytes = 0;
      for (let i = 0; i < rows.length; i++) {
        if (i && i % YIELD_ROWS === 0) await new Promise<void>((resolve) => setImmediate(resolve));
        const r = rows[i];
        let tuple = '(';
        for (let c = 0; c < cols.length; c++) {
          // Numbers and NULL inline; everything else exactly as conn.query would escape it.
          const v = r[cols[c]];
          tuple += (c ? ', ' : '') + (v === null || v === undefined ? 'NULL' : typeof v === 'number' ? String(v) : this.conn.escape(v));
        }
        tuples.push(tuple + ')');
        bytes += tuple.length + 3;
        if (bytes >= CHUNK_STATEMENT_BYTES) { out.push(head + tuples.join(', ') + tail); tuples = []; bytes = 0; }
      }
      if (tuples.length) out.push(head + tuples.join(', ') + tail);
    }
    return out;
  }

  /** Sends statements back to back (no round trip between them), awaits all, rethrows the first failure (the caller rolls back). */
  private async sendAll(statements: Array<[string, unknown[]?]>): Promise<void> {
    const results = await Promise.allSettled(statements.map(([sql, params]) => this.conn.query(sql, params)));
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
  }

  /** Change events of Uold transactions, in commit order, up to `position` (which covers them). */
  async applyTransactions(txns: SourceTxn[], position: GtidPosition): Promise<number> {
    const ops: Op[] = [];
    const refresh = new Map<string, { sql: string; keys: Map<string, unknown[]> }>();
    let events = 0;
    for (const t of txns) {
      for (const c of t.changes) {
        const m = this.tables.get(c.table);
        if (!m) continue; // a table the conversion ignores: only its position matters
        events++;
        ops.push(...changeOps(m, c.before, c.after));
        refreshKeys(m, [c.before, c.after], refresh);
      }
    }
    // Even with no rows to write, the position is recorded: flush-to-position
    // must see Unew reach Uold's position when the last transactions were for
    // other tables or databases.
    await this.inTransaction(async () => {
      await this.runOps(ops);
      await this.runRefresh(refresh);
      await this.conn.query(`UPDATE ${STATE_TABLE} SET applied_gtid = ?, events_applied = events_applied + ?, updated_at = NOW(3) WHERE id = 1`, [position.toString(), events]);
    });
    return events;
  }

  /** Preflight: writes converted sample rows and rolls them back, so Unew's schema and strict mode judge them. */
  async probe(ops: Op[]): Promise<void> {
    await this.conn.query('START TRANSACTION');
    try { await this.runOps(ops); } finally { await this.conn.query('ROLLBACK'); }
  }

  private async inTransaction(fn: () => Promise<void>): Promise<void> {
    await this.conn.query('START TRANSACTION');
    try {
      await fn();
      await this.conn.query('COMMIT');
    } catch (err) {
      await this.conn.query('ROLLBACK').catch(() => undefined);
      throw err;
    }
  }

  /**
   * Runs ops in their order, merging runs of the same kind on the same table
   * into multi-row statements. Order across runs is kept so that a delete
   * followed by an insert (or a key moving between rows) ends as in Uold.
   */
  private async runOps(all: Op[]): Promise<void> {
    // Ops on different tables are independent (each target key's final state
    // depends only on its own ops, in order), so group by table, keeping order.
    const byTable = new Map<string, Op[]>();
    for (const op of all) (byTable.get(op.table) ?? byTable.set(op.table, []).get(op.table)!).push(op);
    for (const ops of byTable.values()) await this.runTableOps(ops);
  }

  private async runTableOps(ops: Op[]): Promise<void> {
    let i = 0;
    while (i < ops.length) {
      const first = ops[i];
      const run = new Map<string, Op>();
      let j = i;
      while (j < ops.length && ops[j].kind === first.kind && ops[j].table === first.table && run.size < MAX_ROWS_PER_STATEMENT) {
        const op = ops[j];
        const k = keyText(op.kind === 'delete' ? op.key : keyOf(op.row, this.targetKey(op.table)));
        if (op.kind === 'upsert') {
          const prev = run.get(k);
          if (prev && prev.kind === 'upsert' && Object.keys(prev.row).join() !== Object.keys(op.row).join()) break;
        }
        run.delete(k); run.set(k, op); // the later image of a key wins inside a run
        j++;
      }
      if (first.kind === 'delete') await this.deleteKeys(first.table, [...run.values()].map((o) => (o as { key: unknown[] }).key));
      else await this.upsertRows(first.table, [...run.values()].map((o) => (o as { row: Row }).row));
      i = j;
    }
  }

  private targetKey(table: string): string[] {
    for (const m of this.tables.values()) { const k = m.targetKeys.get(table); if (k) return k; }
    throw new Error(`no target key for ${table}`);
  }

  private preserved(table: string): Set<string> {
    const s = new Set<string>();
    for (const m of this.tables.values()) for (const c of m.conv.preserveColumns?.[table] ?? []) s.add(c);
    return s;
  }

  private async upsertRows(table: string, rows: Row[]): Promise<void> {
    // Rows with different column sets go in separate statements.
    const groups = new Map<string, Row[]>();
    for (const r of rows) { const sig = Object.keys(r).join('\u0000'); (groups.get(sig) ?? groups.set(sig, []).get(sig)!).push(r); }
    for (const group of groups.values()) {
      const cols = Object.keys(group[0]);
      const sql = `INSERT INTO \`${table}\` (${cols.map((c) => `\`${c}\``).join(', ')}) VALUES ?` + this.upsertTail(table, cols);
      await this.conn.query(sql, [group.map((r) => cols.map((c) => r[c]))]);
    }
  }

  /** ` ON DUPLICATE KEY UPDATE …` for these columns: every non-key column the conversion owns. */
  private upsertTail(table: string, cols: string[]): string {
    const key = new Set(this.targetKey(table));
    const keep = this.preserved(table);
    const updates = cols.filter((c) => !key.has(c) && !keep.has(c));
    return ` ON DUPLICATE KEY UPDATE ${(updates.length ? updates : [cols[0]]).map((c) => `\`${c}\` = VALUES(\`${c}\`)`).join(', ')}`;
  }

  private async deleteKeys(table: string, keys: unknown[][]): Promise<void> {
    const cols = this.targetKey(table);
    const where = cols.length === 1 ? `\`${cols[0]}\` IN (?)` : `(${cols.map((c) => `\`${c}\``).join(', ')}) IN (?)`;
    await this.conn.query(`DELETE FROM \`${table}\` WHERE ${where}`, [cols.length === 1 ? keys.map((k) => k[0]) : keys]);
  }

  private async runRefresh(refresh: Map<string, { sql: string; keys: Map<string, unknown[]> }>): Promise<void> {
    for (const { sql, keys } of refresh.values()) for (const k of keys.values()) await this.conn.query(sql, k);
  }
}

/** The row has exactly these columns (as a set). */
function sameColumns(r: Row, cols: string[]): boolean {
  let n = 0;
  for (const c in r) { if (Object.prototype.hasOwnProperty.call(r, c)) n++; }
  if (n !== cols.length) return false;
  for (let i = 0; i < cols.length; i++) if (!Object.prototype.hasOwnProperty.call(r, cols[i])) return false;
  return true;
}
