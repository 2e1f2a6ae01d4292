/**
 * The copy's ETA. Work is counted in rows, each table's rows weighted by
 * their size in Uold (bytes per row: a row of a wide table costs more to
 * read, convert and write than a narrow one), plus the refresh passes that
 * follow the copy (one unit per refreshed row, scaled by `refreshWeight`).
 * The pace is the work done over a long trailing window — the last third of
 * the copy so far, at least 15 s — so a throttled minute or a table switch
 * moves the estimate a little, not by half.
 */
export interface WorkItem {
  done: number;
  total: number;
  /** Cost of one unit relative to the others (e.g. bytes per row). */
  weight: number;
}

export interface EtaOptions {
  /** The trailing window is at least this long (ms). */
  minWindowMs: number;
  /** …and at least this share of the time since the copy started. */
  windowShare: number;
}

export const DEFAULT_ETA: EtaOptions = { minWindowMs: 15_000, windowShare: 1 / 3 };

export function workOf(items: WorkItem[]): { done: number; total: number } {
  let done = 0;
  let total = 0;
  for (const it of items) {
    done += Math.min(it.done, it.total) * it.weight;
    total += Math.max(it.total, it.done) * it.weight;
  }
  return { done, total };
}

export class Eta {
  private samples: Array<{ at: number; done: number }> = [];
  private startedAt = 0;

  constructor(private readonly o: EtaOptions = DEFAULT_ETA) {}

  /** Records the work done at `at` (ms). The first sample is the copy's start. */
  note(at: number, done: number): void {
    if (this.samples.length === 0) this.startedAt = at;
    const last = this.samples[this.samples.length - 1];
    if (last && at - last.at < 200) { last.done = Math.max(last.done, done); return; }
    this.samples.push({ at, done });
    const keep = Math.max(this.o.minWindowMs, (at - this.startedAt) * this.o.windowShare);
    while (this.samples.length > 2 && at - this.samples[1].at >= keep) this.samples.shift();
  }

  /** Work per second over the trailing window, or null before two samples a second apart. */
  rate(): number | null {
    const a = this.samples[0];
    const b = this.samples[this.samples.length - 1];
    if (!a || !b || b.at - a.at < 1_000) return null;
    return (b.done - a.done) / ((b.at - a.at) / 1000);
  }

  /** Seconds until `total` work is done at the current pace (null: no pace yet). */
  seconds(total: number): number | null {
    const r = this.rate();
    const b = this.samples[this.samples.length - 1];
    if (r === null || !b) return null;
    if (b.done >= total) return 0;
    return r > 0 ? (total - b.done) / r : null;
  }
}
