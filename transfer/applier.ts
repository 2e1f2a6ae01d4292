import * as crypto from 'node:crypto';
import type * as mysql from 'mysql2/promise';
import { id, idList, inList, isLockConflict, keysetSelect } from '../lib/sql';
import { planChunk, upsertStatements, upsertTail, type ChunkPlan } from './chunk-plan';
import type { Row } from './conversion';
import { changeOps, keyOf, keyText, refreshKeys, type MappedTable, type Op } from './mapper';
import { REFRESH_TABLE, STATE_TABLE, TABLES_TABLE, TOUCHED_TABLE } from './meta';
import type { GtidPosition } from './position';
import { mayMeetChunk, type CopyWindow } from './overlap';
import { placeholderCount, type ExplainRow, type RefreshPlan } from './refresh';
import { imagoError } from '../lib/errors';

/** One committed Uold transaction as the streamer delivers it. */
export interface SourceTxn {
  gtid: string;
  changes: Array<{ table: string; before: Row | null; after: Row | null }>;
  receivedAt: number;
  /** Uold's binlog coordinate just after the transaction (coordinate.ts); 0n if unknown. */
  end: bigint;
}

/** A chunk read from Uold at a snapshot, converted and turned into statements, waiting for its turn to be written. */
export interface ReadyChunk {
  table: string;
  /** The old rows (kept until written: a conflict with the stream rebuilds the statements without some of them). */
  rows: Row[];
  /** Key of the last row read, or the previous one when the chunk is empty. */
  lastKey: unknown[] | null;
  /** The table's copy ends with this chunk. */
  done: boolean;
  /** Uold's binlog coordinate of the chunk's snapshot (coordinate.ts). */
  snapshot: bigint;
  plan: ChunkPlan;
  /** Ready upserts of `plan.fast`, or null when plan.ops go through the generic path. */
  statements: string[] | null;
}

const MAX_ROWS_PER_STATEMENT = 1_000;
const MAX_COORD = (1n << 64n) - 1n;
/** A transaction that InnoDB picked as a deadlock victim is run again (idempotent), this many times at most. */
const LOCK_RETRIES = 50;

/** The 16-byte identity of an old key in the touched log. */
export function keyHash(key: unknown[]): Buffer {
  return crypto.createHash('md5').update(keyText(key)).digest();
}

/**
 * The applier is the only component that writes to Unew. Each copy unit and
 * the follower has its own (its own connection); they coordinate through
 * InnoDB's row locks and the touched log (see applyChunk). Every write is one
 * transaction holding the converted rows AND the state that describes them,
 * so a crash can never separate the two. Writes are idempotent (upsert /
 * delete by the mapped key): a transaction applied twice ends in the same rows.
 */
export class Applier {
  constructor(private readonly conn: mysql.Connection, private readonly tables: Map<string, MappedTable>) {}

  /**
   * Session settings of a writer:
   *  - READ COMMITTED: each statement sees what the other writers committed
   *    (the touched-log read depends on it), and no gap locks;
   *  - autocommit off: statements are sent back to back, and when InnoDB
   *    rolls a transaction back as a deadlock victim, the statements already
   *    on their way must not each commit on their own (the copy state would
   *    then claim rows that were rolled back). With autocommit off they wait
   *    for our COMMIT or ROLLBACK like the rest.
   */
  async init(): Promise<void> {
    await this.conn.query('SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED');
    await this.conn.query('SET SESSION autocommit = 0');
  }

  /** Converts a chunk and builds its statements, touching nothing. */
  async prepare(m: MappedTable, rows: Row[]): Promise<{ plan: ChunkPlan; statements: string[] | null }> {
    const plan = planChunk(m, rows);
    return { plan, statements: plan.fast ? await upsertStatements(plan.fast, (t, cols) => this.tail(t, cols)) : null };
  }

