import type * as mysql from 'mysql2/promise';
import { imagoError } from '../lib/errors';
import { connect, connectPool } from '../lib/sql';
import { Applier } from './applier';
import { Copier } from './copier';
import { packCoordinate } from './coordinate';
import { Eta, workOf, type WorkItem } from './eta';
import { CopyControls } from './copy-controls';
import { on, transferError } from './failures';
import { Follower } from './follower';
import { Inspector } from './inspector';
import { createThrottler } from './load';
import type { MappedTable } from './mapper';
import { claimTables, countTables, ensureMetaTables, initState, saveRowsTotals } from './meta';
import { validateTransferOptions, type TransferInput, type TransferOptions } from './options';
import { GtidPosition } from './position';
import { preflight, type PreflightResult } from './preflight';
import { Streamer } from './streamer';

export interface TableProgress { table: string; rowsCopied: number; rowsTotal: number; done: boolean }

export interface TransferProgress {
  phase: 'starting' | 'copy' | 'following' | 'stopped';
  /** Every table of the conversion, whoever copies it (this transfer or a copy unit). */
  tables: TableProgress[];
  rowsCopied: number;
  rowsTotal: number;
  /** Rows per second over the ETA's trailing window. */
  rate: number;
  /** Seconds until the copy (and the refresh passes after it) is done; null before a pace is known, 0 once following. */
  etaSeconds: number | null;
  /** Rows of refreshed tables recomputed by the set-based passes after the copy, and how many there are (estimated until they start). */
  refreshRowsDone: number;
  refreshRowsTotal: number;
  /** Uold GTID position applied to Unew (also stored in Unew). */
  appliedPosition: string;
  /** Uold's own latest position, as last sampled. */
  sourcePosition: string;
  /** Age of the oldest received-but-unapplied transaction (0 when caught up). */
  lagMs: number;
  /** Row change events received but not yet applied. */
  lagEvents: number;
  eventsApplied: number;
  /** Rows of this transfer's chunks left to the change stream, which had written a newer version. */
  rowsLeftToStream: number;
  throttleReason: string | null;
  /** Uold's load as last sampled by the throttle: Threads_running, and its clients' p99 (ms) at the ingress interceptors (null: unknown). */
  uoldThreadsRunning: number | null;
  uoldP99Ms: number | null;
  chunkSize: number;
  /** What the operator should know and the transfer cannot fix itself (e.g. a refresh statement that scans a table per batch). */
  warnings: string[];
}

/**
 * Before the refresh passes begin, a refreshed row is guessed to cost this share of a copied row of its
 * producers (measured on the auction at 600,000 rows: 200,000 refreshed rows in about 1 s after a copy
 * at 40,000 rows/s; on small copies it varied from 0.3 to 1.5). Once a pass has run for a second its
 * own pace replaces the guess; a batch timed during the copy replaces it before that.
 */
const REFRESH_WEIGHT = 0.2;

/**
 * The data transfer: preflight, start capturing Uold's binlog, copy the
 * tables (all of them, or those of `copyTables`; copy units may copy the
 * rest beside it) in primary-key chunks through the conversion, run the
 * set-based refresh passes, and keep following Uold until aborted. The flow
 * is a straight script; see docs/data-transfer.md for why a chunk written at
 * any time beside the change stream is correct.
 */
export class Transfer extends CopyControls {
  readonly options: Readonly<TransferOptions>;
  private phase: TransferProgress['phase'] = 'starting';
  private follower?: Follower;
  private mapped?: Map<string, MappedTable>;
  private refreshPlans: PreflightResult['refresh'] = [];
  private weights = new Map<string, number>();
  /** InnoDB's row estimates: a table's size for the ETA until its exact count lands. */
  private estimatedRows = new Map<string, number>();
  private readonly local = new Map<string, TableProgress>();
  private rowsLeftToStream = 0;
  /** The copy's pace (weighted rows), and the refresh passes' own once they run: the two differ several-fold. */
  private readonly eta = new Eta();
  private readonly refreshEta = new Eta({ minWindowMs: 3_000, windowShare: 1 / 3 });
  private etaTimer?: NodeJS.Timeout;

  constructor(input: TransferInput) {
    const options = validateTransferOptions(input);
    super(options);
    this.options = options;
  }


