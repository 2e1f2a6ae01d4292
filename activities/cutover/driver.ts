/**
 * The cut-over driver: one straight script over the steps (live or dry run),
 * the reconcile that reads the real state at the start of every attempt, and
 * the forward completion used once the point of no return has passed.
 */
import { commitAll, holdAll, releaseAll, restoreAll, switchAll, waitDrainedAll, type IngressControlClient, type IngressStatus } from '../../interceptors/ingress';
import { imagoError } from '../../lib/errors';
import { flushTo, readUoldPosition } from '../../transfer/flush';
import type { CutoverReport } from '../../workflows/status';
import { expectSwitched } from './live-steps';
import type { CutoverContext, CutoverSteps } from './steps';

export { emptyCutoverReport as emptyReport } from '../../workflows/upgrade-state';

/** Thrown by runCutover when a step failed before the point of no return; every interceptor was put back on Uold. */
export class NotSwitched extends Error {
  constructor(message: string, readonly restoreProblems: string[]) { super(message); }
}

/**
 * Runs the steps in order. Before the point of no return a failure restores
 * every interceptor and throws NotSwitched. From the point of no return on, a
 * failure is thrown as it is: the caller may only finish the switch.
 */
export async function runCutover(steps: CutoverSteps, ctx: CutoverContext, report: CutoverReport): Promise<void> {
  const expectActive = () => { if (ctx.cancelled.aborted) throw imagoError('IMAGO_CUTOVER_FAILED', 'this cut-over attempt was cancelled (a newer attempt took over, or the upgrade ended)'); };
  const lap = (() => { let t = performance.now(); return () => { const now = performance.now(); const d = now - t; t = now; return d; }; })();
  ctx.beat('prepare');
  try {
    await steps.prepare();
  } catch (err) {
    // Why NotSwitched: nobody is held and nothing is switched yet. Thrown as it was, the caller took any
    // error that is not NotSwitched for one past the point of no return and finished the switch forward:
    // a mismatch found by the verification before the hold would have switched to Unew unverified.
    throw new NotSwitched(`preparing the cut-over: ${(err as Error).message}`, ctx.cancelled.aborted ? [] : await steps.restore());
  }
  expectActive();
  const t0 = performance.now();
  lap();
  try {
    ctx.beat('hold');
    await steps.hold(); report.holdMs = lap();
    expectActive();
    await steps.waitDrained(); report.drainMs = lap();
    expectActive();
    const position = await steps.readFinalPosition();
    await steps.flush(position); report.flushMs = lap();
    expectActive();
    await steps.verifyWindow(); report.verifyMs = lap();
    await steps.smokeTest(); report.smokeMs = lap();
    expectActive();
    await steps.switchInterceptors(); report.switchMs = lap();
    expectActive();
  } catch (err) {
    // A cancelled attempt touches nothing more: the attempt that replaced it
    // reconciles, and every hold ends by its own hard timeout otherwise.
    const problems = ctx.cancelled.aborted ? [] : await steps.restore();
    throw new NotSwitched((err as Error).message, problems);
  }
  // ---- POINT OF NO RETURN ------------------------------------------------
  // Recorded durably before the first step that can let Unew serve (the
  // provider's switch, the interceptors' commit). From here no path undoes
  // anything: every failure is finished forward, by this attempt or the next.
  ctx.beat('point of no return');
  try {
    await steps.recordPointOfNoReturn(); report.recordMs = lap();
  } catch (err) {
    // Not recorded (as far as this attempt knows): nothing is committed yet, so
    // it is still safe to go back. Should the record have reached the workflow
    // after all, its next attempt finishes forward from this clean state.
    throw new NotSwitched(`recording the point of no return: ${(err as Error).message}`, ctx.cancelled.aborted ? [] : await steps.restore());
  }
  // Commit before the provider's switch: once a load balancer may send
  // clients to Unew, no interceptor's hold may time out back to Uold.
  await steps.commitInterceptors(); report.releaseMs = lap();
  await steps.switchProvider(); report.providerMs = lap();
  await steps.release(); report.releaseMs += lap();
  report.totalMs = performance.now() - t0;
  report.switched = true;
}

/** What an attempt finds when it starts: each interceptor's state (null: unreachable) and the provider's routing. */
export interface FleetState {
  interceptors: Array<IngressStatus | null>;
  provider: Awaited<ReturnType<CutoverContext['provider']['trafficState']>> | 'unknown';
}

/**
 * A dead attempt's holds, never committed: each interceptor put back where it
 * forwarded before that hold (`fallback` when the record names no origin),
 * so the next attempt starts from nobody held.
 */
export async function releaseDeadHolds(ctx: CutoverContext, state: FleetState, fallback?: string): Promise<void> {
  const held = state.interceptors.map((s, i) => (s?.hold ? i : -1)).filter((i) => i >= 0);
  if (held.length) await restoreAll(held.map((i) => ctx.clients[i]), held.map((i) => state.interceptors[i]!.hold!.origin ?? fallback ?? ''));
}

