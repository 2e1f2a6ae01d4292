/**
 * Fleet coordination: several interceptors front one system, so quiescence
 * and the switch must cover all of them. The steps are exported one by one so
 * the upgrade workflow can run each as its own activity; fleetSwitchover runs
 * them as one straight script with timings.
 *
 *   holdAll → waitDrainedAll → flush (caller) → switchAll
 *     → point of no return (caller records it) → commitAll → releaseAll
 *
 * Before the point of no return every failure is undone by restoreAll (switch
 * back to the old target, release): Uold keeps serving, nothing was served by
 * Unew. From commitAll on, every interceptor's own hard timeout releases to
 * the new target too, so the only direction left is forward.
 */
import { imagoError, isImagoError } from '../../lib/errors';
import type { IngressControlClient } from './control-client';

export interface FleetTimings { holdMs: number; drainMs: number; flushMs: number; switchMs: number; releaseMs: number; totalMs: number }

export interface FleetSwitchoverOptions {
  target: string;
  holdTimeoutMs: number;
  drainTimeoutMs: number;
  /** The caller's data flush (E catches up to Uold's final position). */
  flush: () => Promise<void>;
  /** Called after every interceptor switched and before the first commit: the caller records its point of no return durably here. */
  onPointOfNoReturn?: () => Promise<void>;
}

/** Keep at least this share of the hold ahead when switching, so no hard timeout can fire between switch and release. */
const SWITCH_MARGIN = 0.25;

async function all<T>(clients: IngressControlClient[], step: string, fn: (c: IngressControlClient) => Promise<T>): Promise<T[]> {
  const results = await Promise.allSettled(clients.map(fn));
  const failed = results.flatMap((r, i) => (r.status === 'rejected' ? [`${clients[i].baseUrl}: ${(r.reason as Error)?.message ?? r.reason}`] : []));
  const first = results.find((r): r is PromiseRejectedResult => r.status === 'rejected')?.reason;
  // The first failure's code (a refused transition, an unreachable control API) tells the caller what happened.
  if (failed.length) throw imagoError(isImagoError(first) ? first.code : 'INGRESS_UNREACHABLE', `${step} failed at ${failed.length} of ${clients.length} interceptor(s): ${failed.join(' | ')}`, first);
  return results.map((r) => (r as PromiseFulfilledResult<T>).value);
}

/** Reads each interceptor's current target (the "old" one to go back to). */
export async function targetsOf(clients: IngressControlClient[]): Promise<string[]> {
  return (await all(clients, 'status', (c) => c.status())).map((s) => s.target);
}

/** Holds every interceptor; returns each hold's deadline (epoch ms). */
export async function holdAll(clients: IngressControlClient[], holdTimeoutMs: number): Promise<number[]> {
  return (await all(clients, 'hold', (c) => c.hold(holdTimeoutMs))).map((r) => r.deadline);
}

/**
 * Waits until every interceptor is still held and has nothing in flight.
 * A hold that ended on its own (hard timeout) is a failure: requests were
 * released to the old target, so the fleet is not quiescent.
 */
export async function waitDrainedAll(clients: IngressControlClient[], drainTimeoutMs: number): Promise<void> {
  const deadline = Date.now() + drainTimeoutMs;
  await all(clients, 'drain', async (c) => {
    for (;;) {
      const left = deadline - Date.now();
      const r = await c.drained(Math.max(0, Math.min(left, 60_000)));
      if (!r.held) throw imagoError('INGRESS_BAD_TRANSITION', `${c.baseUrl} is no longer held (its hard timeout released it)`);
      if (r.drained) return;
      if (Date.now() >= deadline) throw imagoError('INGRESS_DRAIN_TIMEOUT', `${c.baseUrl}: ${r.inFlight} request(s) still in flight after ${drainTimeoutMs} ms`);
    }
  });
}

export async function switchAll(clients: IngressControlClient[], target: string): Promise<void> {
  await all(clients, 'switch', (c) => c.switch(target));
}