  progress(): TransferProgress {
    const tables = this.tableProgress();
    const rowsCopied = tables.reduce((s, t) => s + t.rowsCopied, 0);
    const rowsTotal = tables.reduce((s, t) => s + Math.max(t.rowsTotal, t.rowsCopied), 0);
    const refresh = this.refreshProgress(tables);
    const f = this.follower;
    const copyWork = this.copyWork(tables);
    const rate = this.eta.rate();
    const eta = this.phase === 'copy' ? this.secondsLeft(copyWork.total, refresh) : this.phase === 'starting' ? null : 0;
    const refreshDone = refresh.reduce((a, r) => a + r.done, 0);
    // Rows per second: the copy's work pace in rows of its average weight so far.
    const avgWeight = rowsCopied > 0 ? copyWork.done / rowsCopied : 1;
    return {
      phase: this.phase, tables, rowsCopied, rowsTotal,
      rate: rate === null || avgWeight === 0 ? 0 : Math.round(rate / avgWeight),
      // Tenths: a copy of a few seconds has an ETA under one.
      etaSeconds: eta === null ? null : Math.round(eta * 10) / 10,
      refreshRowsDone: refreshDone, refreshRowsTotal: refresh.reduce((a, r) => a + r.total, 0),
      appliedPosition: f?.applied.toString() ?? '', sourcePosition: this.throttler?.sourcePosition ?? '',
      lagMs: f?.lagMs() ?? 0, lagEvents: f?.queuedEvents ?? 0, eventsApplied: f?.eventsApplied ?? 0,
      rowsLeftToStream: this.rowsLeftToStream,
      throttleReason: this.phase === 'copy' ? (this.throttler?.reason() ?? (this.paused ? 'paused by operator' : null)) : null,
      uoldThreadsRunning: this.throttler?.threadsRunning ?? null, uoldP99Ms: this.throttler?.p99Ms ?? null,
      chunkSize: this.chunkSize,
      warnings: [...(f?.warnings ?? [])],
    };
  }

  /**
   * The copy's time left at its pace, plus the refresh passes' at theirs: measured once a pass has run for
   * a second; before that, a batch of each pass timed during the copy (Follower.probeRefresh); before
   * every pass has been timed, guessed from the copy's pace and REFRESH_WEIGHT. Null until the copy has a pace.
   */
  private secondsLeft(copyTotal: number, refresh: WorkItem[]): number | null {
    const copy = this.eta.seconds(copyTotal);
    const copyRate = this.eta.rate();
    if (copy === null || copyRate === null) return null;
    const work = workOf(refresh);
    const left = Math.max(0, work.total - work.done);
    if (left === 0) return copy;
    const own = this.refreshEta.rate();
    if (own !== null && own > 0) return copy + left / own;
    // Before the passes run: each pass's rows left at the cost of a batch timed during the copy, when every pass has one.
    const probes = this.refreshPlans.map((p) => this.follower?.refreshMsPerKey(p.id));
    if (probes.every((ms): ms is number => ms !== undefined)) {
      return copy + refresh.reduce((a, r, i) => a + Math.max(0, r.total - r.done) * probes[i] / 1000, 0);
    }
    return copyRate > 0 ? copy + left / copyRate : null;
  }

  private tableProgress(): TableProgress[] {
    const out: TableProgress[] = [];
    for (const name of this.mapped?.keys() ?? []) {
      const mine = this.local.get(name);
      const meta = this.follower?.tableStates.get(name);
      const rowsCopied = Math.max(mine?.rowsCopied ?? 0, meta?.rowsCopied ?? 0);
      const rowsTotal = mine?.rowsTotal || meta?.rowsTotal || 0;
      out.push({ table: name, rowsCopied, rowsTotal: meta?.done || mine?.done ? rowsCopied : rowsTotal, done: !!(mine?.done || meta?.done) });
    }
    return out;
  }

  /**
   * Per refresh pass: rows recomputed and to recompute (its own count once
   * done, else the rows of the tables producing into it), and the weight of
   * one: REFRESH_WEIGHT of a row of those tables (a pass rewrites their rows).
   */
  private refreshProgress(tables: TableProgress[]): Array<WorkItem> {
    return this.refreshPlans.map((p) => {
      const s = this.follower?.refreshStates.get(p.id);
      const producers = [...this.mapped!.values()].filter((m) => m.targetKeys.has(p.table)).map((m) => m.conv.source);
      const est = tables.filter((t) => producers.includes(t.table)).reduce((a, t) => a + Math.max(this.sizeOf(t), t.rowsCopied), 0);
      const weight = producers.length ? producers.reduce((a, t) => a + (this.weights.get(t) ?? 1), 0) / producers.length : 1;
      const done = s?.rowsDone ?? 0;
      return { done, total: s?.done ? done : Math.max(est, done), weight: weight * REFRESH_WEIGHT };
    });
  }

