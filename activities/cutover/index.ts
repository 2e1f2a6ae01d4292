/**
 * The cut-over activities: `cutOver` (termination and switchover in one
 * bounded activity, because every round trip through the Temporal server
 * while the interceptors hold adds to the clients' pause), `checkCutover`
 * (its dry run), and `collectIngressTimeline` (for the report).
 *
 * Every attempt of `cutOver` starts by reading the real state: if an earlier
 * attempt passed the point of no return (the workflow says so, this
 * activity's heartbeat says so, or an interceptor or the load balancer
 * already routes to Unew), it only finishes the switch. Otherwise it undoes
 * whatever a dead attempt left held and runs the cut-over afresh.
 */
import { Context } from '@temporalio/activity';
import type { Client } from '@temporalio/client';
import type { UpgradePlan } from '../../plan/types';
import type { Provider, UnewHandle } from '../../providers/provider';
import { pointOfNoReturnSignal, statusQuery } from '../../workflows/messages';
import type { CutoverCheckReport, CutoverReport, UpgradeStatus } from '../../workflows/status';
import { readUoldPosition } from '../../transfer/flush';
import { ingressClients, loadConversion, uoldDbUrl, unewAdminUrl } from '../context';
import { DryRunSteps } from './dry-run';
import { completeForward, emptyReport, NotSwitched, passedPointOfNoReturn, readFleetState, releaseDeadHolds, restoredReport, runCutover } from './driver';
import { LiveSteps } from './live-steps';
import { UNEW_UPSTREAM, type CutoverContext, type CutoverHooks } from './steps';

export type { CutoverHooks, CutoverSteps, CutoverContext } from './steps';
export { UNEW_UPSTREAM } from './steps';

export interface CutoverArgs {
  workflowId: string;
  attempt: number;
  handle: UnewHandle;
  plan: UpgradePlan;
  verifiedPosition: string | null;
  /** The workflow has recorded the point of no return: finish forward only. */
  pointOfNoReturn: boolean;
  reportedLagMs?: number | null;
}

/** How long one attempt keeps finishing a switch forward before it lets Temporal retry it. */
const FORWARD_ATTEMPT_MS = 60_000;

