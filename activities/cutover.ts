/**
 * Termination and switchover in one bounded activity, because every round
 * trip through the Temporal server while the interceptors hold adds to the
 * clients' pause:
 *   hold every interceptor → wait until drained → read Uold's final position →
 *   flush Unew to it → verify the rows changed since the last full verification
 *   → smoke-test Unew → provider-level switch → switch every interceptor →
 *   release (POINT OF NO RETURN).
 * Any failure before the release puts every interceptor (and the provider)
 * back on Uold and reports switched=false: nothing was served by Unew.
 */
import type { UpgradePlan } from '../plan/types';
import type { Provider, UnewHandle } from '../providers/provider';
import type { CutoverReport } from '../workflows/status';
import { fleetSwitchover, releaseAll, switchAll } from '../interceptors/ingress';
import { flushTo, readUoldPosition } from '../transfer/flush';
import { verifyChangedSince } from '../transfer/verify';
import { ingressClients, loadConversion, readerServerId, uoldDbUrl, unewAdminUrl } from './context';

export const UNEW_UPSTREAM = 'unew';

export function createCutoverActivities(providerOf: (plan: UpgradePlan) => Provider) {
  return {
    async cutOver(args: { attempt: number; handle: UnewHandle; plan: UpgradePlan; verifiedPosition: string | null }): Promise<CutoverReport> {
      const { plan, handle, attempt } = args;
      const clients = ingressClients(plan);
      const report: CutoverReport = {
        attempt, switched: false, holdMs: 0, drainMs: 0, flushMs: 0, verifyMs: 0, switchMs: 0, releaseMs: 0, totalMs: 0,
        uoldPosition: '', changedRowsVerified: 0,
      };
      // A retry after the point of no return: some interceptor already points
      // at Unew, so the only safe direction is forward.
      const statuses = await Promise.all(clients.map((c) => c.status()));
      for (const [i, c] of clients.entries()) {
        if (statuses[i].upstreams[UNEW_UPSTREAM] !== handle.appUrls[0]) await c.addUpstream(UNEW_UPSTREAM, handle.appUrls[0]);
      }
      if (statuses.some((s) => s.target === UNEW_UPSTREAM)) {
        { const p = providerOf(plan); await p.applySwitch(handle, await p.prepareSwitch(handle, 'unew')); }
        await switchAll(clients, UNEW_UPSTREAM);
        await releaseAll(clients);
        return { ...report, switched: true, error: 'completed forward after a retry (the earlier attempt had switched)' };
      }

      const sourceUrl = uoldDbUrl(plan);
      const targetUrl = unewAdminUrl(handle);
      const verifyOptions = {
        source: { url: sourceUrl, database: plan.uold.db.database },
        target: { url: targetUrl, database: handle.db.database },
        conversion: loadConversion(plan), serverId: readerServerId(handle.upgradeId, 'cutover'),
        flushTimeoutMs: plan.switchover.flushTimeoutMs,
      };
      // Verify most of the window since the full verification *before* holding
      // anyone, so the check inside the hold covers only the last moments.
      // Nobody is held yet, so this check may wait for Unew longer than the hold's flush budget;
      // a failure here only means "not now": the workflow goes back to testing and tries again.
      let since = args.verifiedPosition;
      if (plan.verify.enabled && since) {
        try {
          const pre = await verifyChangedSince({ ...verifyOptions, flushTimeoutMs: Math.max(30_000, plan.switchover.flushTimeoutMs) }, since);
          const bad = [...pre.missing, ...pre.extra, ...pre.different];
          if (bad.length) return { ...report, error: `${bad.length} rows changed since the full verification differ in Unew (e.g. ${JSON.stringify(bad[0])})` };
          since = pre.position;
        } catch (err) {
          return { ...report, error: `verifying the rows changed since the full verification: ${(err as Error).message}` };
        }
      }
      let providerSwitched = false;
      try {
        const t = await fleetSwitchover(clients, {
          target: UNEW_UPSTREAM,
          holdTimeoutMs: plan.switchover.holdTimeoutMs,
          drainTimeoutMs: plan.switchover.drainTimeoutMs,
          flush: async () => {
            // Quiescent: nothing reaches Uold now, so its position is final.
            report.uoldPosition = await readUoldPosition(sourceUrl);
            await flushTo(targetUrl, handle.db.database, report.uoldPosition, plan.switchover.flushTimeoutMs);
            const v0 = Date.now();
            if (plan.verify.enabled && since) {
              const v = await verifyChangedSince(verifyOptions, since);
              report.changedRowsVerified = v.rowsChecked;
              const bad = v.missing.length + v.extra.length + v.different.length;
              if (bad > 0) throw new Error(`${bad} rows changed in the last window differ in Unew (e.g. ${JSON.stringify([...v.missing, ...v.extra, ...v.different][0])})`);
            }
            report.verifyMs = Date.now() - v0;
            // Fault-injection hook for the durability tests: a slow flush, so a
            // test can kill the worker while every interceptor holds.
            const delay = Number(process.env.IMAGO_TEST_CUTOVER_DELAY_MS ?? 0);
            if (delay > 0) await new Promise((r) => setTimeout(r, delay));
            const smoke = await fetch(handle.appUrls[0] + plan.switchover.smokePath, { signal: AbortSignal.timeout(1_000) });
            if (!smoke.ok) throw new Error(`smoke test ${plan.switchover.smokePath} on Unew answered ${smoke.status}`);
            { const p = providerOf(plan); await p.applySwitch(handle, await p.prepareSwitch(handle, 'unew')); }
            providerSwitched = true;
          },
        });
        Object.assign(report, { holdMs: t.holdMs, drainMs: t.drainMs, flushMs: t.flushMs - report.verifyMs, switchMs: t.switchMs, releaseMs: t.releaseMs, totalMs: t.totalMs, switched: true });
        return report;
      } catch (err) {
        const code = (err as { code?: string }).code;
        if (code === 'INGRESS_FLEET_PARTIAL') throw err; // past the point of no return: let Temporal retry forward
        if (providerSwitched) { const p = providerOf(plan); await p.applySwitch(handle, await p.prepareSwitch(handle, 'uold')); }
        return { ...report, switched: false, error: (err as Error).message };
      }
    },

    async collectIngressTimeline(plan: UpgradePlan, sinceMs: number) {
      const out: Array<{ at: number; count: number; errors: number; meanMs: number; maxMs: number }> = [];
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