  /** The copy's work: each table's rows weighted by their size (the refresh passes are paced apart: secondsLeft). */
  private copyWork(tables: TableProgress[]): { done: number; total: number } {
    return workOf(tables.map((t) => ({ done: t.rowsCopied, total: Math.max(this.sizeOf(t), t.rowsCopied), weight: this.weights.get(t.table) ?? 1 })));
  }

  /**
   * A table's rows for the ETA: the exact count once it landed (or the rows copied once done), InnoDB's
   * estimate until then. Without it the work left looked like nothing while the counts ran, and the
   * first estimates (the count of a large table takes seconds) were far too short.
   */
  private sizeOf(t: TableProgress): number {
    return t.done || t.rowsTotal > 0 ? t.rowsTotal : (this.estimatedRows.get(t.table) ?? 0);
  }

  /** Runs until `signal` aborts (resolves) or a failure (rejects with a registry error). Resumes from Unew's saved state. */
  async run(signal: AbortSignal): Promise<void> {
    const o = this.options;
    const source = connectPool(o.source.url, { database: o.source.database, connectionLimit: o.parallelTables + 3 });
    let target: mysql.Connection | undefined;
    const writers: mysql.Connection[] = [];
    let streamer: Streamer | undefined;
    const inner = new AbortController();
    const onAbort = () => inner.abort();
    signal.addEventListener('abort', onAbort);
    try {
      target = await on('target', o.target.database, () => connect(o.target.url, { database: o.target.database }));
      await on('source', o.source.database, () => source.query('SELECT 1'));
      const pre = await on('target', 'preflight', () => preflight(o, source, target!));
      const inspector = new Inspector(source, o.source.database);
      this.mapped = pre.tables;
      this.refreshPlans = pre.refresh;

      // Capture starts before the copy: the start position is taken first, so
      // every change after it reaches Unew either through a chunk or the stream.
      await on('target', 'creating the transfer state', () => ensureMetaTables(target!));
      const startGtid = await on('source', 'reading the start position', () => inspector.gtidBinlogPos());
      const state = await on('target', 'writing the transfer state', () => initState(target!, pre.sourceId, o.conversion.name, startGtid, [...pre.tables.keys()], pre.refresh));
      const mine = o.copyTables === 'all' ? [...pre.tables.keys()] : o.copyTables;
      const unknown = mine.filter((n) => !pre.tables.has(n));
      if (unknown.length) throw imagoError('IMAGO_OPTIONS_INVALID', `copyTables names table(s) ${unknown.join(', ')} that conversion '${o.conversion.name}' does not convert`);
      const floor = packCoordinate(await on('source', 'reading the binlog coordinate', () => inspector.binlogCoordinate()));
      await on('target', 'claiming the tables to copy', () => claimTables(target!, mine, 'transfer', floor));
      // To order the tables and weigh their rows for the ETA (InnoDB's estimates; exact counts follow).
      const estimates = await inspector.tableEstimates().catch(() => new Map<string, { rows: number; rowBytes: number }>());
      for (const n of pre.tables.keys()) this.weights.set(n, 64 + (estimates.get(n)?.rowBytes ?? 0));
      for (const [n, e] of estimates) this.estimatedRows.set(n, e.rows);

      const followerApplier = new Applier(target, pre.tables);
      await on('target', 'preparing the follower', () => followerApplier.init());
      // Before the copy starts: the server's pace with nothing of ours running (see Follower.probeRefresh).
      const referenceMs = await followerApplier.referenceMs(3).catch(() => null);
      streamer = new Streamer({ url: o.source.url, database: o.source.database, tables: [...pre.tables.keys()], serverId: o.serverId }, state.appliedGtid);
      // Why: the follower listens before the stream starts; a transaction delivered in between would be lost.
      const follower = new Follower({
        applier: followerApplier, conn: target, streamer, tables: pre.tables, refresh: pre.refresh,
        maxApplyBatch: o.maxApplyBatch, refreshBatch: o.refreshBatch, referenceMs,
        applied: GtidPosition.parse(state.appliedGtid), eventsApplied: state.eventsApplied,
      });
      this.follower = follower;
      this.throttler = createThrottler(inspector, o.ingress, this.throttle, () => follower.lagMs());
      this.throttler.paused = this.paused;
      this.throttler.start();

      const todo = mine.filter((n) => !state.tables.get(n)?.done);
      for (const n of mine) {
        const s = state.tables.get(n);
        this.local.set(n, { table: n, rowsCopied: s?.rowsCopied ?? 0, rowsTotal: s?.rowsTotal ?? 0, done: !!s?.done });
      }
      this.phase = 'copy';
      this.etaTimer = setInterval(() => this.noteEta(), 500);

      // The copy starts at once, beside the stream: a chunk does not depend on
      // how far the stream got (see Applier.applyChunk). Either failing stops both.
      const stopAll = (err: unknown) => { inner.abort(); throw err; };
      const copy = (async () => {
        if (todo.length === 0) return;
        const n = Math.min(o.parallelTables, todo.length);
        for (let i = 0; i <= n; i++) writers.push(await on('target', 'opening a copy writer', () => connect(o.target.url, { database: o.target.database, rawWhenNoValues: true })));
        const appliers = writers.map((w) => new Applier(w, pre.tables));
        for (const a of appliers) await on('target', 'preparing a copy writer', () => a.init());
        await new Copier({
          source, database: o.source.database, writers: appliers.slice(1),
          tables: new Map(todo.map((t) => [t, pre.tables.get(t)!])), state: state.tables,
          throttler: this.throttler!, chunkSize: () => this.chunkSize,
          estimatedRows: new Map([...estimates].map(([t, e]) => [t, e.rows])),
          floor: { coordinate: async () => packCoordinate(await inspector.binlogCoordinate()), writer: appliers[0] },
          onChunk: (table, rows, kept, done) => {
            const p = this.local.get(table)!;
            p.rowsCopied += rows;
            if (done) { p.done = true; follower.poke(); }
            this.rowsLeftToStream += kept;
          },
        }).run(inner.signal);
      })().catch(stopAll);
      const following = (async () => {
        await streamer!.start();
        await follower.run(inner.signal);
      })().catch(stopAll);
      const counting = this.countRows(inspector, mine, state.tables, inner.signal);
      const watchPhase = (async () => {
        while (!inner.signal.aborted && !follower.copyComplete) await new Promise((r) => setTimeout(r, 50));
        if (follower.copyComplete) { this.phase = 'following'; this.noteEta(); }
      })();
      const results = await Promise.allSettled([copy, following, counting, watchPhase]);
      const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failed) throw failed.reason;
    } catch (err) {
      throw transferError(err, 'target', 'transfer');
    } finally {
      this.phase = 'stopped';
      signal.removeEventListener('abort', onAbort);
      inner.abort();
      if (this.etaTimer) clearInterval(this.etaTimer);
      this.throttler?.stop();
      streamer?.stop();
      for (const w of writers) await w.end().catch(() => undefined);
      await target?.end().catch(() => undefined);
      await source.end().catch(() => undefined);
    }
  }

  private noteEta(): void {
    if (this.phase !== 'copy' && this.phase !== 'following') return;
    const tables = this.tableProgress();
    const now = Date.now();
    const copied = this.copyWork(tables).done;
    // Each pace is taken from its first row on: connecting and counting are not the copy's pace.
    if (copied > 0) this.eta.note(now, copied);
    const refreshed = workOf(this.refreshProgress(tables)).done;
    if (refreshed > 0) this.refreshEta.note(now, refreshed);
  }

  /**
   * Exact row counts of the tables this transfer copies, in the background
   * (as gh-ost's exact row count: the copy does not wait for them), kept in
   * Unew so copy units and a resumed transfer reuse them. Only estimates for
   * progress: a failed count is not a failed transfer.
   */
  private async countRows(inspector: Inspector, names: string[], saved: Map<string, { rowsTotal: number | null }>, signal: AbortSignal): Promise<void> {
    const counted = await countTables(inspector, names.filter((n) => saved.get(n)?.rowsTotal == null), signal, (n, rows) => {
      const p = this.local.get(n);
      if (p && !p.done) p.rowsTotal = rows;
    });
    await saveRowsTotals(this.options.target, counted);
  }
}

/** Same as `new Transfer(options)`. */
export function createTransfer(options: TransferInput): Transfer {
  return new Transfer(options);
}
