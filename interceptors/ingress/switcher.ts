/**
 * The switcher: which upstream serves, and the quiescence around changing it,
 * as pure functions from one switch record to the next (record.ts). The
 * control API applies them with a compare-and-set at the data plane.
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
 * The hard timeout is enforced by the data plane itself (every worker checks
 * the deadline): each held record carries the record to apply then
 * (timeoutPlan), so it fires even when this control process is gone.
 *
 * Every transition is idempotent (Temporal retries activities): asking for
 * the state you are already in succeeds and changes nothing. A transition
 * that is impossible now throws INGRESS_BAD_TRANSITION with the reason.
 */
import { imagoError } from '../../lib/errors';
import { upstreamOf, type MirrorSettings, type SwitchRecord, type TimeoutPlan, type UpstreamEntry } from './record';

export const MAX_HOLD_TIMEOUT_MS = 600_000;
/** Upstreams one interceptor keeps (the state file holds them all). */
export const MAX_UPSTREAMS = 64;

export type Note = [what: string, detail: string];

export interface Transition {
  changed: boolean;
  next: SwitchRecord;
  notes: Note[];
  /** The data plane must find nothing in flight when it stores `next` (a switch). */
  needsDrained?: boolean;
}

/** Filled in by the data plane when it stores the record: the requests held, and in flight, at that moment. */
export const HELD_PLACEHOLDER = '%HELD%';
export const IN_FLIGHT_PLACEHOLDER = '%INFLIGHT%';

const same = (rec: SwitchRecord): Transition => ({ changed: false, next: rec, notes: [] });

export function hold(rec: SwitchRecord, timeoutMs: number, now: number): Transition {
  if (!Number.isInteger(timeoutMs) || timeoutMs < 1 || timeoutMs > MAX_HOLD_TIMEOUT_MS) {
    throw imagoError('INGRESS_BAD_REQUEST', `hold timeoutMs must be an integer in 1..${MAX_HOLD_TIMEOUT_MS}, got ${JSON.stringify(timeoutMs)}`);
  }
  // Idempotent: a retried hold neither restarts nor extends the hard timeout,
  // so a driver that keeps retrying cannot stretch the pause.
  if (rec.held) return same(rec);
  const next: SwitchRecord = { ...rec, held: true, origin: rec.target, committed: false, startedAt: now, deadline: now + timeoutMs, timeoutMs };
  return { changed: true, next, notes: [['hold', `timeout ${timeoutMs} ms, target ${rec.target}, in flight ${IN_FLIGHT_PLACEHOLDER}`]] };
}

export function switchTo(rec: SwitchRecord, name: string, inFlight: number): Transition {
  if (!upstreamOf(rec, name)) {
    throw imagoError('INGRESS_BAD_TRANSITION', `unknown upstream '${name}'; register it with POST /upstreams first (known: ${rec.upstreams.map((u) => u.name).join(', ')})`);
  }
  if (name === rec.target) return same(rec);
  if (rec.held && rec.committed) throw imagoError('INGRESS_BAD_TRANSITION', `the switch to '${rec.target}' is committed (forward only): release, then hold again to switch elsewhere`);
  // Atomicity: the target may change only while held AND drained, so every
  // request the old target serves has ended before the first one is sent to
  // the new target (held requests go out only at release). The data plane
  // checks "nothing in flight" again when it stores the record.
  if (!rec.held) throw imagoError('INGRESS_BAD_TRANSITION', `switch to '${name}' needs a hold first (state is ${rec.mirror.on ? 'mirror' : 'forward'})`);
  if (inFlight > 0) throw inFlightError(name, inFlight);
  let mirror: MirrorSettings = rec.mirror.shadow === name ? { ...rec.mirror, on: false } : rec.mirror;
  // Serving from the sandbox writes' shadow is refused by nothing else: at least never copy writes into the target.
  if (mirror.writeShadow === name) mirror = { ...mirror, writeShadow: null };
  return { changed: true, next: { ...rec, target: name, mirror }, notes: [['switch', `${rec.target} -> ${name}`]], needsDrained: true };
}

