/**
 * The binlog scan of the verification: which old keys (per old table) and
 * which target keys (per new table) Uold's transactions touched between two
 * positions, read with the streamer (its own server id) from `from` until it
 * covers `to`.
 */
import type { Row } from '../conversion';
import { convertChecked, keyOf, keyText, type MappedTable } from '../mapper';
import type { GtidPosition } from '../position';
import { imagoError } from '../../lib/errors';
import { Streamer } from '../streamer';

export type Keys = Map<string, Map<string, unknown[]>>; // table -> keyText -> key

export function addKey(into: Keys, table: string, key: unknown[]): void {
  (into.get(table) ?? into.set(table, new Map()).get(table)!).set(keyText(key), key);
}

export interface ScanSource { url: string; database: string; serverId: number }

export async function touchedBetween(src: ScanSource, tables: Map<string, MappedTable>, from: GtidPosition, to: GtidPosition): Promise<{ old: Keys; targets: Keys }> {
  if (from.covers(to)) return { old: new Map(), targets: new Map() };
  const scan = new TouchedScan(src, tables, from);
  try {
    await scan.start();
    await scan.until(to);
  } finally { scan.stop(); }
  return { old: scan.old, targets: scan.targets };
}

/**
 * A binlog scan started ahead of time: it collects the keys every transaction
 * after `from` touches until stopped. Starting a binlog read at a GTID makes
 * the server read its binlog file from the start (about 90 ms per GB here), so
 * the cut-over starts this before holding anyone and, inside the hold, only
 * waits for it to reach Uold's final position.
 */
export class TouchedScan {
  readonly old: Keys = new Map();
  readonly targets: Keys = new Map();
  private readonly s: Streamer;
  private error: unknown = null;
  private waiters: Array<{ to: GtidPosition; resolve: () => void; reject: (e: unknown) => void }> = [];

  constructor(src: ScanSource, private readonly tables: Map<string, MappedTable>, from: GtidPosition) {
    this.s = new Streamer({ url: src.url, database: src.database, tables: [...tables.keys()], serverId: src.serverId }, from.toString());
    this.s.on('failed', (err: unknown) => { this.error = err; for (const w of this.waiters.splice(0)) w.reject(err); });
    this.s.on('txn', (t: { changes: Array<{ table: string; before: Row | null; after: Row | null }> }) => {
      try {
        for (const c of t.changes) {
          const m = this.tables.get(c.table)!;
          for (const img of [c.before, c.after]) {
            if (!img) continue;
            addKey(this.old, c.table, keyOf(img, m.sourceKey));
            for (const [tt, rows] of convertChecked(m, img)) for (const r of rows) addKey(this.targets, tt, keyOf(r, m.targetKeys.get(tt)!));
          }
        }
      } catch (err) {
        this.error = err;
      }
      this.settle();
    });
  }

  async start(): Promise<void> { await this.s.start(); }

  /** Resolves once every transaction up to `to` has been read (at once if the scan is there already). */
  until(to: GtidPosition): Promise<void> {
    return new Promise((resolve, reject) => { this.waiters.push({ to, resolve, reject }); this.settle(); });
  }

  stop(): void {
    this.s.stop();
    for (const w of this.waiters.splice(0)) w.reject(this.error ?? imagoError('TRANSFER_STREAM_FAILED', `the binlog scan was stopped at ${this.s.position} before it reached ${w.to}`));
  }

  private settle(): void {
    const left: typeof this.waiters = [];
    for (const w of this.waiters) {
      if (this.error) w.reject(this.error);
      else if (this.s.position.covers(w.to)) w.resolve();
      else left.push(w);
    }
    this.waiters = left;
  }
}