  /**
   * Writes a chunk read at snapshot S, with its copy state, so that it never
   * overwrites a newer row and never undoes a delete, while the follower
   * writes the change stream beside it (see docs/data-transfer.md):
   *  - it first locks its table's row in the copy state (FOR UPDATE). The
   *    follower locks the same row (shared) at the start of every transaction
   *    that changes a key of a table still being copied, so a chunk of table
   *    T and a stream write to T never overlap: each sees all of the other
   *    committed, none of it in flight;
   *  - the follower records in the touched log, in that transaction, each old
   *    key it changed and the binlog coordinate of the change. The chunk
   *    leaves out its keys changed after S: the stream already wrote a newer
   *    image (or the delete). Every other key gets the chunk's image at S; a
   *    later change reaches it through the stream, after this commit.
   * Returns the number of rows left to the stream.
   */
  async applyChunk(m: MappedTable, c: ReadyChunk): Promise<number> {
    const table = m.conv.source;
    for (let attempt = 0; ; attempt++) {
      try {
        await this.conn.query('START TRANSACTION');
        await this.conn.query(`SELECT 1 FROM ${TABLES_TABLE} WHERE source_table = ? FOR UPDATE`, [table]);
        let { plan, statements } = c;
        let left = 0;
        const touched = await this.touchedSince(table, c.snapshot);
        if (touched.size) {
          // Only keys of this chunk matter; hashing the chunk's keys is needed only when the log names any key.
          const hashes = new Set(c.rows.map((r) => keyHash(keyOf(r, m.sourceKey)).toString('hex')));
          const skip = new Set([...touched].filter((h) => hashes.has(h)));
          if (skip.size) ({ plan, statements, left } = await this.prepareWithout(m, c.rows, skip));
        }
        const state: Array<[string, unknown[]]> = [
          // The next chunks of this table were read after this one: their snapshots are at or after it.
          [`UPDATE ${TABLES_TABLE} SET last_key = ?, rows_copied = rows_copied + ?, done = ?, floor_coord = GREATEST(floor_coord, ?) WHERE source_table = ?`,
            [c.lastKey === null ? null : JSON.stringify(c.lastKey), c.rows.length, c.done ? 1 : 0, c.snapshot, table]],
          // Once the table is copied, nothing reads its touched keys any more.
          ...(c.done ? [[`DELETE FROM ${TOUCHED_TABLE} WHERE source_table = ?`, [table]] as [string, unknown[]]] : []),
        ];
        if (statements) await this.sendAll([...statements.map((sql): [string] => [sql]), ...state]);
        else {
          await this.runOps(plan.ops);
          for (const [sql, params] of state) await this.conn.query(sql, params);
        }
        await this.conn.query('COMMIT');
        return left;
      } catch (err) {
        await this.conn.query('ROLLBACK').catch(() => undefined);
        if (!isLockConflict(err) || attempt >= LOCK_RETRIES) throw err;
        await backoff(attempt);
      }
    }
  }

  /** The chunk's statements without the rows whose old keys are in `skip` (hex key hashes), and how many those are. */
  private async prepareWithout(m: MappedTable, rows: Row[], skip: ReadonlySet<string>): Promise<{ plan: ChunkPlan; statements: string[] | null; left: number }> {
    const keep = rows.filter((r) => !skip.has(keyHash(keyOf(r, m.sourceKey)).toString('hex')));
    return { ...(await this.prepare(m, keep)), left: rows.length - keep.length };
  }

  /** Hex hashes of the old keys of `table` the stream changed after `coord`. */
  private async touchedSince(table: string, coord: bigint): Promise<Set<string>> {
    const [rows] = await this.conn.query(`SELECT HEX(key_hash) AS h FROM ${TOUCHED_TABLE} WHERE source_table = ? AND coord > ?`, [table, coord]) as [Array<{ h: string }>, unknown];
    return new Set(rows.map((r) => r.h.toLowerCase()));
  }

