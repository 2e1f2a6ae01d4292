import * as mysql from 'mysql2/promise';
import { explainDbError, mysqlOptionsOf } from '../lib/db-tls';
import { imagoError } from '../lib/errors';
import { Streamer, type StreamedTxn } from '../interceptors/egress/streamer';
import { Applier, type PreparedChunk } from './applier';
import { maxKey, readChunk, type Chunk } from './copier';
import { Inspector } from './inspector';
import type { MappedTable } from './mapper';
import { ensureMetaTables, initState } from './meta';
import { validateThrottlePatch, validateTransferOptions, type ThrottleSettings, type TransferInput, type TransferOptions } from './options';
import { GtidPosition } from './position';
import { preflight } from './preflight';
import { Throttler } from './throttler';

export interface TableProgress { table: string; rowsCopied: number; rowsTotal: number; done: boolean }

export interface TransferProgress {
  phase: 'starting' | 'copy' | 'following' | 'stopped';
  tables: TableProgress[];
  rowsCopied: number;
  rowsTotal: number;
  /** Rows per second over the last few seconds of copy. */
  rate: number;
  etaSeconds: number | null;
  /** Uold GTID position applied to Unew (also stored in Unew). */
  appliedPosition: string;
  /** Uold's own latest position, as last sampled. */
  sourcePosition: string;
  /** Age of the oldest received-but-unapplied transaction (0 when caught up). */
  lagMs: number;
  /** Row change events received but not yet applied. */
  lagEvents: number;
  eventsApplied: number;
  throttleReason: string | null;
  chunkSize: number;
}

/** A chunk read and already converted into its statements, waiting for its turn to be written. */
type ReadyChunk = Omit<Chunk, 'rows'> & { prepared: PreparedChunk };

/**
 * The data transfer: preflight, start capturing Uold's binlog, copy every
 * table in primary-key chunks through the conversion, then keep following
 * Uold until aborted. The flow is a straight script; see docs/data-transfer.md
 * for why interleaving chunks with the change stream at each chunk's snapshot
 * position is correct under concurrent writes.
 */
export class Transfer {
  readonly options: Readonly<TransferOptions>;
  private phase: TransferProgress['phase'] = 'starting';
  private chunkSize: number;
  private throttle: ThrottleSettings;
  private paused = false;
  private readonly queue: StreamedTxn[] = [];
  private queuedEvents = 0;
  private applied = new GtidPosition();
  private eventsApplied = 0;
  private readonly tableProgress = new Map<string, TableProgress>();
  private rateWindow: Array<{ at: number; rows: number }> = [];
  private throttler?: Throttler;
  private streamer?: Streamer;
  private wake?: () => void;

  constructor(input: TransferInput) {
    this.options = validateTransferOptions(input);
    this.chunkSize = this.options.chunkSize;
    this.throttle = { ...this.options.throttle };
  }

  pause(): void { this.paused = true; if (this.throttler) this.throttler.paused = true; }
  resume(): void { this.paused = false; if (this.throttler) this.throttler.paused = false; }
  setChunkSize(n: number): void {
    if (!Number.isInteger(n) || n < 1 || n > 100_000) throw imagoError('IMAGO_OPTIONS_INVALID', `chunkSize must be an integer in 1..100000, got ${n}`);
    this.chunkSize = n;
  }
  setThrottle(patch: Partial<ThrottleSettings>): void {
    this.throttle = { ...this.throttle, ...validateThrottlePatch(patch) };
    if (this.throttler) this.throttler.settings = this.throttle;
  }

  progress(): TransferProgress {
    const tables = [...this.tableProgress.values()].map((t) => ({ ...t }));
    const rowsCopied = tables.reduce((s, t) => s + t.rowsCopied, 0);
    const rowsTotal = tables.reduce((s, t) => s + Math.max(t.rowsTotal, t.rowsCopied), 0);
    const w = this.rateWindow;
    const rate = w.length >= 2 && w[w.length - 1].at > w[0].at ? (w[w.length - 1].rows - w[0].rows) / ((w[w.length - 1].at - w[0].at) / 1000) : 0;
    return {
      phase: this.phase, tables, rowsCopied, rowsTotal, rate: Math.round(rate),
      etaSeconds: this.phase === 'copy' && rate > 0 ? Math.round((rowsTotal - rowsCopied) / rate) : this.phase === 'copy' ? null : 0,
      appliedPosition: this.applied.toString(), sourcePosition: this.throttler?.sourcePosition ?? '',
      lagMs: this.lagMs(), lagEvents: this.queuedEvents, eventsApplied: this.eventsApplied,
      throttleReason: this.throttler?.reason() ?? (this.paused ? 'paused by operator' : null), chunkSize: this.chunkSize,
    };
  }