export const inFlightError = (name: string, inFlight: number) =>
  imagoError('INGRESS_BAD_TRANSITION', `switch to '${name}' needs a drained hold; ${inFlight} request(s) still in flight (wait with GET /drained)`);

/**
 * Decides the switch under this hold: from now on the hard timeout releases
 * to the current target instead of going back. Needs a hold and a switch
 * under it; idempotent.
 */
export function commit(rec: SwitchRecord): Transition {
  if (!rec.held) throw imagoError('INGRESS_BAD_TRANSITION', 'commit needs a hold with a switch under it (state is forward)');
  if (rec.target === rec.origin) throw imagoError('INGRESS_BAD_TRANSITION', `commit needs a switch under this hold; the target is still '${rec.target}', where the hold began`);
  if (rec.committed) return same(rec);
  return { changed: true, next: { ...rec, committed: true }, notes: [['commit', `${rec.origin} -> ${rec.target} decided; a hold timeout now releases to ${rec.target}`]] };
}

export function release(rec: SwitchRecord, now: number, reason = 'released by control call'): Transition {
  if (!rec.held) return same(rec);
  const next: SwitchRecord = { ...rec, held: false, committed: false, origin: rec.target, startedAt: 0, deadline: 0, timeoutMs: 0 };
  return { changed: true, next, notes: [['release', `${reason}: ${HELD_PLACEHOLDER} held request(s) to ${rec.target} after ${Math.round(now - rec.startedAt)} ms`]] };
}

/**
 * The bounded pause: what the data plane applies at the deadline (the driver
 * died or is slow). Going back to the old target is safe even after a switch,
 * because while held nothing was sent to the new one. Once committed it is
 * not: other interceptors of the fleet may already serve the new target, so
 * the held requests go forward.
 */
export function timeoutPlan(rec: SwitchRecord): TimeoutPlan {
  const base = `hold timeout after ${rec.timeoutMs} ms without release`;
  const back = !rec.committed && rec.target !== rec.origin;
  const target = rec.committed ? rec.target : rec.origin;
  const record: SwitchRecord = { ...rec, target, origin: target, held: false, committed: false, startedAt: 0, deadline: 0, timeoutMs: 0 };
  if (rec.committed) return { record, reason: `${base}; committed, so released forward` };
  if (back) return { record, switchNote: `${rec.target} -> ${rec.origin} (hold timeout)`, reason: `${base}; switched back to the old target` };
  return { record, reason: base };
}

/** Registers (or re-points) an upstream; the live target and the hold's origin cannot be re-pointed. */
export function register(rec: SwitchRecord, up: Omit<UpstreamEntry, 'idx'>): Transition {
  const had = upstreamOf(rec, up.name);
  if (had && had.url === up.url) return same(rec);
  if (had && (had.name === rec.target || had.name === rec.origin)) {
    throw imagoError('INGRESS_BAD_TRANSITION', `upstream '${up.name}' is in use (target or hold origin); register the new version under another name`);
  }
  if (!had && rec.upstreams.length >= MAX_UPSTREAMS) throw imagoError('INGRESS_BAD_TRANSITION', `already ${MAX_UPSTREAMS} upstreams registered; re-register an unused name instead of adding one`);
  const idx = had ? had.idx : Math.max(0, ...rec.upstreams.map((u) => u.idx)) + 1;
  const entry: UpstreamEntry = { ...up, idx };
  const upstreams = had ? rec.upstreams.map((u) => (u.name === up.name ? entry : u)) : [...rec.upstreams, entry];
  return { changed: true, next: { ...rec, upstreams }, notes: [['upstream', `${up.name}=${up.url}`]] };
}

export interface MirrorConfig {
  on: boolean;
  shadow?: string;
  percent?: number;
  methods?: string[];
  /** The sandbox that sampled writes are copied to; null stops mirroring writes; absent keeps the current one. */
  writeShadow?: string | null;
  writePercent?: number;
  writeMethods?: string[];
}

const SAFE = new Set(['GET', 'HEAD', 'OPTIONS']);

