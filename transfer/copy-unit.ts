import type * as mysql from 'mysql2/promise';
import { imagoError } from '../lib/errors';
import { connect, connectPool } from '../lib/sql';
import { Applier } from './applier';
import { Copier } from './copier';
import { packCoordinate } from './coordinate';
import { CopyControls } from './copy-controls';
import { on, transferError } from './failures';
import { Inspector } from './inspector';
import { createThrottler } from './load';
import { mapTable, type MappedTable } from './mapper';
import { claimTables, countTables, expectSameTransfer, loadState, readFollowerLag, saveRowsTotals, type SavedState } from './meta';
import { validateCopyUnitOptions, type CopyUnitInput, type CopyUnitOptions } from './options';
import type { TableProgress } from './transfer';

export interface CopyUnitProgress {
  phase: 'waiting' | 'copy' | 'done' | 'stopped';
  tables: TableProgress[];
  rowsCopied: number;
  rowsTotal: number;
  rowsLeftToStream: number;
  throttleReason: string | null;
  chunkSize: number;
}

/**
 * A copy unit: the copy of some of the tables, as its own unit of work —
 * its own connections to Uold and Unew, its state in Unew's meta tables
 * (resumable after a crash exactly as the transfer's own copy), beside one
 * follower (a Transfer, possibly with `copyTables: []`) that applies the
 * change stream. Several units of one upgrade copy disjoint sets of tables
 * at once; each table is claimed by one copier only.
 *
 * It waits for the follower's state (the start position must be recorded
 * before any chunk is read), copies its tables, and resolves. Its throttle
 * watches Uold like the follower's, and the follower's lag as the follower
 * records it in Unew (a silent follower counts as lagging).
 */
export class CopyUnit extends CopyControls {
  readonly options: Readonly<CopyUnitOptions>;
  private phase: CopyUnitProgress['phase'] = 'waiting';
  private readonly tables = new Map<string, TableProgress>();
  private rowsLeftToStream = 0;
  private followerLag = 0;

  constructor(input: CopyUnitInput) {
    const options = validateCopyUnitOptions(input);
    super(options);
    this.options = options;
  }


  progress(): CopyUnitProgress {
    const tables = [...this.tables.values()].map((t) => ({ ...t }));
    return {
      phase: this.phase, tables,
      rowsCopied: tables.reduce((s, t) => s + t.rowsCopied, 0),
      rowsTotal: tables.reduce((s, t) => s + Math.max(t.rowsTotal, t.rowsCopied), 0),
      rowsLeftToStream: this.rowsLeftToStream,
      throttleReason: this.phase === 'copy' ? this.throttler?.reason() ?? null : null,
      chunkSize: this.chunkSize,
    };
  }

