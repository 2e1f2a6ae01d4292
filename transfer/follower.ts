import type * as mysql from 'mysql2/promise';
import { imagoError } from '../lib/errors';
import type { Applier, SourceTxn } from './applier';
import { on } from './failures';
import { keyOf, type MappedTable } from './mapper';
import { mayMeetChunk, type CopyWindow } from './overlap';
import { readRefresh, readTables, type RefreshState, type TableState } from './meta';
import { GtidPosition } from './position';
import { wholeScanWarning, wholeTableScans, type RefreshPlan } from './refresh';
import type { Streamer, StreamedTxn } from './streamer';

/** How often the follower, while the copy runs, tries to time a refresh pass's batch for the ETA. */
const PROBE_EVERY_MS = 5_000;
const REPROBE_MS = 30_000;

export interface FollowerDeps {
  /** The follower's own writer and the connection it writes on (meta is read on it between transactions). */
  applier: Applier;
  conn: mysql.Connection;
  streamer: Streamer;
  tables: Map<string, MappedTable>;
  /** Set-based refresh specs with the primary key of the table each refreshes. */
  refresh: Array<RefreshPlan & { keyCols: string[] }>;
  maxApplyBatch: number;
  refreshBatch: number;
  /** Applier.referenceMs before the copy began (null: not taken): scales the refresh probes taken during it. */
  referenceMs?: number | null;
  applied: GtidPosition;
  eventsApplied: number;
}

/** How often the copy state in Unew (written by the copy units) is read. */
const META_EVERY_MS = 250;
/** Most change events in a batch that holds a copied table's lock (a chunk of that table waits for it). */
const LOCKED_BATCH_EVENTS = 200;
/** A follower with nothing to apply still says it is alive this often (copy units in other processes read it). */
const HEARTBEAT_EVERY_MS = 1_000;

/**
 * The follower applies the change stream to Unew, from the first transaction
 * after the start position, during the copy and after it, in batches of whole
 * transactions (each batch one Unew transaction with the applied position).
 * While an old table is still being copied, the keys the stream changes go
 * to the touched log (see Applier.applyChunk). Once every table is copied it
 * runs the set-based refresh passes, one batch between two stream batches,
 * so the stream's lag stays low.
 */
export class Follower {
  applied: GtidPosition;
  eventsApplied: number;
  queuedEvents = 0;
  tableStates = new Map<string, TableState>();
  refreshStates = new Map<string, RefreshState>();
  /** Per pass, a batch's cost timed during the copy (ms per key, rolled back): the ETA's pace for it until it runs. */
  private readonly refreshProbes = new Map<string, { samples: number[]; at: number }>();
  private lastProbe = 0;
  /** What the operator should know about the passes (e.g. a setSql that scans a table per batch). */
  readonly warnings: string[] = [];
  private readonly explained = new Set<string>();
  /** Every table copied and every refresh pass done: Unew holds convert(Uold) and follows it. */
  copyComplete = false;
  private readonly queue: StreamedTxn[] = [];
  private readonly started = new Set<string>();
  private forgotten = new Set<string>();
  private lastMeta = 0;
  private lastWrite = Date.now();
  private wake?: () => void;

  constructor(private readonly d: FollowerDeps) {
    this.applied = d.applied;
    this.eventsApplied = d.eventsApplied;
    d.streamer.on('txn', (t: StreamedTxn) => { this.queue.push(t); this.queuedEvents += t.changes.length; this.wake?.(); });
    d.streamer.on('failed', () => this.wake?.());
  }

  /** Age of the oldest received but unapplied transaction (0 when caught up). */
  lagMs(): number {
    return this.queue.length ? Date.now() - this.queue[0].receivedAt : 0;
  }

  /** Makes the next loop read the copy state at once (a chunk finished a table). */
  poke(): void {
    this.lastMeta = 0;
    this.wake?.();
  }