  /**
   * Change events of Uold transactions, in commit order, up to `position`
   * (which covers them), in one transaction with the applied position.
   *  - `touch`: old tables still being copied, with their floor: changed keys
   *    after it go to the touched log with the transaction's end coordinate
   *    (see applyChunk);
   *  - `refresh`: specs whose set-based pass has started get their per-key form.
   */
  async applyTransactions(txns: SourceTxn[], position: GtidPosition, opts: { touch: ReadonlyMap<string, CopyWindow>; refresh: ReadonlySet<string>; lagMs: number }): Promise<number> {
    const ops: Op[] = [];
    const refresh = new Map<string, { sql: string; keys: Map<string, unknown[]> }>();
    const touched = new Map<string, [string, Buffer, bigint]>();
    let events = 0;
    for (const t of txns) {
      for (const c of t.changes) {
        const m = this.tables.get(c.table);
        if (!m) continue; // a table the conversion ignores: only its position matters
        events++;
        ops.push(...changeOps(m, c.before, c.after));
        if (opts.refresh.size) refreshKeys(m, [c.before, c.after], refresh, opts.refresh);
        // Only a change that may meet a chunk still to be written is recorded (overlap.ts).
        const window = opts.touch.get(c.table);
        if (window) {
          for (const img of [c.before, c.after]) {
            if (!img) continue;
            const key = keyOf(img, m.sourceKey);
            if (!mayMeetChunk(window, t.end, key)) continue;
            const h = keyHash(key);
            // Why: a transaction of unknown coordinate counts as the newest (a chunk then leaves the key to the stream, always safe).
            touched.set(c.table + '\u0000' + h.toString('hex'), [c.table, h, t.end > 0n ? t.end : MAX_COORD]);
          }
        }
      }
    }
    const copying = [...new Set([...touched.values()].map(([t]) => t))].sort();
    await this.inTransaction(async () => {
      if (copying.length) {
        // Why first, and in table order: a chunk of a table being copied must not
        // be written while this transaction changes that table (see applyChunk);
        // one fixed order of the shared locks keeps the writers from deadlocking.
        // Every chunk still to be written has a snapshot at or after its table's
        // floor, so a change at or before the floor is never newer than a chunk:
        // it needs neither the lock nor a record (`opts.touch` holds floors read
        // earlier, never above the true ones; a follower catching up takes no lock).
        const [rows] = await this.conn.query(`SELECT source_table AS t, floor_coord AS f FROM ${TABLES_TABLE} WHERE source_table IN (?) ORDER BY source_table LOCK IN SHARE MODE`, [copying]) as [Array<{ t: string; f: number | string }>, unknown];
        const floors = new Map(rows.map((r) => [r.t, BigInt(r.f)]));
        const record = [...touched.values()].filter(([t, , coord]) => coord > (floors.get(t) ?? 0n));
        if (record.length) await this.conn.query(`INSERT INTO ${TOUCHED_TABLE} (source_table, key_hash, coord) VALUES ? ON DUPLICATE KEY UPDATE coord = GREATEST(coord, VALUES(coord))`, [record]);
      }
      // Rows, derived values and position, sent back to back (autocommit is off: all or nothing).
      // Even with no rows to write, the position is recorded: flush-to-position
      // must see Unew reach Uold's position when the last transactions were for
      // other tables or databases.
      await this.sendAll([
        ...this.opStatements(ops),
        ...[...refresh.values()].flatMap(({ sql, keys }) => [...keys.values()].map((k): [string, unknown[]] => [sql, k])),
        [`UPDATE ${STATE_TABLE} SET applied_gtid = ?, events_applied = events_applied + ?, lag_ms = ?, updated_at = NOW(3) WHERE id = 1`, [position.toString(), events, Math.round(opts.lagMs)]],
      ]);
    });
    return events;
  }

  /** The follower is alive and caught up: its heartbeat for copy units in other processes. */
  async heartbeat(lagMs: number): Promise<void> {
    await this.inTransaction(async () => { await this.conn.query(`UPDATE ${STATE_TABLE} SET lag_ms = ?, updated_at = NOW(3) WHERE id = 1`, [Math.round(lagMs)]); });
  }

  /**
   * Fixes the bound of a table's copy the first time it starts, and returns
   * the bound in force (a resumed copy keeps the first one: the follower may
   * rely on it, see overlap.ts).
   */
  async fixBound(table: string, bound: unknown[] | null): Promise<unknown[] | null> {
    let out: unknown[] | null = bound;
    await this.inTransaction(async () => {
      await this.conn.query(`UPDATE ${TABLES_TABLE} SET bound_key = ? WHERE source_table = ? AND bound_key IS NULL`, [JSON.stringify(bound), table]);
      const [rows] = await this.conn.query(`SELECT bound_key AS b FROM ${TABLES_TABLE} WHERE source_table = ?`, [table]) as [Array<{ b: string }>, unknown];
      out = JSON.parse(rows[0].b);
    });
    return out;
  }