/** Equal settings, reading the write keys of a record from an older interceptor as their defaults. */
function sameMirror(a: MirrorSettings, b: MirrorSettings): boolean {
  const key = (x: MirrorSettings) => JSON.stringify([x.on, x.shadow, x.percent, x.methods, x.writeShadow ?? null, x.writePercent ?? 100, x.writeMethods?.length ? x.writeMethods : DEFAULT_WRITE_METHODS]);
  return key(a) === key(b);
}
export const DEFAULT_WRITE_METHODS = ['POST', 'PUT', 'PATCH', 'DELETE'];

export function configureMirror(rec: SwitchRecord, cfg: MirrorConfig): Transition {
  const m = rec.mirror;
  if (!cfg.on) return m.on ? { changed: true, next: { ...rec, mirror: { ...m, on: false, writeShadow: null } }, notes: [['mirror', 'off']] } : same(rec);
  const shadow = cfg.shadow ?? m.shadow;
  if (!shadow || !upstreamOf(rec, shadow)) {
    throw imagoError('INGRESS_BAD_TRANSITION', `mirror needs a registered shadow upstream (got ${JSON.stringify(cfg.shadow)}; known: ${rec.upstreams.map((u) => u.name).join(', ')})`);
  }
  if (shadow === rec.target) throw imagoError('INGRESS_BAD_TRANSITION', `the shadow '${shadow}' is the current target; mirror to another upstream`);
  const methods = cfg.methods !== undefined ? [...new Set(cfg.methods.map((x) => x.toUpperCase()))] : m.methods;
  const writeShadow = cfg.writeShadow !== undefined ? cfg.writeShadow : m.writeShadow ?? null;
  const writeMethods = cfg.writeMethods !== undefined ? [...new Set(cfg.writeMethods.map((x) => x.toUpperCase()))] : m.writeMethods?.length ? m.writeMethods : DEFAULT_WRITE_METHODS;
  if (writeShadow) {
    // Safety: a copied write changes data where it lands. Never into the read
    // shadow (Unew must stay exactly convert(Uold)) nor into the target (the
    // live system would apply every write twice): only into a sandbox.
    if (!upstreamOf(rec, writeShadow)) throw imagoError('INGRESS_BAD_TRANSITION', `writeShadow '${writeShadow}' is not a registered upstream (known: ${rec.upstreams.map((u) => u.name).join(', ')})`);
    if (writeShadow === shadow) throw imagoError('INGRESS_BAD_TRANSITION', `writeShadow '${writeShadow}' is the read shadow: writes are mirrored only into a sandbox, never into the universe that mirrored reads are compared with`);
    if (writeShadow === rec.target || writeShadow === rec.origin) throw imagoError('INGRESS_BAD_TRANSITION', `writeShadow '${writeShadow}' serves live traffic: writes are mirrored only into a sandbox`);
    const safe = writeMethods.filter((x) => SAFE.has(x));
    if (safe.length) throw imagoError('INGRESS_BAD_TRANSITION', `writeMethods must not name safe methods (${safe.join(', ')}): reads are mirrored to the shadow`);
  }
  const mirror: MirrorSettings = {
    on: true, shadow, percent: cfg.percent ?? m.percent, methods,
    writeShadow, writePercent: cfg.writePercent ?? m.writePercent ?? 100, writeMethods,
  };
  if (sameMirror(mirror, m)) return same(rec);
  const writes = writeShadow ? `; writes (${mirror.writePercent}% of ${writeMethods.join(',')}) to ${writeShadow}` : '';
  return { changed: true, next: { ...rec, mirror }, notes: [['mirror', `to ${shadow}, ${mirror.percent}% of ${mirror.methods.join(',')}${writes}`]] };
}

/**
 * The target an interceptor restarting from a persisted record must serve:
 * the one its hard timeout would have chosen (an uncommitted hold goes back
 * to its origin, a committed one forward), so a restart never brings back
 * the old version after a decided switch.
 */
export function restoredTarget(rec: Pick<SwitchRecord, 'target' | 'origin' | 'held' | 'committed'>): string {
  return rec.held && !rec.committed ? rec.origin : rec.target;
}
