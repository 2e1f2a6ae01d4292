import type * as mysql from 'mysql2/promise';
import type { Row } from './conversion';
import { changeOps, convertChecked, keyOf, keyText, refreshKeys, type MappedTable, type Op } from './mapper';
import { STATE_TABLE, TABLES_TABLE } from './meta';
import type { GtidPosition } from './position';

/** One committed Uold transaction as the streamer delivers it. */
export interface SourceTxn {
  gtid: string;
  changes: Array<{ table: string; before: Row | null; after: Row | null }>;
  receivedAt: number;
}

const MAX_ROWS_PER_STATEMENT = 1_000;

/**
 * The applier is the only component that writes to Unew. Every write is one
 * transaction holding the converted rows AND the state that describes them
 * (position, copy progress), so a crash can never separate the two.
 * Writes are idempotent (upsert / delete by the mapped key): a transaction
 * delivered twice by the binlog stream ends in the same rows.
 */
export class Applier {
  constructor(private readonly conn: mysql.Connection, private readonly tables: Map<string, MappedTable>) {}

  /** A copied chunk of one table, read at snapshot `position`, with its copy state. */
  async applyChunk(m: MappedTable, rows: Row[], lastKey: unknown[] | null, done: boolean, position: GtidPosition): Promise<void> {
    const ops: Op[] = [];
    for (const r of rows) for (const [table, out] of convertChecked(m, r)) for (const row of out) ops.push({ kind: 'upsert', table, row });
    const refresh = new Map<string, { sql: string; keys: Map<string, unknown[]> }>();
    refreshKeys(m, rows, refresh);
    await this.inTransaction(async () => {
      await this.runOps(ops);
      await this.runRefresh(refresh);
      await this.conn.query(`UPDATE ${TABLES_TABLE} SET last_key = ?, rows_copied = rows_copied + ?, done = ? WHERE source_table = ?`,
        [lastKey === null ? null : JSON.stringify(lastKey), rows.length, done ? 1 : 0, m.conv.source]);
      await this.conn.query(`UPDATE ${STATE_TABLE} SET applied_gtid = ?, updated_at = NOW(3) WHERE id = 1`, [position.toString()]);
    });
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
    const key = new Set(this.targetKey(table));
    const keep = this.preserved(table);
    for (const group of groups.values()) {
      const cols = Object.keys(group[0]);
      const updates = cols.filter((c) => !key.has(c) && !keep.has(c));
      const sql = `INSERT INTO \`${table}\` (${cols.map((c) => `\`${c}\``).join(', ')}) VALUES ?` +
        ` ON DUPLICATE KEY UPDATE ${(updates.length ? updates : [cols[0]]).map((c) => `\`${c}\` = VALUES(\`${c}\`)`).join(', ')}`;
      await this.conn.query(sql, [group.map((r) => cols.map((c) => r[c]))]);
    }
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