  async run(signal: AbortSignal): Promise<void> {
    await this.readMeta();
    while (!signal.aborted) {
      if (this.d.streamer.error) throw this.d.streamer.error;
      if (Date.now() - this.lastMeta >= META_EVERY_MS) await this.readMeta();
      let worked = false;
      if (this.queue.length) { await this.applyBatch(); worked = true; }
      // Alternating with stream batches: neither starves the other.
      const pass = this.nextPass();
      if (pass) { await this.refreshStep(pass); worked = true; }
      else if (Date.now() - this.lastProbe >= PROBE_EVERY_MS) await this.probeRefresh();
      if (worked) continue;
      if (Date.now() - this.lastWrite >= HEARTBEAT_EVERY_MS) {
        await on('target', 'recording the follower heartbeat', () => this.d.applier.heartbeat(0));
        this.lastWrite = Date.now();
      }
      await new Promise<void>((resolve) => { this.wake = resolve; setTimeout(resolve, 100); });
      this.wake = undefined;
    }
  }

  private async readMeta(): Promise<void> {
    const [tables, refresh] = await on('target', 'reading the copy state', async () => {
      const read = [await readTables(this.d.conn), await readRefresh(this.d.conn)] as const;
      await this.d.conn.query('COMMIT'); // the writer's session does not autocommit: end the read
      return read;
    });
    this.tableStates = tables;
    this.refreshStates = refresh;
    this.lastMeta = Date.now();
    for (const [id, r] of refresh) if (r.done || r.lastKey !== null) this.started.add(id);
    const done = [...tables].filter(([n, t]) => t.done && this.d.tables.has(n)).map(([n]) => n);
    const newlyDone = done.filter((n) => !this.forgotten.has(n));
    if (newlyDone.length) {
      // The copy unit deleted them when it finished; entries the stream added since it did are dropped here.
      await on('target', 'clearing the touched log', () => this.d.applier.forgetTouched(newlyDone));
      for (const n of newlyDone) this.forgotten.add(n);
    }
    this.copyComplete = this.allCopied() && [...refresh.values()].every((r) => r.done);
  }

  private allCopied(): boolean {
    for (const n of this.d.tables.keys()) if (!this.tableStates.get(n)?.done) return false;
    return true;
  }

  /** Old tables whose copy may still write chunks, with what bounds it as last read (see overlap.ts). */
  private touching(): Map<string, CopyWindow> {
    const out = new Map<string, CopyWindow>();
    for (const n of this.d.tables.keys()) {
      const s = this.tableStates.get(n);
      if (!s?.done) out.set(n, { floor: s?.floor ?? 0n, lastKey: s?.lastKey ?? null, bound: s?.bound });
    }
    return out;
  }

  private nextPass(): (RefreshPlan & { keyCols: string[] }) | undefined {
    // Why: a pass recomputes from Unew's own rows, so it starts only when every table is copied.
    if (!this.allCopied()) return undefined;
    return this.d.refresh.find((p) => !this.refreshStates.get(p.id)?.done);
  }

  /** A pass's cost per key as timed during the copy: the median of its last five probes (undefined before one). */
  refreshMsPerKey(id: string): number | undefined {
    const s = this.refreshProbes.get(id)?.samples;
    return s ? [...s].sort((a, b) => a - b)[Math.floor((s.length - 1) / 2)] : undefined;
  }

