import type * as mysql from 'mysql2/promise';
import { keysetSelect, openSnapshot, qualified, idList } from '../lib/sql';
import type { Applier, ReadyChunk } from './applier';
import type { Row } from './conversion';
import { packCoordinate } from './coordinate';
import { on } from './failures';
import { keyOf, type MappedTable } from './mapper';
import type { TableState } from './meta';
import type { Throttler } from './throttler';

/**
 * Reads the next chunk of a table (by primary key, after `after`, at most
 * `limit` rows, none above `upTo`) in its own consistent snapshot, and the
 * binlog coordinate that snapshot reflects. No BINLOG_GTID_POS: the
 * coordinate is compared with the change stream's own coordinates.
 */
export async function readChunk(pool: mysql.Pool, database: string, table: string, keyCols: string[], after: unknown[] | null, limit: number, upTo: unknown[] | null): Promise<{ rows: Row[]; lastKey: unknown[] | null; done: boolean; snapshot: bigint }> {
  const conn = await pool.getConnection();
  try {
    const at = await openSnapshot(conn);
    try {
      const q = keysetSelect(database, table, keyCols, after, limit, upTo);
      const [rows] = await conn.query(q.sql, q.params) as [Row[], unknown];
      const lastKey = rows.length ? keyOf(rows[rows.length - 1], keyCols) : after;
      return { rows, lastKey, done: rows.length < limit, snapshot: packCoordinate(at) };
    } finally {
      await conn.query('COMMIT');
    }
  } finally {
    conn.release();
  }
}

/** The highest key of a table now (null when empty): the copy stops there, so appends cannot make it chase forever. */
export async function maxKey(pool: mysql.Pool | mysql.Connection, database: string, table: string, keyCols: string[]): Promise<unknown[] | null> {
  const [rows] = await pool.query(`SELECT ${idList(keyCols)} FROM ${qualified(database, table)} ORDER BY ${keyCols.map((c) => `${idList([c])} DESC`).join(', ')} LIMIT 1`) as [Row[], unknown];
  return rows.length ? keyOf(rows[0], keyCols) : null;
}

export interface CopierDeps {
  source: mysql.Pool;
  database: string;
  /** The copy's own writer (its own Unew connection). */
  writer: Applier;
  /** The tables this copier copies, with their saved state. */
  tables: Map<string, MappedTable>;
  state: Map<string, TableState>;
  throttler: Throttler;
  chunkSize(): number;
  parallelTables: number;
  /** After each chunk is committed: rows read, rows left to the stream. */
  onChunk?(table: string, rows: number, leftToStream: number, done: boolean): void;
  /** Uold's binlog coordinate now, to raise the floor while the copy is idle (see Copier.run). */
  raiseFloor?: { coordinate(): Promise<bigint> };
}

/** How often an idle copier raises its tables' floor. */
const FLOOR_EVERY_MS = 1_000;

/**
 * The copier copies its tables in primary-key chunks: up to parallelTables
 * tables are read at once (largest first), each chunk in its own snapshot,
 * converted and turned into statements as soon as it arrives, and written
 * by one writer in arrival order (per table in key order). Reads wait while
 * the throttler says so; writes never wait for the change stream (see
 * Applier.applyChunk for why a chunk can be written at any time).
 * Resolves when every table is copied, or when `signal` aborts.
 */
export class Copier {
  constructor(private readonly d: CopierDeps) {}

