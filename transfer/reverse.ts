/**
 * Reverse replication, for a rollback after the switchover: Unew's binlog,
 * from Unew's position at the point of no return, applied to Uold through
 * the conversion's reverse. The same machinery as the forward transfer with
 * the roles swapped — the streamer reads Unew, the follower and its applier
 * write Uold, and the position lives in Uold's own meta tables
 * (transfer/meta.ts), in the same transaction as the rows it describes — so
 * delivery is at least once, the apply idempotent, and a restart resumes
 * from Uold's state. There is no copy: at the point of no return Uold and
 * Unew hold the same data (the cut-over verified it), and only what v2
 * writes after it must come back.
 *
 * It writes to Uold, which nothing else in Imago does: it runs only after
 * the point of no return, as the writer account of
 * postSwitchover.rollback.uoldWriterUrlRef, and only once the forward
 * transfer has stopped (a forward stream still reading Uold would carry
 * these writes back into Unew).
 */
import type * as mysql from 'mysql2/promise';
import { imagoError } from '../lib/errors';
import { connect } from '../lib/sql';
import { Applier } from './applier';
import type { ConversionModule } from './conversion';
import { on, transferError } from './failures';
import { Follower } from './follower';
import { expectReverseCoverage } from './inverse';
import { mapTable, type MappedTable } from './mapper';
import { ensureMetaTables, initState, REFRESH_TABLE, STATE_TABLE, TABLES_TABLE, META_TABLES } from './meta';
import type { Endpoint } from './options';
import { GtidPosition } from './position';
import { refreshPlans } from './refresh';
import { Streamer } from './streamer';

export interface ReverseOptions {
  /** Unew: its binlog is read (an account with REPLICATION SLAVE, REPLICATION CLIENT, SELECT). */
  source: Endpoint;
  /** Uold, as the writer account. */
  target: Endpoint;
  /** The forward conversion; its `reverse` is applied. */
  conversion: ConversionModule;
  /** Unew's GTID position at the point of no return: everything after it comes back. */
  startPosition: string;
  serverId: number;
  maxApplyBatch?: number;
}

export interface ReverseProgress {
  running: boolean;
  startPosition: string;
  /** Unew position applied to Uold (also stored in Uold). */
  appliedPosition: string;
  /** Age of the oldest received but unapplied Unew transaction (0 when caught up). */
  lagMs: number;
  eventsApplied: number;
}

/** The reverse's tables as the mapper sees them: each Unew table keyed by the key the forward conversion declares for it. */
export function reverseTables(conv: ConversionModule): Map<string, MappedTable> {
  expectReverseCoverage(conv);
  const keys = new Map<string, string[]>();
  for (const t of conv.tables) for (const x of t.targets) keys.set(x.table, x.key);
  return new Map(conv.reverse!.map((r) => [r.source, mapTable(r, keys.get(r.source)!)]));
}

export class ReverseStream {
  private follower?: Follower;
  private running = false;
  readonly name: string;

  constructor(private readonly o: ReverseOptions) {
    if (!GtidPosition.parse(o.startPosition).toString()) throw imagoError('IMAGO_OPTIONS_INVALID', "reverse replication needs Unew's GTID position at the point of no return (startPosition)");
    this.name = `${o.conversion.name} (reverse)`;
  }

  progress(): ReverseProgress {
    const f = this.follower;
    return { running: this.running, startPosition: this.o.startPosition, appliedPosition: f?.applied.toString() ?? '', lagMs: f?.lagMs() ?? 0, eventsApplied: f?.eventsApplied ?? 0 };
  }

  /** Runs until `signal` aborts (resolves) or a failure (rejects with a registry error). Resumes from Uold's saved state. */
  async run(signal: AbortSignal): Promise<void> {
    const { o } = this;
    const tables = reverseTables(o.conversion);
    const refresh = refreshPlans({ name: this.name, tables: o.conversion.reverse! });
    let target: mysql.Connection | undefined;
    let streamer: Streamer | undefined;
    this.running = true;
    try {
      target = await on('target', o.target.database, () => connect(o.target.url, { database: o.target.database }));
      await on('target', 'creating the reverse state in Uold', () => ensureMetaTables(target!));
      const state = await on('target', 'writing the reverse state', () => initState(target!, `unew:${o.source.database}`, this.name, o.startPosition, [...tables.keys()], refresh.map((p) => ({ id: p.id, table: p.table }))));
      // Nothing to copy: every table is "copied" from the start, and each refresh
      // runs per key for the stream (its set-based pass would walk all of Uold).
      await on('target', 'marking the reverse state', async () => {
        await target!.query(`UPDATE ${TABLES_TABLE} SET done = 1 WHERE done = 0`);
        await target!.query(`UPDATE ${REFRESH_TABLE} SET done = 1 WHERE done = 0`);
      });
      const applier = new Applier(target, tables);
      await on('target', 'preparing the reverse writer', () => applier.init());
      streamer = new Streamer({ url: o.source.url, database: o.source.database, tables: [...tables.keys()], serverId: o.serverId }, state.appliedGtid);
      const follower = new Follower({
        applier, conn: target, streamer, tables, refresh: refresh.map((p) => ({ ...p, keyCols: [] })),
        maxApplyBatch: o.maxApplyBatch ?? 2_000, refreshBatch: 1_000,
        applied: GtidPosition.parse(state.appliedGtid), eventsApplied: state.eventsApplied,
      });
      this.follower = follower;
      await streamer.start();
      await follower.run(signal);
    } catch (err) {
      throw transferError(err, 'target', 'reverse replication');
    } finally {
      this.running = false;
      streamer?.stop();
      await target?.end().catch(() => undefined);
    }
  }
}

/** After a rollback (or at finalize): Uold keeps no trace of the reverse replication's state. */
export async function dropReverseState(target: Endpoint): Promise<void> {
  const c = await connect(target.url, { database: target.database });
  try {
    for (const t of META_TABLES) await c.query(`DROP TABLE IF EXISTS ${t}`);
  } finally { await c.end().catch(() => undefined); }
}

export { STATE_TABLE as REVERSE_STATE_TABLE };
