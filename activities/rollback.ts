/**
 * The activities of the post-switchover window when the plan wants rollback:
 *  - runReverse: the reverse replication (transfer/reverse.ts) from Unew's
 *    position at the point of no return into Uold, until cancelled; its
 *    progress in heartbeat details; a retry resumes from Uold's own state;
 *  - watchWindow: the reverse's lag as Uold records it, and the automatic
 *    rollback's rules over the interceptors' served records;
 *  - finishRollback: after every client is back on Uold, the reverse's state
 *    is removed from Uold, and Unew destroyed or kept per the plan.
 * The cut-over back to Uold itself is `rollBack` (activities/cutover/rollback.ts).
 */
import { Context } from '@temporalio/activity';
import type { UpgradePlan } from '../plan/types';
import type { UnewHandle } from '../providers/provider';
import { readUoldPosition } from '../transfer/flush';
import { readAppliedGtid, readFollowerLag } from '../transfer/meta';
import { GtidPosition } from '../transfer/position';
import { dropReverseState, ReverseStream, type ReverseProgress } from '../transfer/reverse';
import { connect } from '../lib/sql';
import { baselineP99, evaluateRules, type RuleResult, type ServedSample } from '../workflows/rollback-rules';
import { ingressClients, loadConversion, readerServerId, unewAdminUrl, uoldWriterUrl } from './context';

export interface ReverseArgs { workflowId: string; handle: UnewHandle; plan: UpgradePlan; startPosition: string }

export interface WindowReport {
  at: number;
  /** The reverse replication as Uold records it: applied position, lag, and how many Unew transactions it is behind. */
  reverse: { appliedPosition: string | null; lagMs: number | null; behind: number | null; error?: string };
  /** Uold's p99 before the switch (ms), measured at the first look and kept by the workflow. */
  baselineP99Ms: number | null;
  rules: RuleResult[];
}

/** How many served records per interceptor the rules read (the newest). */
const RECORDS_READ = 4_000;

export function createRollbackWindowActivities() {
  return {
    async runReverse(args: ReverseArgs): Promise<ReverseProgress> {
      const { handle, plan } = args;
      let actx: Context | undefined;
      try { actx = Context.current(); } catch { /* unit tests */ }
      const stream = new ReverseStream({
        source: { url: unewAdminUrl(handle, plan), database: handle.db.database },
        target: { url: uoldWriterUrl(plan), database: plan.uold.db.database },
        conversion: loadConversion(plan), startPosition: args.startPosition, serverId: readerServerId(handle.upgradeId, 'reverse'),
      });
      const ac = new AbortController();
      const onCancel = () => ac.abort();
      actx?.cancellationSignal.addEventListener('abort', onCancel);
      // Progress goes in heartbeats (no history event); a cancellation reaches a heartbeating activity.
      const beat = setInterval(() => actx?.heartbeat(stream.progress()), 1_000);
      try {
        await stream.run(ac.signal);
        return stream.progress();
      } finally {
        clearInterval(beat);
        actx?.cancellationSignal.removeEventListener('abort', onCancel);
      }
    },

    async watchWindow(args: { handle: UnewHandle; plan: UpgradePlan; baselineP99Ms: number | null }): Promise<WindowReport> {
      const { handle, plan } = args;
      const out: WindowReport = { at: Date.now(), reverse: { appliedPosition: null, lagMs: null, behind: null }, baselineP99Ms: args.baselineP99Ms, rules: [] };
      if (plan.postSwitchover.rollback?.enabled) {
        try {
          const c = await connect(uoldWriterUrl(plan), { database: plan.uold.db.database });
          try {
            const applied = await readAppliedGtid(c);
            const lag = await readFollowerLag(c).catch(() => null);
            const now = await readUoldPosition(unewAdminUrl(handle, plan));
            out.reverse = { appliedPosition: applied, lagMs: lag ? Math.round(Math.max(lag.lagMs, 0)) : null, behind: applied === null ? null : GtidPosition.parse(applied).behind(now) };
          } finally { await c.end().catch(() => undefined); }
        } catch (err) {
          out.reverse.error = (err as Error).message.split('\n')[0].slice(0, 300);
        }
      }
      const rules = plan.postSwitchover.autoRollback;
      if (rules?.enabled) {
        const records: ServedSample[] = [];
        for (const c of ingressClients(plan)) {
          const st = await c.status();
          const since = Math.max(0, (st.counters.served ?? 0) - RECORDS_READ);
          records.push(...await c.servedAll(since));
        }
        out.baselineP99Ms = args.baselineP99Ms ?? baselineP99(records);
        out.rules = evaluateRules(records, Date.now(), out.baselineP99Ms, rules);
      }
      return out;
    },

    async finishRollback(handle: UnewHandle, plan: UpgradePlan): Promise<{ reverseStateDropped: boolean }> {
      await dropReverseState({ url: uoldWriterUrl(plan), database: plan.uold.db.database });
      return { reverseStateDropped: true };
    },
  };
}
