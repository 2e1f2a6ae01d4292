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
  /**
   * The copy's writers, one per table copied at once (each its own Unew
   * connection): tables are written in parallel, each table's chunks in key
   * order by one writer.
   */
  writers: Applier[];
  /** The tables this copier copies, with their saved state. */
  tables: Map<string, MappedTable>;
  state: Map<string, TableState>;
  throttler: Throttler;
  chunkSize(): number;
  /** Row estimates, to copy the largest tables first when their exact counts are not known yet. */
  estimatedRows?: Map<string, number>;
  /** After each chunk is committed: rows read, rows left to the stream. */
  onChunk?(table: string, rows: number, leftToStream: number, done: boolean): void;
  /**
   * For the copy state outside chunks (bounds, floors of idle tables, see
   * Copier.run): Uold's binlog coordinate now, and a Unew writer outside any
   * chunk's transaction.
   */
  floor: { coordinate(): Promise<bigint>; writer: Applier };
}

/** Resolves after `ms`, or at once when `signal` aborts. */
function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = () => { clearTimeout(timer); signal.removeEventListener('abort', done); resolve(); };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}

/** How often an idle copier raises its tables' floor. */
const FLOOR_EVERY_MS = 1_000;

/**
 * The copier copies its tables in primary-key chunks, largest table first,
 * as many tables at once as it has writers. For each table, the next chunk
 * is read (in its own snapshot) and converted into statements while the
 * current one is written, so Uold, Node and Unew work at the same time.
 * Reads wait while the throttler says so; writes never wait for the change
 * stream (see Applier.applyChunk for why a chunk can be written at any time).
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
    const fail = (err: unknown) => { failure ??= err; inner.abort(); };

    // Largest first (rows left, exact or estimated): the long tables start at once, the short ones fill the gaps.
    const size = (n: string) => (d.state.get(n)?.rowsTotal ?? d.estimatedRows?.get(n) ?? 0) - (d.state.get(n)?.rowsCopied ?? 0);
    const pending = [...d.tables.keys()].filter((n) => !d.state.get(n)?.done).sort((a, b) => size(b) - size(a));
    const left = new Set(pending);
    // Per table: reads begun, and chunks read but not yet committed (see raiseFloor).
    const begun = new Map<string, number>();
    const busy = new Map<string, number>();
    const bump = (m: Map<string, number>, t: string, by: number) => m.set(t, (m.get(t) ?? 0) + by);
    // The state writer is one connection shared by the slots and the floor loop: one transaction at a time.
    let chain: Promise<unknown> = Promise.resolve();
    const stateWriter = <T>(fn: () => Promise<T>): Promise<T> => {
      const run = chain.then(fn);
      chain = run.catch(() => undefined);
      return run;
    };

    const read = async (name: string, m: MappedTable, after: unknown[] | null, bound: unknown[] | null): Promise<ReadyChunk> => {
      bump(begun, name, 1);
      bump(busy, name, 1);
      const c = bound === null
        ? { rows: [], lastKey: after, done: true, snapshot: 0n }
        : await on('source', `reading a chunk of ${name}`, () => readChunk(d.source, d.database, name, m.sourceKey, after, d.chunkSize(), bound));
      return { table: name, ...c, ...(await d.writers[0].prepare(m, c.rows)) };
    };

    const copyTable = async (name: string, writer: Applier) => {
      const m = d.tables.get(name)!;
      // Rows above the bound were inserted after the copy began, so after the
      // start position: the stream brings them. Fixed the first time the table
      // starts (a resumed copy keeps it): the follower relies on it.
      const saved = d.state.get(name)?.bound;
      const bound = saved !== undefined ? saved
        : await on('target', `fixing the copy bound of ${name}`, async () => {
          const max = await on('source', `reading the highest key of ${name}`, () => maxKey(d.source, d.database, name, m.sourceKey));
          return stateWriter(() => d.floor.writer.fixBound(name, max));
        });
      const readNext = (after: unknown[] | null): Promise<ReadyChunk | null> => {
        const p = (async () => ((await d.throttler.wait(inner.signal)) ? read(name, m, after, bound) : null))();
        // Why: it may fail while the current chunk is being written; it is awaited after that,
        // and must not count as unhandled meanwhile.
        p.catch(() => undefined);
        return p;
      };
      let next: Promise<ReadyChunk | null> = readNext(d.state.get(name)?.lastKey ?? null);
      try {
        for (let cycle = Date.now(); ; cycle = Date.now()) {
          const c = await next;
          if (!c) return;
          // The next chunk is read while this one is written.
          next = c.done ? Promise.resolve(null) : readNext(c.lastKey);
          try {
            const kept = await on('target', `writing a chunk of ${name}`, () => writer.applyChunk(m, c));
            d.onChunk?.(name, c.rows.length, kept, c.done);
          } finally { bump(busy, name, -1); }
          if (c.done) { left.delete(name); return; }
          if (inner.signal.aborted) return;
          // Why: a rest in proportion to the chunk's time caps the copy's share of both servers, whatever
          // their speed (gh-ost's nice-ratio); the throttle only reacts once Uold's clients already feel it.
          const rest = d.throttler.settings.niceRatio * (Date.now() - cycle);
          if (rest > 0) await sleep(rest, inner.signal);
        }
      } finally {
        // A read still in flight when the table stops (abort or failure) must not end unobserved.
        await next.then((c) => { if (c) bump(busy, name, -1); }, () => undefined);
      }
    };

    const slot = async (writer: Applier) => {
      try {
        for (let name = pending.shift(); name !== undefined && !inner.signal.aborted; name = pending.shift()) await copyTable(name, writer);
      } catch (err) { fail(err); }
    };

    /**
     * A table with no chunk read and not yet committed will only get chunks
     * read after now: its floor rises to Uold's coordinate now, and the
     * follower needs to record (and lock for) only changes after it. Without
     * this a throttled copy would keep the follower recording every change,
     * slower, and lagging further: the throttle would never lift.
     */
    const raiseFloors = async () => {
      const f = d.floor;
      while (!inner.signal.aborted && left.size) {
        await sleep(FLOOR_EVERY_MS, inner.signal);
        if (inner.signal.aborted) return;
        const before = new Map([...left].map((t) => [t, begun.get(t) ?? 0]));
        const now = await on('source', 'reading the binlog coordinate', () => f.coordinate());
        // Why the checks after reading it: a read begun before it could hold an older snapshot.
        const idle = [...before].filter(([t, n]) => left.has(t) && (busy.get(t) ?? 0) === 0 && (begun.get(t) ?? 0) === n).map(([t]) => t);
        if (idle.length && !inner.signal.aborted) await on('target', 'raising the copy floor', () => stateWriter(() => f.writer.raiseFloor(idle, now)));
      }
    };

    try {
      const floors = raiseFloors().catch(fail);
      await Promise.all(d.writers.slice(0, Math.max(1, Math.min(d.writers.length, pending.length))).map(slot));
      inner.abort(); // stops the floor loop
      await floors;
    } finally {
      signal.removeEventListener('abort', onAbort);
    }
    if (failure) throw failure;
  }
}
