/**
 * Which changes of the stream can meet a chunk still to be written. Only
 * those need the touched log and the table's lock (see Applier.applyChunk);
 * every other change is applied at full speed. A change to key k of table T,
 * at binlog coordinate c, can meet a future chunk of T only if
 *  - c is after T's floor (every chunk still to be written has a snapshot at
 *    or after the floor, and a chunk is only overtaken by changes after its
 *    snapshot), and
 *  - k is above T's last copied key and at most T's bound (chunks go up in
 *    key order from the last copied key, and stop at the bound).
 * The follower decides with values it read earlier: floors and last keys
 * only grow, a bound never changes once set, so earlier values only make it
 * record more, never less. Keys compare here only when every column is an
 * integer; any other key (strings, whose order depends on collations)
 * counts as inside the range.
 */

/** What the follower knows of a table still being copied. */
export interface CopyWindow {
  floor: bigint;
  /** Last copied key (null: none yet). */
  lastKey: unknown[] | null;
  /** Highest key the copy goes to; undefined: not known yet; null: the table was empty. */
  bound: unknown[] | null | undefined;
}

function asInteger(v: unknown): bigint | null {
  if (typeof v === 'bigint') return v;
  if (typeof v === 'number') return Number.isSafeInteger(v) ? BigInt(v) : null;
  if (typeof v === 'string' && /^-?\d+$/.test(v)) return BigInt(v);
  return null;
}

/** Orders two integer keys; null when either is not all integers (no order known here). */
export function compareIntegerKeys(a: readonly unknown[], b: readonly unknown[]): number | null {
  if (a.length !== b.length) return null;
  for (let i = 0; i < a.length; i++) {
    const x = asInteger(a[i]);
    const y = asInteger(b[i]);
    if (x === null || y === null) return null;
    if (x !== y) return x < y ? -1 : 1;
  }
  return 0;
}

/** True when a change at `coord` to `key` may meet a chunk still to be written (coord 0n: unknown, counts as new). */
export function mayMeetChunk(w: CopyWindow, coord: bigint, key: readonly unknown[]): boolean {
  if (coord !== 0n && coord <= w.floor) return false;
  if (w.bound === null) return false; // empty when its copy began: no chunk will hold any key
  if (w.bound !== undefined) {
    const c = compareIntegerKeys(key, w.bound);
    if (c !== null && c > 0) return false;
  }
  if (w.lastKey !== null) {
    const c = compareIntegerKeys(key, w.lastKey);
    if (c !== null && c <= 0) return false;
  }
  return true;
}
