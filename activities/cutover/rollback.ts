/**
 * The rollback's cut-over: every client back from Unew to Uold, with the
 * same driver and live steps as the upgrade's cut-over, the universes
 * swapped. The source is Unew (its binlog, its final position during the
 * hold), the target Uold (the reverse replication's writer account), the
 * conversion the reverse:
 *
 *   prepare (Uold registered, the rows changed since the switchover verified
 *   in Uold) → hold → waitDrained → Unew's final position → flush the reverse
 *   stream to it → verify the last window → smoke test on Uold → switch
 *   ── the rollback's point of no return ──
 *   → commit → provider → release
 *
 * Same pause budget and the same forward-only rules: before its point of no
 * return a failure puts every interceptor back on Unew (the upgrade stays in
 * its window, and rollback may be asked again); after it, every path only
 * finishes moving clients to Uold. A retried attempt (a worker crash)
 * reconciles from the real state first, as the upgrade's cut-over does.
 */
import { Context } from '@temporalio/activity';
import type { Client } from '@temporalio/client';
import { imagoError } from '../../lib/errors';
import type { UpgradePlan } from '../../plan/types';
import type { Provider, UnewHandle } from '../../providers/provider';
import { reverseModule } from '../../transfer/conversion';
import { rollbackPointOfNoReturnSignal, statusQuery } from '../../workflows/messages';
import type { CutoverReport } from '../../workflows/status';
import { ingressClients, loadConversion, unewAdminUrl, uoldWriterUrl } from '../context';
import { completeForward, emptyReport, NotSwitched, passedPointOfNoReturn, readFleetState, releaseDeadHolds, restoredReport, runCutover } from './driver';
import { LiveSteps } from './live-steps';
import { UNEW_UPSTREAM, type CutoverContext, type CutoverHooks } from './steps';

export interface RollbackArgs {
  workflowId: string;
  attempt: number;
  handle: UnewHandle;
  plan: UpgradePlan;
  /** Unew's position at the upgrade's point of no return: the rows changed since are verified in Uold. */
  startPosition: string;
  /** The workflow has recorded the rollback's point of no return: finish moving to Uold only. */
  pointOfNoReturn: boolean;
}

/** The interceptors' name for Uold (its upstream since before the upgrade). */
export const UOLD_UPSTREAM = 'uold';
const FORWARD_ATTEMPT_MS = 60_000;

export function createRollbackActivities(providerOf: (plan: UpgradePlan) => Provider, client: () => Client, hooks: CutoverHooks = {}) {
  async function contextOf(args: RollbackArgs, stage: { now: string; pnr: boolean }): Promise<CutoverContext> {
    let actx: Context | undefined;
    try { actx = Context.current(); } catch { /* outside an activity */ }
    const clients = ingressClients(args.plan).map((c, i) => hooks.wrapClient?.(c, i, { workflowId: args.workflowId, attempt: args.attempt }) ?? c);
    // Uold's application is still registered at every interceptor under its old name: the first that knows it says where.
    let appUrl = '';
    for (const c of clients) {
      appUrl = (await c.status().catch(() => null))?.upstreams[UOLD_UPSTREAM] ?? '';
      if (appUrl) break;
    }
    if (!appUrl) throw imagoError('INGRESS_UNREACHABLE', `no interceptor answered with Uold's upstream '${UOLD_UPSTREAM}'`);
    const conversion = reverseModule(loadConversion(args.plan));
    return {
      workflowId: args.workflowId, attempt: args.attempt, plan: args.plan, handle: args.handle, clients,
      provider: providerOf(args.plan), sourceUrl: unewAdminUrl(args.handle, args.plan), targetUrl: uoldWriterUrl(args.plan),
      to: { side: 'uold', upstream: UOLD_UPSTREAM, appUrl, database: args.plan.uold.db.database },
      sourceDatabase: args.handle.db.database, conversion: () => conversion,
      verifiedPosition: args.startPosition, reportedLagMs: null,
      recordPointOfNoReturn: async () => {
        stage.pnr = true;
        actx?.heartbeat({ stage: 'rollback point of no return', pnr: true, attempt: args.attempt });
        await client().workflow.getHandle(args.workflowId).signal(rollbackPointOfNoReturnSignal, { attempt: args.attempt, at: Date.now() });
      },
      beat: (now) => { stage.now = now; actx?.heartbeat({ stage: now, pnr: stage.pnr, attempt: args.attempt }); },
      cancelled: actx?.cancellationSignal ?? new AbortController().signal,
    };
  }

  return {
    async rollBack(args: RollbackArgs): Promise<CutoverReport> {
      let actx: Context | undefined;
      try { actx = Context.current(); } catch { /* outside an activity */ }
      const prior = actx?.info.heartbeatDetails as { pnr?: boolean } | undefined;
      const recorded = args.pointOfNoReturn || !!prior?.pnr
        || await client().workflow.getHandle(args.workflowId).query(statusQuery).then((st) => !!st.rollback?.pointOfNoReturnPassed, () => false);
      const stage = { now: 'reconcile', pnr: recorded };
      const ctx = await contextOf(args, stage);
      const report = emptyReport(args.attempt);
      const timer = actx ? setInterval(() => actx!.heartbeat({ stage: stage.now, pnr: stage.pnr, attempt: args.attempt }), 1_000) : undefined;
      try {
        const state = await readFleetState(ctx);
        if (stage.pnr || passedPointOfNoReturn(state, ctx.to)) {
          // An interceptor already serves Uold again (or the workflow says so): only forward, to Uold.
          if (!recorded) await ctx.recordPointOfNoReturn({ late: true });
          await completeForward(ctx, report, Date.now() + FORWARD_ATTEMPT_MS);
          return report;
        }
        // A dead attempt's hold, never committed: back to where it was (Unew) before starting over.
        await releaseDeadHolds(ctx, state, UNEW_UPSTREAM);
        const live = new LiveSteps(ctx, report);
        const steps = hooks.wrapSteps?.(live, ctx, 'rollback') ?? live;
        try {
          await runCutover(steps, ctx, report);
          return report;
        } catch (err) {
          if (err instanceof NotSwitched && !report.pointOfNoReturn) return restoredReport(report, err);
          await completeForward(ctx, report, Date.now() + FORWARD_ATTEMPT_MS);
          report.error = `completed forward (to Uold) after: ${(err as Error).message}`;
          return report;
        }
      } finally {
        if (timer) clearInterval(timer);
      }
    },
  };
}
