/**
 * The binlog scan of the verification: which old keys (per old table) and
 * which target keys (per new table) Uold's transactions touched between two
 * positions, read with the streamer (its own server id) from `from` until it
 * covers `to`.
 */
import type { Row } from '../conversion';
import { convertChecked, keyOf, keyText, type MappedTable } from '../mapper';
import type { GtidPosition } from '../position';
import { Streamer } from '../streamer';

export type Keys = Map<string, Map<string, unknown[]>>; // table -> keyText -> key

export function addKey(into: Keys, table: string, key: unknown[]): void {
  (into.get(table) ?? into.set(table, new Map()).get(table)!).set(keyText(key), key);
}

export interface ScanSource { url: string; database: string; serverId: number }

export async function touchedBetween(src: ScanSource, tables: Map<string, MappedTable>, from: GtidPosition, to: GtidPosition): Promise<{ old: Keys; targets: Keys }> {
  const old: Keys = new Map();
  const targets: Keys = new Map();
  if (from.covers(to)) return { old, targets };
  const s = new Streamer({ url: src.url, database: src.database, tables: [...tables.keys()], serverId: src.serverId }, from.toString());
  const done = new Promise<void>((resolve, reject) => {
    s.on('failed', reject);
    s.on('txn', (t: { changes: Array<{ table: string; before: Row | null; after: Row | null }> }) => {
      try {
        for (const c of t.changes) {
          const m = tables.get(c.table)!;
          for (const img of [c.before, c.after]) {
            if (!img) continue;
            addKey(old, c.table, keyOf(img, m.sourceKey));
            for (const [tt, rows] of convertChecked(m, img)) for (const r of rows) addKey(targets, tt, keyOf(r, m.targetKeys.get(tt)!));
          }
        }
        if (s.position.covers(to)) resolve();
      } catch (err) { reject(err); }
    });
  });
  done.catch(() => undefined); // awaited below; a failed start must not leave it unhandled
  try {
    await s.start();
    await done;
  } finally { s.stop(); }
  return { old, targets };
}
