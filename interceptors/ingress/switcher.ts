/**
 * The switcher: which upstream serves, and the quiescence around changing it.
 *
 *   forward ──hold──▶ held ──(drained)──switch──▶ held ──commit──▶ committed ──release──▶ forward
 *                       │                           │                     └── hard timeout: release to the NEW target ──▶ forward
 *                       └──────────────────────────┴── hard timeout: back to the old target, release ──▶ forward
 *
 * `commit` is the fleet's point of no return at one interceptor: before it, a
 * hold that times out goes back to the target it started from (nothing was
 * sent to the new one); after it, the switch is decided, and a hold that
 * times out releases to the new target. A driver commits every interceptor
 * before it releases any, so a driver that dies after its first release, or
 * one interceptor whose control API stops answering then, cannot leave that
 * interceptor serving the old version while the others serve the new one.
 *
 * Every transition is idempotent (Temporal retries activities): asking for
 * the state you are already in succeeds and changes nothing. A transition
 * that is impossible now throws INGRESS_BAD_TRANSITION with the reason.
 */
import { imagoError } from '../../lib/errors';
import type { Upstream } from './forwarder';
import type { Recorder } from './recorder';

export interface HeldRequest {
  /** Sends the request to `up`; called once, at release, in arrival order. */
  dispatch(up: Upstream): void;
}

export interface Transition { at: number; what: string; detail: string }

export const MAX_HOLD_TIMEOUT_MS = 600_000;

export class Switcher {
  target: Upstream;
  readonly upstreams = new Map<string, Upstream>();
  held = false;
  holdStartedAt = 0;
  holdDeadline = 0;
  /** The target when the hold began: where the hard timeout sends held requests unless committed. */
  holdOrigin: Upstream;
  /** The switch under this hold is decided: the hard timeout releases to the current target. */
  committed = false;
  private holdTimer: NodeJS.Timeout | undefined;
  private readonly queue = new Map<number, HeldRequest>();
  private nextId = 1;
  inFlight = 0;
  private drainWaiters = new Set<() => void>();
  readonly transitions: Transition[] = [];

  constructor(first: Upstream, private readonly recorder: Recorder, private readonly queueSize: number) {
    this.target = first;
    this.holdOrigin = first;
    this.upstreams.set(first.name, first);
  }

  get heldCount(): number { return this.queue.size; }

  /** Queues a request during a hold. Returns its id, or undefined when the queue is full. */
  enqueue(h: HeldRequest): number | undefined {
    if (this.queue.size >= this.queueSize) return undefined;
    const id = this.nextId++;
    this.queue.set(id, h);
    return id;
  }

  /** A held client went away: it must not be sent anywhere. */
  cancel(id: number): boolean { return this.queue.delete(id); }

  begin(): void { this.inFlight += 1; }

  end(): void {
    this.inFlight -= 1;
    if (this.inFlight === 0 && this.drainWaiters.size) for (const w of [...this.drainWaiters]) w();
  }