  /** Every chunk of these tables still to be written will have a snapshot at or after `coord` (see Copier.run). */
  async raiseFloor(tables: string[], coord: bigint): Promise<void> {
    await this.inTransaction(async () => { await this.conn.query(`UPDATE ${TABLES_TABLE} SET floor_coord = GREATEST(floor_coord, ?) WHERE source_table IN (?) AND done = 0`, [coord, tables]); });
  }

  /** Drops what the touched log holds for tables whose copy is done (their chunks are all written). */
  async forgetTouched(tables: string[]): Promise<void> {
    if (tables.length) await this.inTransaction(async () => { await this.conn.query(`DELETE FROM ${TOUCHED_TABLE} WHERE source_table IN (?)`, [tables]); });
  }

  /**
   * One batch of a refresh pass: the next `limit` keys of the refreshed table
   * after `after`, recomputed by the spec's set-based statement, with the
   * pass's progress, in one transaction. Returns the last key (null: done).
   */
  async refreshBatch(plan: RefreshPlan, keyCols: string[], after: unknown[] | null, limit: number, opts: { explain?: boolean } = {}): Promise<{ lastKey: unknown[] | null; rows: number; explain?: ExplainRow[] }> {
    let result: { lastKey: unknown[] | null; rows: number; explain?: ExplainRow[] } = { lastKey: after, rows: 0 };
    let explain: ExplainRow[] | undefined;
    await this.inTransaction(async () => {
      const { keys, params } = await this.passBatch(plan, keyCols, after, limit);
      if (keys.length) {
        // The plan of a full batch, read before it runs (EXPLAIN changes nothing): see wholeTableScans.
        if (opts.explain && keys.length === limit) [explain] = await this.conn.query(`EXPLAIN ${plan.setSql}`, params) as [ExplainRow[], unknown];
        await this.conn.query(plan.setSql, params);
      }
      const done = keys.length < limit;
      const lastKey = keys.length ? keys[keys.length - 1] : after;
      await this.conn.query(`UPDATE ${REFRESH_TABLE} SET last_key = ?, rows_done = rows_done + ?, done = ? WHERE spec_id = ?`,
        [lastKey === null ? null : JSON.stringify(lastKey), keys.length, done ? 1 : 0, plan.id]);
      result = { lastKey: done ? null : lastKey, rows: keys.length, ...(explain ? { explain } : {}) };
    });
    return result;
  }

  /** The next `limit` keys of a pass's table after `after`, and its setSql's parameters for them (every ? the list). */
  private async passBatch(plan: RefreshPlan, keyCols: string[], after: unknown[] | null, limit: number): Promise<{ keys: unknown[][]; params: unknown[] }> {
    const q = keysetSelect(null, plan.table, keyCols, after, limit, null, idList(keyCols));
    const [rows] = await this.conn.query(q.sql, q.params) as [Row[], unknown];
    const keys = rows.map((r) => keyOf(r, keyCols));
    const list = keyCols.length === 1 ? keys.map((k) => k[0]) : keys;
    return { keys, params: Array.from({ length: placeholderCount(plan.setSql) }, () => list) };
  }

  /**
   * The time (ms) of a fixed CPU-bound statement on Unew's server: taken
   * before the copy and beside each refresh probe, their ratio is how much
   * the copy slows the server's statements at that moment.
   */
  async referenceMs(runs = 1): Promise<number> {
    let best = Infinity;
    for (let i = 0; i < runs; i++) {
      const t0 = process.hrtime.bigint();
      await this.conn.query('SELECT BENCHMARK(20000, MD5(?)) AS b', ['imago']); // about 7 ms on an idle core here
      best = Math.min(best, Number(process.hrtime.bigint() - t0) / 1e6);
    }
    return best;
  }

  /**
   * Times one batch of a refresh pass during the copy, for the ETA: the
   * pass's setSql on the first `limit` keys Unew already holds, rolled back
   * (nothing stays written). Milliseconds per key, or null while Unew holds
   * fewer keys than a batch.
   */
  async probeRefresh(plan: RefreshPlan, keyCols: string[], limit: number): Promise<number | null> {
    await this.conn.query('START TRANSACTION');
    try {
      const { keys, params } = await this.passBatch(plan, keyCols, null, limit);
      if (keys.length < limit) return null;
      const t0 = process.hrtime.bigint();
      await this.conn.query(plan.setSql, params);
      return Number(process.hrtime.bigint() - t0) / 1e6 / keys.length;
    } finally {
      await this.conn.query('ROLLBACK');
    }
  }