  private lagMs(): number {
    return this.queue.length ? Date.now() - this.queue[0].receivedAt : 0;
  }

  /** Runs until `signal` aborts (resolves) or a non-recoverable error (rejects). Resumes from Unew's saved state. */
  async run(signal: AbortSignal): Promise<void> {
    const o = this.options;
    const source = mysql.createPool({ ...mysqlOptionsOf(o.source.url), database: o.source.database, connectionLimit: o.parallelTables + 2, supportBigNumbers: true, bigNumberStrings: false });
    let target: mysql.Connection | undefined;
    try {
      target = await mysql.createConnection({ ...mysqlOptionsOf(o.target.url), database: o.target.database, supportBigNumbers: true, bigNumberStrings: false, queryFormat: formatQuery })
        .catch(async (err) => { throw (await explainDbError({ url: o.target.url, link: "Unew's database (the transfer's writer)" }, err)) ?? imagoError('TRANSFER_TARGET_UNREACHABLE', `${o.target.database}: ${err.message}`, err); });
      await source.query('SELECT 1').catch(async (err) => { throw (await explainDbError({ url: o.source.url, link: "Uold's database (the transfer's reader)" }, err)) ?? imagoError('TRANSFER_SOURCE_UNREACHABLE', `${o.source.database}: ${err.message}`, err); });
      const pre = await preflight(o, source, target);
      const inspector = new Inspector(source, o.source.database);

      // Capture starts before the copy: the start position is taken first, so
      // every change after it reaches Unew either through a chunk or the stream.
      await ensureMetaTables(target);
      const state = await initState(target, pre.sourceId, o.conversion.name, await inspector.gtidBinlogPos(), [...pre.tables.keys()]);
      this.applied = GtidPosition.parse(state.appliedGtid);
      this.eventsApplied = state.eventsApplied;
      for (const name of pre.tables.keys()) {
        const s = state.tables.get(name);
        this.tableProgress.set(name, { table: name, rowsCopied: s?.rowsCopied ?? 0, rowsTotal: s?.done ? s.rowsCopied : await inspector.countRows(name), done: !!s?.done });
      }

      this.streamer = new Streamer({ url: o.source.url, database: o.source.database, tables: [...pre.tables.keys()], serverId: o.serverId }, state.appliedGtid);
      this.streamer.on('txn', (t: StreamedTxn) => { this.queue.push(t); this.queuedEvents += t.changes.length; this.wake?.(); });
      this.streamer.on('failed', () => this.wake?.());
      await this.streamer.start();
      this.throttler = new Throttler(inspector, this.throttle, () => this.lagMs());
      this.throttler.paused = this.paused;
      this.throttler.start();

      const applier = new Applier(target, pre.tables);
      const lastKeys = new Map([...pre.tables.keys()].map((n) => [n, state.tables.get(n)?.lastKey ?? null]));
      this.phase = 'copy';
      await this.copy(signal, source, applier, pre.tables, pre.deps, lastKeys);
      this.phase = 'following';
      while (!signal.aborted) await this.applyUpTo(applier, null, signal);
    } finally {
      this.phase = 'stopped';
      this.throttler?.stop();
      this.streamer?.stop();
      await target?.end().catch(() => undefined);
      await source.end().catch(() => undefined);
    }
  }