  /** Resolves true once nothing is in flight, false at the timeout. */
  waitDrained(timeoutMs: number): Promise<boolean> {
    if (this.inFlight === 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      const done = (ok: boolean): void => { clearTimeout(timer); this.drainWaiters.delete(w); resolve(ok); };
      const w = (): void => done(true);
      const timer = setTimeout(() => done(false), timeoutMs);
      this.drainWaiters.add(w);
    });
  }

  register(up: Upstream): { changed: boolean } {
    const had = this.upstreams.get(up.name);
    if (had && had.url === up.url) { up.agent.destroy(); return { changed: false } }
    if (had && (had === this.target || had === this.holdOrigin)) {
      up.agent.destroy();
      throw imagoError('INGRESS_BAD_TRANSITION', `upstream '${up.name}' is in use (target or hold origin); register the new version under another name`);
    }
    had?.agent.destroy();
    this.upstreams.set(up.name, up);
    this.note('upstream', `${up.name}=${up.url}`);
    return { changed: true };
  }

  hold(timeoutMs: number): { changed: boolean } {
    if (!Number.isInteger(timeoutMs) || timeoutMs < 1 || timeoutMs > MAX_HOLD_TIMEOUT_MS) {
      throw imagoError('INGRESS_BAD_REQUEST', `hold timeoutMs must be an integer in 1..${MAX_HOLD_TIMEOUT_MS}, got ${JSON.stringify(timeoutMs)}`);
    }
    // Idempotent: a retried hold neither restarts nor extends the hard timeout,
    // so a driver that keeps retrying cannot stretch the pause.
    if (this.held) return { changed: false };
    this.held = true;
    this.holdStartedAt = Date.now();
    this.holdDeadline = this.holdStartedAt + timeoutMs;
    this.holdOrigin = this.target;
    this.holdTimer = setTimeout(() => this.onHoldTimeout(timeoutMs), timeoutMs);
    this.note('hold', `timeout ${timeoutMs} ms, target ${this.target.name}, in flight ${this.inFlight}`);
    return { changed: true };
  }

  switchTo(name: string): { changed: boolean } {
    const up = this.upstreams.get(name);
    if (!up) throw imagoError('INGRESS_BAD_TRANSITION', `unknown upstream '${name}'; register it with POST /upstreams first (known: ${[...this.upstreams.keys()].join(', ')})`);
    if (up === this.target) return { changed: false };
    if (this.committed) throw imagoError('INGRESS_BAD_TRANSITION', `the switch to '${this.target.name}' is committed (forward only): release, then hold again to switch elsewhere`);
    // Atomicity: the target may change only while held AND drained, so every
    // request the old target serves has ended before the first one is sent to
    // the new target (held requests go out only at release).
    if (!this.held) throw imagoError('INGRESS_BAD_TRANSITION', `switch to '${name}' needs a hold first (state is forward)`);
    if (this.inFlight > 0) throw imagoError('INGRESS_BAD_TRANSITION', `switch to '${name}' needs a drained hold; ${this.inFlight} request(s) still in flight (wait with GET /drained)`);
    const from = this.target.name;
    this.target = up;
    this.note('switch', `${from} -> ${name}`);
    return { changed: true };
  }

  /**
   * Decides the switch under this hold: from now on the hard timeout releases
   * to the current target instead of going back. Needs a hold and a switch
   * under it; idempotent.
   */
  commit(): { changed: boolean } {
    if (!this.held) throw imagoError('INGRESS_BAD_TRANSITION', 'commit needs a hold with a switch under it (state is forward)');
    if (this.target === this.holdOrigin) throw imagoError('INGRESS_BAD_TRANSITION', `commit needs a switch under this hold; the target is still '${this.target.name}', where the hold began`);
    if (this.committed) return { changed: false };
    this.committed = true;
    this.note('commit', `${this.holdOrigin.name} -> ${this.target.name} decided; a hold timeout now releases to ${this.target.name}`);
    return { changed: true };
  }

  release(reason = 'released by control call'): { changed: boolean; released: number } {
    if (!this.held) return { changed: false, released: 0 };
    clearTimeout(this.holdTimer);
    this.holdTimer = undefined;
    this.held = false;
    this.committed = false;
    const waiting = [...this.queue.values()];
    this.queue.clear();
    this.note('release', `${reason}: ${waiting.length} held request(s) to ${this.target.name} after ${Date.now() - this.holdStartedAt} ms`);
    // Map iteration is insertion order: held requests go out in arrival order.
    for (const h of waiting) h.dispatch(this.target);
    return { changed: true, released: waiting.length };
  }

  /**
   * Bounded pause: the driver died or is slow. Going back to the old target is
   * safe even after a switch, because while held nothing was sent to the new
   * one. Once committed it is not: other interceptors of the fleet may already
   * serve the new target, so the held requests go forward.
   */
  private onHoldTimeout(timeoutMs: number): void {
    this.recorder.count('autoReleases');
    if (this.committed) { this.release(`hold timeout after ${timeoutMs} ms without release; committed, so released forward`); return; }
    const switched = this.target !== this.holdOrigin;
    if (switched) { this.note('switch', `${this.target.name} -> ${this.holdOrigin.name} (hold timeout)`); this.target = this.holdOrigin; }
    this.release(`hold timeout after ${timeoutMs} ms without release${switched ? '; switched back to the old target' : ''}`);
  }

  private note(what: string, detail: string): void {
    this.transitions.push({ at: Date.now(), what, detail });
    if (this.transitions.length > 200) this.transitions.shift();
  }

  /** Releases everything to the current target and stops the timer (used by close()). */
  shutdown(): void {
    if (this.held) this.release('interceptor closing');
  }
}