  /** Preflight: writes converted sample rows and rolls them back, so Unew's schema and strict mode judge them. */
  async probe(ops: Op[]): Promise<void> {
    await this.conn.query('START TRANSACTION');
    try { await this.runOps(ops); } finally { await this.conn.query('ROLLBACK'); }
  }

  /** Runs fn in a transaction, again when InnoDB picks it as a deadlock victim (every write here is idempotent). */
  private async inTransaction(fn: () => Promise<void>): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      await this.conn.query('START TRANSACTION');
      try {
        await fn();
        await this.conn.query('COMMIT');
        return;
      } catch (err) {
        await this.conn.query('ROLLBACK').catch(() => undefined);
        if (!isLockConflict(err) || attempt >= LOCK_RETRIES) throw err;
        await backoff(attempt);
      }
    }
  }

  /** Sends statements back to back (no round trip between them), awaits all, rethrows the first failure (the caller rolls back). */
  private async sendAll(statements: Array<[string, unknown[]?]>): Promise<void> {
    const results = await Promise.allSettled(statements.map(([sql, params]) => this.conn.query(sql, params)));
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
  }

  /**
   * The statements that run ops in their order, merging runs of the same
   * kind on the same table into multi-row statements. Order across runs is
   * kept so that a delete followed by an insert (or a key moving between
   * rows) ends as in Uold. Built first, then sent back to back.
   */
  private opStatements(all: Op[]): Array<[string, unknown[]]> {
    // Ops on different tables are independent (each target key's final state
    // depends only on its own ops, in order), so group by table, keeping order.
    const byTable = new Map<string, Op[]>();
    for (const op of all) (byTable.get(op.table) ?? byTable.set(op.table, []).get(op.table)!).push(op);
    const out: Array<[string, unknown[]]> = [];
    for (const ops of byTable.values()) this.tableOpStatements(ops, out);
    return out;
  }

  private async runOps(all: Op[]): Promise<void> {
    await this.sendAll(this.opStatements(all));
  }

  private tableOpStatements(ops: Op[], out: Array<[string, unknown[]]>): void {
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
      if (first.kind === 'delete') out.push(this.deleteStatement(first.table, [...run.values()].map((o) => (o as { key: unknown[] }).key)));
      else out.push(...this.upsertStatements(first.table, [...run.values()].map((o) => (o as { row: Row }).row)));
      i = j;
    }
  }

  private targetKey(table: string): string[] {
    for (const m of this.tables.values()) { const k = m.targetKeys.get(table); if (k) return k; }
    throw imagoError('IMAGO_INTERNAL', `no target key for ${table}`);
  }

  private preserved(table: string): Set<string> {
    const s = new Set<string>();
    for (const m of this.tables.values()) for (const c of m.conv.preserveColumns?.[table] ?? []) s.add(c);
    return s;
  }

  private tail(table: string, cols: string[]): string {
    return upsertTail(cols, this.targetKey(table), this.preserved(table));
  }

  private upsertStatements(table: string, rows: Row[]): Array<[string, unknown[]]> {
    // Rows with different column sets go in separate statements.
    const groups = new Map<string, Row[]>();
    for (const r of rows) { const sig = Object.keys(r).join('\u0000'); (groups.get(sig) ?? groups.set(sig, []).get(sig)!).push(r); }
    return [...groups.values()].map((group) => {
      const cols = Object.keys(group[0]);
      return [`INSERT INTO ${id(table)} (${idList(cols)}) VALUES ?` + this.tail(table, cols), [group.map((r) => cols.map((c) => r[c]))]];
    });
  }

  private deleteStatement(table: string, keys: unknown[][]): [string, unknown[]] {
    const where = inList(this.targetKey(table), keys);
    return [`DELETE FROM ${id(table)} WHERE ${where.sql}`, where.params];
  }
}

function backoff(attempt: number): Promise<void> {
  return new Promise((r) => setTimeout(r, Math.min(200, 5 * 2 ** attempt) * (0.5 + Math.random())));
}