/** Decides the switch at every interceptor (their hard timeouts now release forward). */
export async function commitAll(clients: IngressControlClient[]): Promise<void> {
  await all(clients, 'commit', (c) => c.commit());
}

export async function releaseAll(clients: IngressControlClient[]): Promise<void> {
  await all(clients, 'release', (c) => c.release());
}

/**
 * Forward only: repeats a step at the interceptors where it failed until it
 * succeeded everywhere or `deadline` passed; returns the failures left.
 */
export async function forwardUntil(clients: IngressControlClient[], step: (c: IngressControlClient) => Promise<unknown>, deadline: number): Promise<string[]> {
  let pending = clients;
  let problems: string[] = [];
  for (;;) {
    const results = await Promise.allSettled(pending.map(step));
    problems = results.flatMap((r, i) => (r.status === 'rejected' ? [`${pending[i].baseUrl}: ${(r.reason as Error)?.message ?? r.reason}`] : []));
    pending = pending.filter((_, i) => results[i].status === 'rejected');
    if (!pending.length || Date.now() >= deadline) return problems;
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * The undo of a switchover that has not been released: every interceptor back
 * to its old target, then released. Best effort on each; an interceptor that
 * does not answer releases to its old target by itself at its hard timeout.
 */
export async function restoreAll(clients: IngressControlClient[], oldTargets: string[]): Promise<string[]> {
  const problems: string[] = [];
  await Promise.all(clients.map(async (c, i) => {
    try { await c.switch(oldTargets[i]); await c.release(); } catch (e) { problems.push(`${c.baseUrl}: ${(e as Error).message}`); }
  }));
  return problems;
}

export async function fleetSwitchover(clients: IngressControlClient[], opts: FleetSwitchoverOptions): Promise<FleetTimings> {
  const t0 = performance.now();
  const oldTargets = await targetsOf(clients);
  const marks: number[] = [];
  const lap = (): void => { marks.push(performance.now()); };
  let deadlines: number[] = [];
  try {
    deadlines = await holdAll(clients, opts.holdTimeoutMs); lap();
    await waitDrainedAll(clients, opts.drainTimeoutMs); lap();
    await opts.flush(); lap();
    // Switch only if every hold has enough time left to be released by us:
    // a hard timeout between switch and release would send one interceptor's
    // held requests to the old target while the others serve from the new.
    const left = Math.min(...deadlines) - Date.now();
    // eslint-disable-next-line no-restricted-syntax -- caught below into INGRESS_FLEET_ABORTED, after every interceptor is restored
    if (left < opts.holdTimeoutMs * SWITCH_MARGIN) throw new Error(`only ${left} ms of the ${opts.holdTimeoutMs} ms hold left before switching; raise holdTimeoutMs`);
    await switchAll(clients, opts.target); lap();
  } catch (err) {
    const problems = await restoreAll(clients, oldTargets);
    const cause = (err as Error)?.message ?? String(err);
    throw imagoError('INGRESS_FLEET_ABORTED', `${cause}${problems.length ? `; restore problems: ${problems.join(' | ')}` : ''}`, err);
  }
  // Point of no return: from the first commit on, an interceptor's hard
  // timeout releases to the new target, so going back would mix versions.
  // The caller records it first; then commit and release are only repeated
  // (until the hold deadline) and reported, never undone.
  await opts.onPointOfNoReturn?.();
  const deadline = Math.min(...deadlines);
  const problems = await forwardUntil(clients, (c) => c.commit(), deadline);
  problems.push(...await forwardUntil(clients, (c) => c.release(), deadline));
  if (problems.length) throw imagoError('INGRESS_FLEET_PARTIAL', problems.join(' | '));
  lap();
  const [hold, drain, flush, sw, rel] = marks;
  return { holdMs: hold - t0, drainMs: drain - hold, flushMs: flush - drain, switchMs: sw - flush, releaseMs: rel - sw, totalMs: rel - t0 };
}