  async run(signal: AbortSignal): Promise<void> {
    const d = this.d;
    const inner = new AbortController();
    const onAbort = () => inner.abort();
    signal.addEventListener('abort', onAbort);
    let failure: unknown;
    const fail = (err: unknown) => { failure ??= err; inner.abort(); poke(); };
    const queue: ReadyChunk[] = [];
    const maxQueued = d.parallelTables + 1;
    let waiters: Array<() => void> = [];
    const poke = () => { const w = waiters; waiters = []; for (const f of w) f(); };
    const nap = (ms: number) => new Promise<void>((r) => { waiters.push(r); setTimeout(r, ms); });

    // Largest first: the long tables start at once, the short ones fill the gaps.
    const pending = [...d.tables.keys()].filter((n) => !d.state.get(n)?.done)
      .sort((a, b) => (d.state.get(b)?.rowsTotal ?? 0) - (d.state.get(a)?.rowsTotal ?? 0));
    let readersLeft = Math.min(d.parallelTables, pending.length);
    let readsStarted = 0;
    let readsInFlight = 0;
    let lastFloor = Date.now();
    const active = new Set(pending);

    const readTable = async (name: string) => {
      const m = d.tables.get(name)!;
      let after = d.state.get(name)?.lastKey ?? null;
      // Correct because every change after the start position is applied from the
      // stream anyway; re-read after a restart (a higher bound only copies more).
      const bound = await on('source', `reading the highest key of ${name}`, () => maxKey(d.source, d.database, name, m.sourceKey));
      for (;;) {
        if (!(await d.throttler.wait(inner.signal))) return;
        while (queue.length >= maxQueued && !inner.signal.aborted) await nap(50);
        if (inner.signal.aborted) return;
        let chunk: Omit<ReadyChunk, 'plan' | 'statements'>;
        if (bound === null) chunk = { table: name, rows: [], lastKey: after, done: true, snapshot: 0n };
        else {
          readsStarted++;
          readsInFlight++;
          try {
            const c = await on('source', `reading a chunk of ${name}`, () => readChunk(d.source, d.database, name, m.sourceKey, after, d.chunkSize(), bound));
            chunk = { table: name, ...c };
          } finally { readsInFlight--; }
        }
        const prepared = await d.writer.prepare(m, chunk.rows);
        queue.push({ ...chunk, ...prepared });
        poke();
        if (chunk.done) return;
        after = chunk.lastKey;
      }
    };
    const reader = async () => {
      try {
        for (let name = pending.shift(); name !== undefined && !inner.signal.aborted; name = pending.shift()) await readTable(name);
      } catch (err) { fail(err); } finally { readersLeft--; poke(); }
    };
    /**
     * While no chunk is read or waiting (throttled, or between tables), every
     * chunk still to come will be read after now: the floor of the tables of
     * this copier rises to Uold's coordinate now, and the follower needs to
     * record (and lock for) only changes after it. Without this a throttled
     * copy would keep the follower recording every change, slower, and
     * lagging further: the throttle would never lift.
     */
    const raiseFloor = async () => {
      lastFloor = Date.now();
      if (!d.raiseFloor || active.size === 0) return;
      const epoch = readsStarted;
      const now = await on('source', 'reading the binlog coordinate', () => d.raiseFloor!.coordinate());
      // Why the checks after reading it: a read begun before it could hold an older snapshot.
      if (readsInFlight > 0 || readsStarted !== epoch || queue.length > 0) return;
      await on('target', 'raising the copy floor', () => d.writer.raiseFloor([...active], now));
    };
    const writer = async () => {
      try {
        while (!inner.signal.aborted) {
          const c = queue.shift();
          if (!c) {
            if (readersLeft === 0) return;
            if (Date.now() - lastFloor >= FLOOR_EVERY_MS) await raiseFloor();
            await nap(100);
            continue;
          }
          poke();
          const m = d.tables.get(c.table)!;
          const left = await on('target', `writing a chunk of ${c.table}`, () => d.writer.applyChunk(m, c));
          d.onChunk?.(c.table, c.rows.length, left, c.done);
          if (c.done) active.delete(c.table);
        }
      } catch (err) { fail(err); }
    };
    try {
      await Promise.all([writer(), ...Array.from({ length: readersLeft }, reader)]);
    } finally {
      signal.removeEventListener('abort', onAbort);
    }
    if (failure) throw failure;
  }
}