  /**
   * During the copy, times a batch of each pass (one not timed for REPROBE_MS), once Unew
   * holds a batch of its keys: a few milliseconds, rolled back. An estimate
   * only: a failed probe is tried again later, never a failed transfer.
   */
  private async probeRefresh(): Promise<void> {
    this.lastProbe = Date.now();
    if (this.allCopied()) return;
    // Again every REPROBE_MS: early probes see few of the rows the statement reads (the producers are still being copied).
    const stale = (id: string) => Date.now() - (this.refreshProbes.get(id)?.at ?? 0) >= REPROBE_MS;
    const p = this.d.refresh.find((x) => stale(x.id) && !this.refreshStates.get(x.id)?.done);
    if (!p) return;
    const ms = await this.d.applier.probeRefresh(p, p.keyCols, this.d.refreshBatch).catch(() => null);
    if (ms === null) return;
    // Why: the probe runs while the copy keeps Unew's server busy; the pass runs after it, with the server
    // to itself. A fixed statement timed now against before the copy says by how much to scale it down
    // (measured at 12M rows: the probe alone read 2 to 3 times the pass's real cost).
    const now = await this.d.applier.referenceMs().catch(() => null);
    const slowdown = now !== null && this.d.referenceMs ? Math.max(1, now / this.d.referenceMs) : 1;
    // The median of the last five: one probe beside a burst of the copy (seen at 12M rows: the ETA doubled
    // for 30 s) moves the estimate no more than one that ran alone.
    this.refreshProbes.set(p.id, { samples: [...(this.refreshProbes.get(p.id)?.samples ?? []), ms / slowdown].slice(-5), at: Date.now() });
  }

  private async refreshStep(p: RefreshPlan & { keyCols: string[] }): Promise<void> {
    // From now on stream batches recompute this spec's keys themselves (same connection, in order).
    this.started.add(p.id);
    const s = this.refreshStates.get(p.id) ?? { table: p.table, lastKey: null, rowsDone: 0, done: false };
    // Each pass's plan is read once per process, at its first full batch: a pass that scans a table per batch is told to the operator.
    const explain = !this.explained.has(p.id);
    const r = await on('target', `recomputing ${p.table} (refresh pass)`, () => this.d.applier.refreshBatch(p, p.keyCols, s.lastKey, this.d.refreshBatch, { explain }));
    if (r.explain) {
      this.explained.add(p.id);
      const scans = wholeTableScans(r.explain, this.d.refreshBatch);
      if (scans.length) this.warnings.push(wholeScanWarning(p, scans, this.d.refreshBatch));
    } else if (r.lastKey === null) this.explained.add(p.id);
    this.refreshStates.set(p.id, { ...s, lastKey: r.lastKey, rowsDone: s.rowsDone + r.rows, done: r.lastKey === null });
    this.copyComplete = this.allCopied() && this.d.refresh.every((x) => this.refreshStates.get(x.id)?.done);
    this.lastWrite = Date.now();
  }

  private async applyBatch(): Promise<void> {
    const batch: SourceTxn[] = [];
    let events = 0;
    const pos = this.applied.clone();
    const touch = this.touching();
    // A batch with a change that may meet a chunk still to be written holds
    // that table's lock while it runs, and a chunk of the table waits for it:
    // such batches are kept short. Other batches (older changes: a follower
    // catching up; new rows above the copy's bound) need no lock and stay large.
    const locking = (t: SourceTxn) => t.changes.some((c) => {
      const w = touch.get(c.table);
      const m = this.d.tables.get(c.table);
      return !!w && !!m && [c.before, c.after].some((img) => !!img && mayMeetChunk(w, t.end, keyOf(img, m.sourceKey)));
    });
    const limit = this.queue.length && locking(this.queue[0]) ? Math.min(this.d.maxApplyBatch, LOCKED_BATCH_EVENTS) : this.d.maxApplyBatch;
    while (this.queue.length && (events < limit || batch.length === 0)) {
      const t = this.queue[0];
      if (limit === this.d.maxApplyBatch && batch.length && locking(t)) break;
      this.queue.shift();
      batch.push(t);
      events += t.changes.length;
      pos.advance(t.gtid);
    }
    const lag = Date.now() - batch[0].receivedAt;
    const n = await on('target', 'applying the change stream', () => this.d.applier.applyTransactions(batch, pos, { touch, refresh: this.started, lagMs: lag }));
    if (!pos.covers(this.applied)) throw imagoError('TRANSFER_STREAM_FAILED', `the stream went back from ${this.applied} to ${pos}`);
    this.applied = pos;
    this.eventsApplied += n;
    this.queuedEvents -= events;
    this.lastWrite = Date.now();
  }
}