export function createCutoverActivities(providerOf: (plan: UpgradePlan) => Provider, client: () => Client, hooks: CutoverHooks = {}) {
  /** The steps' context; `stage` is what the heartbeat says. */
  function contextOf(args: CutoverArgs, stage: { now: string; pnr: boolean }): CutoverContext {
    let actx: Context | undefined;
    try { actx = Context.current(); } catch { /* outside an activity (unit tests) */ }
    const clients = ingressClients(args.plan).map((c, i) => hooks.wrapClient?.(c, i, { workflowId: args.workflowId, attempt: args.attempt }) ?? c);
    const targetUrl = unewAdminUrl(args.handle, args.plan);
    return {
      workflowId: args.workflowId, attempt: args.attempt, plan: args.plan, handle: args.handle, clients,
      provider: providerOf(args.plan), sourceUrl: uoldDbUrl(args.plan), targetUrl,
      to: { side: 'unew', upstream: UNEW_UPSTREAM, appUrl: args.handle.appUrls[0], database: args.handle.db.database },
      sourceDatabase: args.plan.uold.db.database, conversion: () => loadConversion(args.plan),
      verifiedPosition: args.verifiedPosition, reportedLagMs: args.reportedLagMs ?? null,
      recordPointOfNoReturn: async (opts) => {
        stage.pnr = true;
        actx?.heartbeat({ stage: 'point of no return', pnr: true, attempt: args.attempt });
        // Why here, inside the hold: a rollback's reverse replication starts at
        // Unew's position now, before the target has served anyone, so it misses
        // nothing v2 writes. Found late (a retried attempt), clients may have been
        // served already: no position, and rollback is not offered.
        const unewPosition = args.plan.postSwitchover.rollback?.enabled && !opts?.late ? await readUoldPosition(targetUrl) : undefined;
        await client().workflow.getHandle(args.workflowId).signal(pointOfNoReturnSignal, { attempt: args.attempt, at: Date.now(), ...(unewPosition ? { unewPosition } : {}) });
      },
      beat: (now) => { stage.now = now; actx?.heartbeat({ stage: now, pnr: stage.pnr, attempt: args.attempt }); },
      cancelled: actx?.cancellationSignal ?? new AbortController().signal,
    };
  }

  /** Heartbeats every second while fn runs, so a dead worker is noticed within the heartbeat timeout and a live one never is. */
  async function beating<T>(stage: { now: string; pnr: boolean }, attempt: number, fn: () => Promise<T>): Promise<T> {
    let actx: Context | undefined;
    try { actx = Context.current(); } catch { return fn(); }
    const timer = setInterval(() => actx!.heartbeat({ stage: stage.now, pnr: stage.pnr, attempt }), 1_000);
    try { return await fn(); } finally { clearInterval(timer); }
  }

  return {
    async cutOver(args: CutoverArgs): Promise<CutoverReport> {
      let prior: { pnr?: boolean } | undefined;
      try { prior = Context.current().info.heartbeatDetails as { pnr?: boolean } | undefined; } catch { /* unit tests */ }
      // A retry gets the first attempt's arguments: ask the workflow itself
      // whether the point of no return was recorded since (a query adds no
      // history). The heartbeat and the real state below are the fallbacks.
      const recorded = args.pointOfNoReturn || !!prior?.pnr
        || await client().workflow.getHandle(args.workflowId).query(statusQuery).then((st) => st.pointOfNoReturnPassed, () => false);
      const stage = { now: 'reconcile', pnr: recorded };
      const ctx = contextOf(args, stage);
      const report = emptyReport(args.attempt);
      return beating(stage, args.attempt, async () => {
        const state = await readFleetState(ctx);
        if (stage.pnr || passedPointOfNoReturn(state)) {
          // Forward only. The workflow may not know yet (a crash right after
          // the first commit): tell it before doing anything else.
          if (!recorded) await ctx.recordPointOfNoReturn({ late: true });
          await ctx.provider.markServing(ctx.handle, true);
          await completeForward(ctx, report, Date.now() + FORWARD_ATTEMPT_MS);
          return report;
        }
        // Before anyone is held: from here the universe may serve clients, and
        // garbage collection must keep it whatever happens to this worker.
        await ctx.provider.markServing(ctx.handle, true);
        // A dead attempt's hold, never committed: put it back before starting over.
        await releaseDeadHolds(ctx, state);
        const steps = hooks.wrapSteps?.(new LiveSteps(ctx, report), ctx, 'live') ?? new LiveSteps(ctx, report);
        try {
          await runCutover(steps, ctx, report);
          return report;
        } catch (err) {
          if (err instanceof NotSwitched && !report.pointOfNoReturn) {
            // Every client is back on Uold and Unew served nobody: it is a candidate universe again, not a live one.
            await ctx.provider.markServing(ctx.handle, false).catch(() => undefined);
            return restoredReport(report, err);
          }
          // Past the point of no return: finish forward now; if that is not
          // possible yet, the thrown error makes Temporal retry, forward again.
          await completeForward(ctx, report, Date.now() + FORWARD_ATTEMPT_MS);
          report.error = `completed forward after: ${(err as Error).message}`;
          return report;
        }
      });
    },

    async checkCutover(args: Omit<CutoverArgs, 'pointOfNoReturn'>): Promise<CutoverCheckReport> {
      const stage = { now: 'dry run', pnr: false };
      const ctx = contextOf({ ...args, pointOfNoReturn: false }, stage);
      return beating(stage, args.attempt, async () => {
        const dry = new DryRunSteps(ctx);
        const steps = hooks.wrapSteps?.(dry, ctx, 'dry-run') ?? dry;
        await runCutover(steps, ctx, emptyReport(args.attempt));
        return { ok: dry.checks.every((c) => c.ok), at: Date.now(), checks: dry.checks, verifiedPosition: dry.verifiedPosition };
      });
    },

    async collectIngressTimeline(plan: UpgradePlan, sinceMs: number): Promise<UpgradeStatus['series']['ingress']> {
      const out: UpgradeStatus['series']['ingress'] = [];
      for (const c of ingressClients(plan)) {
        const tl = await c.timeline(sinceMs);
        for (const b of tl.buckets) out.push({ at: b.t, count: b.count, errors: b.errors, meanMs: b.meanMs, maxMs: b.maxMs });
      }
      out.sort((a, b) => a.at - b.at);
      // Bounded for workflow history: keep the last 1,200 buckets (2 minutes at 100 ms).
      return out.slice(-1_200);
    },
  };
}
