/**
 * The lag checker: a difference may only mean that Unew had not yet applied
 * the write Uold's reply already showed. Before such a difference counts as a
 * regression, the request is sent again to both universes once Unew has
 * caught up (its applied position has passed Uold's, when a position hook is
 * given; after a delay otherwise) and diffed again.
 */
import type { Difference } from './differ';
import type { CapturedReply, CapturedRequest } from './types';
import type { Replayer } from './replayer';

export interface PositionHook {
  /** Uold's current replication position (e.g. MariaDB `@@gtid_binlog_pos`). */
  uold(): Promise<string>;
  /** The position of Uold's stream that Unew has applied, in the same notation. */
  unewApplied(): Promise<string>;
}

/**
 * True when `applied` has reached `target`. Understands MariaDB GTID lists
 * (`domain-server-seq[,...]`: every domain of the target must be reached,
 * server ids ignored), MySQL GTID sets (`uuid:1-N[,...]`), and plain numbers.
 */
export function positionReached(target: string, applied: string): boolean {
  const t = target.trim(); const a = applied.trim();
  if (t === '' || t === a) return true;
  if (/^\d+$/.test(t) && /^\d+$/.test(a)) return BigInt(a) >= BigInt(t);
  const mariadb = /^\d+-\d+-\d+$/;
  const parts = (s: string) => s.split(',').map((x) => x.trim()).filter(Boolean);
  if (parts(t).every((p) => mariadb.test(p)) && parts(a).every((p) => mariadb.test(p))) {
    const seqOf = (s: string) => new Map(parts(s).map((p) => { const [d, , n] = p.split('-'); return [d, BigInt(n)] as const; }));
    const ta = seqOf(a);
    return [...seqOf(t)].every(([d, n]) => (ta.get(d) ?? -1n) >= n);
  }
  const mysql = (s: string) => new Map(parts(s).map((p) => {
    const [uuid, ...ranges] = p.split(':');
    const last = ranges.map((r) => BigInt(r.split('-').pop() ?? '0')).reduce((x, y) => (y > x ? y : x), 0n);
    return [uuid.toLowerCase(), last] as const;
  }));
  const ma = mysql(a);
  return [...mysql(t)].every(([u, n]) => (ma.get(u) ?? -1n) >= n);
}

export interface RecheckResult {
  /** Differences still present in the last recheck. */
  still: Difference[];
  attempts: number;
  /** Unew's position never passed Uold's within the timeout. */
  timedOut: boolean;
  /** A replay failed: the recheck proves nothing either way. */
  inconclusive?: boolean;
}

export class LagChecker {
  constructor(
    private readonly uold: Replayer,
    private readonly unew: Replayer,
    /** Normalises both raw replies and diffs them, with the engine's rules. */
    private readonly compare: (uold: CapturedReply, unew: CapturedReply) => Difference[],
    private readonly opts: { attempts: number; delayMs: number; positionTimeoutMs: number; positions?: PositionHook },
  ) {}

  /**
   * Re-sends the request up to `attempts` times; stops at the first recheck
   * where none of `fields` differ any more.
   */
  async recheck(req: CapturedRequest, fields: Set<string>, uoldPosition?: string): Promise<RecheckResult> {
    let still: Difference[] = [];
    let timedOut = false;
    for (let attempt = 1; attempt <= this.opts.attempts; attempt++) {
      let uoldReply;
      if (this.opts.positions) {
        // Order matters: wait until Unew has applied what Uold had when the
        // mirrored reply was produced, then ask Uold again and read its
        // position right after its reply, then wait for Unew to reach that
        // position before asking Unew. Unew then has seen at least every
        // write the fresh Uold reply can reflect.
        if (uoldPosition) timedOut = !(await this.waitFor(uoldPosition)) || timedOut;
        uoldReply = await this.uold.send(req, 'lag-recheck');
        const p = await this.opts.positions.uold();
        timedOut = !(await this.waitFor(p)) || timedOut;
      } else {
        await sleep(this.opts.delayMs * attempt);
        uoldReply = await this.uold.send(req, 'lag-recheck');
      }
      const unewReply = await this.unew.send(req, 'lag-recheck');
      // Why: two failed replays "agree" (no body on either side); that must
      // never explain a difference away.
      if (uoldReply.error || unewReply.error) return { still: [], attempts: attempt, timedOut, inconclusive: true };
      still = this.compare(uoldReply, unewReply);
      if (!still.some((d) => fields.has(d.field))) return { still, attempts: attempt, timedOut };
      if (!this.opts.positions) continue;
      await sleep(this.opts.delayMs);
    }
    return { still, attempts: this.opts.attempts, timedOut };
  }

  private async waitFor(target: string): Promise<boolean> {
    const hook = this.opts.positions;
    if (!hook) return true;
    const deadline = Date.now() + this.opts.positionTimeoutMs;
    const step = Math.max(5, Math.min(50, this.opts.delayMs));
    for (;;) {
      if (positionReached(target, await hook.unewApplied())) return true;
      if (Date.now() >= deadline) return false;
      await sleep(step);
    }
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
