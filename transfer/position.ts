/**
 * MariaDB GTID positions ('domain-server-seq,...', as @@gtid_binlog_pos).
 * A position keeps the last transaction per replication domain; "covers"
 * answers whether everything up to a given position has been seen. Sequence
 * numbers are compared as BigInt: they are u64 and exceed Number's range.
 */
import { imagoError } from '../lib/errors';
export class GtidPosition {
  private readonly domains = new Map<string, { server: string; seq: bigint }>();

  static parse(text: string | null | undefined): GtidPosition {
    const pos = new GtidPosition();
    for (const part of (text ?? '').split(',').map((s) => s.trim()).filter(Boolean)) pos.advance(part);
    return pos;
  }

  /** Records one transaction's GTID ('d-s-n'); never moves a domain backwards. */
  advance(gtid: string): void {
    const m = /^(\d+)-(\d+)-(\d+)$/.exec(gtid.trim());
    if (!m) throw imagoError('IMAGO_INTERNAL', `not a MariaDB GTID: '${gtid}'`);
    const seq = BigInt(m[3]);
    const cur = this.domains.get(m[1]);
    if (!cur || seq > cur.seq) this.domains.set(m[1], { server: m[2], seq });
  }

  /** True when every domain of `other` is at or below this position. */
  covers(other: GtidPosition | string): boolean {
    const o = typeof other === 'string' ? GtidPosition.parse(other) : other;
    for (const [d, { seq }] of o.domains) {
      const mine = this.domains.get(d);
      if (!mine || mine.seq < seq) return false;
    }
    return true;
  }

  /** Transactions of `other` not yet covered, summed over domains (a lag in transactions). */
  behind(other: GtidPosition | string): number {
    const o = typeof other === 'string' ? GtidPosition.parse(other) : other;
    let n = 0n;
    for (const [d, { seq }] of o.domains) {
      const mine = this.domains.get(d)?.seq ?? 0n;
      if (seq > mine) n += seq - mine;
    }
    return Number(n);
  }

  clone(): GtidPosition { return GtidPosition.parse(this.toString()); }

  toString(): string {
    return [...this.domains.entries()].sort(([a], [b]) => Number(a) - Number(b))
      .map(([d, { server, seq }]) => `${d}-${server}-${seq}`).join(',');
  }
}