  /** Copies the unit's tables; resolves when they are done (or `signal` aborts), rejects with a registry error. */
  async run(signal: AbortSignal): Promise<void> {
    const o = this.options;
    const source = connectPool(o.source.url, { database: o.source.database, connectionLimit: o.parallelTables + 2 });
    let control: mysql.Connection | undefined;
    const writers: mysql.Connection[] = [];
    let lagTimer: NodeJS.Timeout | undefined;
    try {
      const inspector = new Inspector(source, o.source.database);
      const mapped = new Map<string, MappedTable>();
      for (const name of o.tables) {
        const tc = o.conversion.tables.find((t) => t.source === name);
        if (!tc) throw imagoError('IMAGO_OPTIONS_INVALID', `copy unit: table '${name}' is not converted by '${o.conversion.name}'`);
        const key = await on('source', `reading the primary key of ${name}`, () => inspector.primaryKey(name));
        if (key.length === 0) throw imagoError('TRANSFER_NO_PRIMARY_KEY', `Uold table '${o.source.database}.${name}' has no primary key`);
        mapped.set(name, mapTable(tc, key));
      }
      control = await on('target', o.target.database, () => connect(o.target.url, { database: o.target.database }));
      const state = await this.waitForState(control, signal);
      if (!state) return;
      expectSameTransfer(state, await on('source', 'identifying Uold', () => inspector.sourceId()), o.conversion.name);
      const owner = `unit:${[...o.tables].sort().join(',')}`;
      const floor = packCoordinate(await on('source', 'reading the binlog coordinate', () => inspector.binlogCoordinate()));
      await on('target', 'claiming the tables to copy', () => claimTables(control!, o.tables, owner, floor));
      for (const n of o.tables) {
        const s = state.tables.get(n);
        this.tables.set(n, { table: n, rowsCopied: s?.rowsCopied ?? 0, rowsTotal: s?.rowsTotal ?? 0, done: !!s?.done });
      }

      // The follower's lag, as it records it in Unew: a follower silent for long counts as that late.
      const readLag = async () => {
        const l = await readFollowerLag(control!).catch(() => null);
        this.followerLag = l ? Math.max(l.lagMs, l.silentMs - 2_000) : Number.MAX_SAFE_INTEGER;
      };
      await readLag();
      lagTimer = setInterval(() => { void readLag(); }, 500);
      this.throttler = createThrottler(inspector, o.ingress, this.throttle, () => this.followerLag);
      this.throttler.paused = this.paused;
      this.throttler.start();

      const todo = o.tables.filter((n) => !state.tables.get(n)?.done);
      const counting = countTables(inspector, todo.filter((n) => state.tables.get(n)?.rowsTotal == null), signal, (n, rows) => { this.tables.get(n)!.rowsTotal = rows; })
        .then((counts) => saveRowsTotals(o.target, counts));
      this.phase = 'copy';
      if (todo.length) {
        const n = Math.min(o.parallelTables, todo.length);
        for (let i = 0; i <= n; i++) writers.push(await on('target', 'opening a copy writer', () => connect(o.target.url, { database: o.target.database, rawWhenNoValues: true })));
        const appliers = writers.map((w) => new Applier(w, mapped));
        for (const a of appliers) await on('target', 'preparing a copy writer', () => a.init());
        await new Copier({
          source, database: o.source.database, writers: appliers.slice(1),
          tables: new Map(todo.map((t) => [t, mapped.get(t)!])), state: state.tables,
          throttler: this.throttler, chunkSize: () => this.chunkSize,
          estimatedRows: new Map([...(await inspector.tableEstimates().catch(() => new Map<string, { rows: number }>()))].map(([t, e]) => [t, e.rows])),
          floor: { coordinate: async () => packCoordinate(await inspector.binlogCoordinate()), writer: appliers[0] },
          onChunk: (table, rows, kept, done) => {
            const p = this.tables.get(table)!;
            p.rowsCopied += rows;
            if (done) p.done = true;
            this.rowsLeftToStream += kept;
          },
        }).run(signal);
      }
      await counting.catch(() => undefined);
      if (!signal.aborted) this.phase = 'done';
    } catch (err) {
      throw transferError(err, 'target', 'copy unit');
    } finally {
      if (this.phase !== 'done') this.phase = 'stopped';
      if (lagTimer) clearInterval(lagTimer);
      this.throttler?.stop();
      for (const w of writers) await w.end().catch(() => undefined);
      await control?.end().catch(() => undefined);
      await source.end().catch(() => undefined);
    }
  }

  /** The follower's state, once it exists (null when aborted first). */
  private async waitForState(conn: mysql.Connection, signal: AbortSignal): Promise<SavedState | null> {
    const deadline = Date.now() + this.options.waitForStateMs;
    for (;;) {
      const state = await loadState(conn).catch((err) => {
        if ((err as { code?: string }).code === 'ER_NO_SUCH_TABLE') return null;
        throw transferError(err, 'target', 'reading the transfer state');
      });
      if (state) return state;
      if (signal.aborted) return null;
      if (Date.now() >= deadline) throw imagoError('TRANSFER_STATE_MISSING', `${this.options.target.database}: no transfer state after ${this.options.waitForStateMs} ms`);
      await new Promise((r) => setTimeout(r, 250));
    }
  }
}

/** Same as `new CopyUnit(options)`. */
export function createCopyUnit(options: CopyUnitInput): CopyUnit {
  return new CopyUnit(options);
}