/** The report of an attempt that failed before its point of no return: every client back where it was. */
export function restoredReport(report: CutoverReport, err: NotSwitched): CutoverReport {
  const problems = err.restoreProblems.length ? `; restore problems: ${err.restoreProblems.join(' | ')}` : '';
  return { ...report, mode: 'restored', switched: false, error: `${err.message}${problems}` };
}

export async function readFleetState(ctx: CutoverContext): Promise<FleetState> {
  const interceptors = await Promise.all(ctx.clients.map((c) => c.status().catch(() => null)));
  const provider = await ctx.provider.trafficState(ctx.handle).catch(() => 'unknown' as const);
  return { interceptors, provider };
}

/**
 * Whether the real state shows the point of no return passed: an interceptor
 * released to the target (Unew, or Uold for a rollback) or committed to it,
 * or the provider routing to it.
 */
export function passedPointOfNoReturn(s: FleetState, to: { side: 'unew' | 'uold'; upstream: string } = { side: 'unew', upstream: 'unew' }): boolean {
  return s.provider === to.side || s.provider === 'partial'
    || s.interceptors.some((st) => !!st && st.target === to.upstream && (!st.hold || st.hold.committed));
}

/**
 * Finishes a switch that passed the point of no return: the provider routes
 * to Unew, and every interceptor serves Unew, released. Interceptors still on
 * Uold (their hold timed out before they were committed, or they were never
 * switched) are moved as a fleet, like in a fresh cut-over: held together,
 * drained, Unew flushed to Uold's position (the writes they let through to
 * Uold are copied first), switched, committed, released. Interceptors that do
 * not answer are retried until `deadline`; then a retryable error names them,
 * so the next attempt goes on.
 */
export async function completeForward(ctx: CutoverContext, report: CutoverReport, deadline: number): Promise<void> {
  const { provider, handle, to } = ctx;
  report.mode = 'forward';
  report.pointOfNoReturn = true;
  const t0 = performance.now();
  ctx.beat('forward: provider');
  const routing = await provider.trafficState(handle);
  if (routing !== to.side && routing !== 'none') {
    const prepared = await provider.prepareSwitch(handle, to.side);
    await provider.applySwitch(handle, prepared);
    await expectSwitched(ctx, prepared);
  }
  report.providerMs = performance.now() - t0;
  let problems: string[] = [];
  for (;;) {
    ctx.beat('forward: interceptors');
    problems = [];
    const statuses = await Promise.all(ctx.clients.map((c) => c.status().catch((err: Error) => { problems.push(`${c.baseUrl}: ${err.message}`); return null; })));
    const held = ctx.clients.filter((_, i) => statuses[i]?.hold && statuses[i]!.target === to.upstream);
    const onUold = ctx.clients.filter((_, i) => statuses[i] && statuses[i]!.target !== to.upstream);
    try {
      // Held on Unew (switched, maybe committed): decide and release.
      for (const c of held) { await c.commit(); await c.release(); }
      if (onUold.length) await moveFleet(onUold, ctx);
    } catch (err) {
      problems.push((err as Error).message);
    }
    if (!problems.length) break;
    if (Date.now() >= deadline || ctx.cancelled.aborted) break;
    await new Promise((r) => setTimeout(r, 250));
  }
  report.releaseMs = performance.now() - t0 - report.providerMs;
  report.totalMs = performance.now() - t0;
  if (problems.length) throw imagoError('INGRESS_FLEET_PARTIAL', `past the point of no return, not yet on ${to.side === 'unew' ? 'Unew' : 'Uold'}: ${problems.join(' | ')}`);
  report.switched = true;
}

/** Moves interceptors that serve Uold to Unew together: hold all, drain, flush, switch, commit, release. */
async function moveFleet(clients: IngressControlClient[], ctx: CutoverContext): Promise<void> {
  const { plan, to } = ctx;
  const olds = await Promise.all(clients.map(async (c) => {
    const st = await c.status();
    if (st.upstreams[to.upstream] !== to.appUrl) await c.addUpstream(to.upstream, to.appUrl);
    return st.target;
  }));
  await holdAll(clients, plan.switchover.holdTimeoutMs);
  try {
    await waitDrainedAll(clients, plan.switchover.drainTimeoutMs);
    await flushTo(ctx.targetUrl, to.database, await readUoldPosition(ctx.sourceUrl), plan.switchover.flushTimeoutMs);
    await switchAll(clients, to.upstream);
  } catch (err) {
    // Not committed yet: these go back to where they were, and the next round tries again.
    await restoreAll(clients, olds);
    throw err;
  }
  await commitAll(clients);
  await releaseAll(clients);
}