  /**
   * Rounds of chunk reads (one chunk per table, up to parallelTables tables),
   * each chunk read in its own consistent snapshot at a known position. The
   * next round is read while the current one is written: its snapshots are
   * taken after this round's, so their positions are at or past every
   * position this round applies the stream to.
   */
  private async copy(signal: AbortSignal, source: mysql.Pool, applier: Applier, tables: Map<string, MappedTable>, deps: Map<string, string[]>, lastKeys: Map<string, unknown[] | null>): Promise<void> {
    const o = this.options;
    const exhausted = new Set([...tables.keys()].filter((n) => this.tableProgress.get(n)!.done));
    // Correct because every change after the start position is applied from the
    // stream anyway; re-read after a restart (a higher bound only copies more).
    const bounds = new Map<string, unknown[] | null>();
    for (const n of tables.keys()) if (!exhausted.has(n)) bounds.set(n, await maxKey(source, o.source.database, n, tables.get(n)!.sourceKey));
    // Reads only; never applies, so it can run while the previous round is written.
    const readRound = async (): Promise<ReadyChunk[]> => {
      const active = [...tables.keys()].filter((n) => !exhausted.has(n) && (deps.get(n) ?? []).every((d) => exhausted.has(d)));
      const pick = active.slice(0, o.parallelTables);
      const size = this.chunkSize;
      // Each chunk is converted and its statements built as soon as it arrives (pure work,
      // nothing written), while Unew is still busy with the previous round.
      return Promise.all(pick.map((n) => readChunk(source, o.source.database, n, tables.get(n)!.sourceKey, lastKeys.get(n)!, size, bounds.get(n) ?? null)
        .then(async ({ rows, ...c }) => ({ ...c, prepared: await applier.prepareChunk(tables.get(n)!, rows) }))));
    };
    let next: Promise<ReadyChunk[]> | null = null;
    while (!signal.aborted) {
      this.checkStream();
      let round: ReadyChunk[];
      if (next) { round = await next; next = null; } else {
        if (this.throttler!.reason()) {
          // Throttled: no read is in flight, so the stream may be applied freely meanwhile.
          await this.applyUpTo(applier, null, signal);
          continue;
        }
        round = await readRound();
      }
      if (round.length === 0) return;
      // Why: the next round must read from where this one ends, and not re-read finished tables.
      for (const c of round) { lastKeys.set(c.table, c.lastKey); if (c.done) exhausted.add(c.table); }
      if (!this.throttler!.reason()) next = readRound();
      round.sort((a, b) => (a.position.covers(b.position) ? (b.position.covers(a.position) ? 0 : 1) : -1));
      for (const c of round) {
        // Apply the stream exactly up to the snapshot this chunk was read at:
        // Unew then holds Uold's state at that position for the chunk's keys
        // (changes before it came through the stream, the chunk adds the rest),
        // and every later change to these keys arrives through the stream.
        await this.applyUpTo(applier, c.position, signal);
        if (signal.aborted) break;
        await applier.applyChunk(tables.get(c.table)!, c.prepared, c.lastKey, c.done, this.applied);
        const p = this.tableProgress.get(c.table)!;
        p.rowsCopied += c.prepared.rows;
        if (c.done) p.done = true;
        this.noteRate();
      }
    }
    await next?.catch(() => undefined);
  }

  private noteRate(): void {
    const now = Date.now();
    const rows = [...this.tableProgress.values()].reduce((s, t) => s + t.rowsCopied, 0);
    this.rateWindow.push({ at: now, rows });
    while (this.rateWindow.length > 2 && now - this.rateWindow[0].at > 5_000) this.rateWindow.shift();
  }

  private checkStream(): void {
    if (this.streamer?.error) throw this.streamer.error;
  }

  /**
   * Applies received transactions in batches: all of them (target null: wait
   * briefly for more when the queue is empty), or exactly those covered by
   * `target`, waiting for the stream to get there.
   */
  private async applyUpTo(applier: Applier, target: GtidPosition | null, signal: AbortSignal): Promise<void> {
    for (;;) {
      this.checkStream();
      if (signal.aborted) return;
      if (target && this.applied.covers(target)) return;
      const batch: StreamedTxn[] = [];
      let events = 0;
      const pos = this.applied.clone();
      while (this.queue.length && events < this.options.maxApplyBatch) {
        const t = this.queue[0];
        if (target && !target.covers(t.gtid)) break;
        this.queue.shift();
        batch.push(t);
        events += t.changes.length;
        pos.advance(t.gtid);
      }
      if (batch.length) {
        this.eventsApplied += await applier.applyTransactions(batch, pos);
        this.applied = pos;
        this.queuedEvents -= events;
        if (!target) return;
        continue;
      }
      if (target && this.queue.length) {
        // The next transaction is past the target yet the target is not covered:
        // the target names a domain/server the stream never delivers.
        throw imagoError('TRANSFER_STREAM_FAILED', `stream jumped from ${this.applied} past ${target} (next ${this.queue[0].gtid})`);
      }
      await new Promise<void>((resolve) => { this.wake = resolve; setTimeout(resolve, target ? 20 : 100); });
      this.wake = undefined;
      if (!target) return;
    }
  }
}

const format = mysql.format as (sql: string, values: unknown, stringifyObjects: boolean, timezone: string) => string;
/**
 * mysql2's own formatting (its defaults: stringifyObjects false, local time
 * zone), except that a statement without values is sent as it is: the copy's
 * prebuilt upserts (hundreds of KiB) would otherwise be scanned for `?`.
 */
function formatQuery(sql: string, values: unknown): string {
  return values === undefined || (Array.isArray(values) && values.length === 0) ? sql : format(sql, values, false, 'local');
}

/** Same as `new Transfer(options)`. */
export function createTransfer(options: TransferInput): Transfer {
  return new Transfer(options);
}

