/**
 * The long data-transfer activity: copy, then follow Uold until the workflow
 * says stop. A retry after a worker crash resumes from the state kept in
 * Unew (not from the heartbeat).
 *
 * Why progress goes in heartbeat details and not in signals: a signal per
 * tick adds events to the workflow's history for as long as the upgrade
 * runs (6,800 an hour at one every 2 s), and Temporal ends a workflow at
 * 51,200 events. Heartbeats add none; the client reads the latest one with
 * describe (client/live-status.ts). The workflow hears only of edges — the
 * transfer started (again), the copy is done, Unew caught up or fell behind,
 * it stopped, it failed — so its history grows only when something happens.
 * The operator's controls (pause, chunk size, throttle, stop) are read with a
 * query, which adds no event either.
 */
import { ApplicationFailure, Context } from '@temporalio/activity';
import type { Client } from '@temporalio/client';
import { isImagoError } from '../lib/errors';
import type { UpgradePlan } from '../plan/types';
import type { UnewHandle } from '../providers/provider';
import { createTransfer, type TransferProgress } from '../transfer/transfer';
import { transferControlsQuery, transferEdgeSignal } from '../workflows/messages';
import type { TransferControls, TransferEdge, TransferProgressSnapshot, UpgradeStatus } from '../workflows/status';
import { seriesPoint, SERIES_MAX } from '../workflows/upgrade-state';
import { ingressEndpoints, loadConversion, readerServerId, uoldDbUrl, unewAdminUrl } from './context';

export function toSnapshot(p: TransferProgress, paused: boolean, stopped = false): TransferProgressSnapshot {
  return {
    at: Date.now(),
    phase: stopped || p.phase === 'stopped' ? 'stopped' : p.phase === 'starting' ? 'preflight' : p.phase,
    tables: p.tables.map((t) => ({ table: t.table, copied: t.rowsCopied, total: t.rowsTotal, done: t.done })),
    copiedRows: p.rowsCopied,
    totalRows: p.rowsTotal,
    percent: p.rowsTotal > 0 ? Math.min(100, Math.round((p.rowsCopied / p.rowsTotal) * 1000) / 10) : (p.phase === 'following' ? 100 : 0),
    rowsPerSec: Math.round(p.rate),
    etaSec: p.etaSeconds,
    appliedPosition: p.appliedPosition,
    lagMs: p.lagMs,
    lagEvents: p.lagEvents,
    throttleReason: p.throttleReason,
    paused,
    ...(p.warnings.length ? { warnings: p.warnings } : {}),
  };
}

/** What the transfer activity heartbeats, and what the client reads back (client/live-status.ts). */
export interface TransferHeartbeat {
  snapshot: TransferProgressSnapshot;
  series: UpgradeStatus['series']['transfer'];
}

/** What it returns when stopped: the last snapshot and the progress series, for the status and the report. */
export type TransferResult = TransferHeartbeat;

/**
 * Edges of the lag: caught up at ≤ maxLagMs; fallen behind only above twice
 * that for 5 s (hysteresis, so a lag hovering at the threshold does not send
 * a signal every tick), and at most one lag edge a minute.
 */
export class LagEdges {
  private caughtUp = false;
  private aboveSince: number | null = null;
  private lastEdgeAt = -Infinity;

  next(phase: TransferProgressSnapshot['phase'], lagMs: number | null, maxLagMs: number, now: number): 'caught-up' | 'fell-behind' | null {
    if (phase !== 'following' || lagMs === null) return null;
    if (!this.caughtUp) {
      if (lagMs <= maxLagMs) { this.caughtUp = true; this.lastEdgeAt = now; this.aboveSince = null; return 'caught-up'; }
      return null;
    }
    if (lagMs <= 2 * maxLagMs) { this.aboveSince = null; return null; }
    this.aboveSince ??= now;
    if (now - this.aboveSince >= 5_000 && now - this.lastEdgeAt >= 60_000) {
      this.caughtUp = false; this.lastEdgeAt = now; this.aboveSince = null;
      return 'fell-behind';
    }
    return null;
  }

  /** After a failure: not caught up until the next 'caught-up' edge. */
  reset(): void { this.caughtUp = false; this.aboveSince = null; }
}

export function createTransferActivities(client: () => Client) {
  return {
    async runTransfer(args: { workflowId: string; handle: UnewHandle; plan: UpgradePlan }): Promise<TransferResult> {
      const { plan, handle } = args;
      const ctx = Context.current();
      const attempt = ctx.info.attempt;
      const wf = client().workflow.getHandle(args.workflowId);
      const prior = ctx.info.heartbeatDetails as TransferHeartbeat | undefined;
      let series: UpgradeStatus['series']['transfer'] = Array.isArray(prior?.series) ? prior!.series : [];
      const edge = (e: TransferEdge, snapshot: TransferProgressSnapshot, error?: { code: string; message: string }) =>
        wf.signal(transferEdgeSignal, { edge: e, attempt, snapshot, ...(error ? { error } : {}) }).catch(() => undefined);

      const create = () => createTransfer({
        source: { url: uoldDbUrl(plan), database: plan.uold.db.database },
        target: { url: unewAdminUrl(handle, plan), database: handle.db.database },
        conversion: loadConversion(plan),
        chunkSize: plan.transfer.chunkSize,
        parallelTables: plan.transfer.parallelTables,
        serverId: readerServerId(handle.upgradeId, 'transfer'),
        throttle: {
          maxThreadsRunning: plan.transfer.maxThreadsRunning, maxLagMs: plan.transfer.maxLagMs,
          maxUoldP99Ratio: plan.transfer.maxUoldP99Ratio, maxUoldP99Ms: plan.transfer.maxUoldP99Ms, criticalUoldP99Ms: plan.transfer.criticalUoldP99Ms,
          niceRatio: plan.transfer.niceRatio,
        },
        // The latency Uold's clients see, read from the interceptors' control APIs: the p99 rules above need it.
        ingress: ingressEndpoints(plan),
      });
      const stop = new AbortController();
      ctx.cancellationSignal.addEventListener('abort', () => stop.abort());
      let controls: TransferControls | null = null;
      let lastPhase: TransferProgressSnapshot['phase'] | null = null;
      const lag = new LagEdges();
      let incidentSince: number | null = null;
      let lastErrorEdgeAt = -Infinity;
      let first: ReturnType<typeof create> | null = create();
      await edge('started', toSnapshot(first.progress(), false));
      for (let retry = 0; ; retry++) {
        // Each run resumes from the state kept in Unew.
        const transfer = first ?? create();
        first = null;
        let failed: unknown;
        const running = transfer.run(stop.signal).catch((err) => { failed = err; });
        let finished = false;
        void running.then(() => { finished = true; });
        controls = null;
        while (!finished) {
          await Promise.race([running, new Promise((r) => setTimeout(r, 500))]);
          try {
            const c = await wf.query(transferControlsQuery);
            if (c.stop) stop.abort();
            if (!controls || c.paused !== controls.paused) { if (c.paused) transfer.pause(); else transfer.resume(); }
            if (!controls || c.chunkSize !== controls.chunkSize) transfer.setChunkSize(c.chunkSize);
            if (!controls || c.maxLagMs !== controls.maxLagMs || c.maxThreadsRunning !== controls.maxThreadsRunning || c.niceRatio !== controls.niceRatio) {
              transfer.setThrottle({ maxLagMs: c.maxLagMs, maxThreadsRunning: c.maxThreadsRunning, ...(c.niceRatio === undefined ? {} : { niceRatio: c.niceRatio }) });
            }
            controls = c;
          } catch { /* the workflow may be busy or gone; keep going, the heartbeat decides */ }
          if (finished) break;
          const snap = toSnapshot(transfer.progress(), controls?.paused ?? false);
          series = pushPoint(series, snap);
          ctx.heartbeat({ snapshot: snap, series } satisfies TransferHeartbeat);
          if (lastPhase === 'copy' && snap.phase === 'following') await edge('copy-done', snap);
          lastPhase = snap.phase;
          const e = lag.next(snap.phase, snap.lagMs, controls?.maxLagMs ?? plan.transfer.maxLagMs, Date.now());
          if (e) await edge(e, snap);
          // Healthy again after a failure: the next failure is a new incident.
          if (incidentSince !== null && snap.phase === 'following' && (snap.lagMs ?? Infinity) <= plan.transfer.maxLagMs) { incidentSince = null; retry = 0; lastErrorEdgeAt = -Infinity; }
        }
        if (!failed || stop.signal.aborted) {
          const last = toSnapshot(transfer.progress(), false, true);
          series = pushPoint(series, last);
          await edge('stopped', last);
          return { snapshot: last, series };
        }
        // A failure is a state, reported in the status with its code; retried for a bounded time.
        const code = String(isImagoError(failed) ? failed.code : (failed as { code?: string })?.code ?? 'TRANSFER_STREAM_FAILED');
        const message = String((failed as Error)?.message ?? failed).slice(0, 2_000);
        incidentSince ??= Date.now();
        const retryable = isImagoError(failed) ? failed.retryable : true;
        // transfer.onUnreachable 'wait' keeps retrying (the status names the cause; an operator may abort).
        const budget = plan.transfer.unreachableRetryMs;
        const exhausted = plan.transfer.onUnreachable === 'fail' && Date.now() - incidentSince >= budget;
        const left = plan.transfer.onUnreachable === 'wait' ? 'waiting (transfer.onUnreachable = wait)' : `${Math.max(0, Math.round((budget - (Date.now() - incidentSince)) / 1000))} s of retries left`;
        // At most one report a minute while an incident lasts: the history stays bounded even when waiting for days.
        if (retryable && !exhausted ? Date.now() - lastErrorEdgeAt >= 60_000 : true) {
          lastErrorEdgeAt = Date.now();
          await edge('error', toSnapshot(transfer.progress(), false), { code, message: retryable && !exhausted ? `${message} (retrying: ${left})` : message });
        }
        if (!retryable || exhausted) {
          // The code leads the message: it is what the status and the operator see last.
          throw ApplicationFailure.create({
            type: code, nonRetryable: true,
            message: `${code}: ${message}${exhausted ? ` — still failing after ${Math.round((Date.now() - incidentSince) / 1000)} s of retries (transfer.unreachableRetryMs)` : ''}`,
          });
        }
        lag.reset();
        lastPhase = null;
        await new Promise((r) => setTimeout(r, Math.min(30_000, 1_000 * 2 ** Math.min(retry, 5))));
        ctx.heartbeat({ snapshot: toSnapshot(transfer.progress(), false), series } satisfies TransferHeartbeat);
        if (stop.signal.aborted) return { snapshot: toSnapshot(transfer.progress(), false, true), series };
      }
    },
  };
}

/** Appends a point; past SERIES_MAX every other one is dropped, so the series stays bounded. */
function pushPoint(series: UpgradeStatus['series']['transfer'], p: TransferProgressSnapshot): UpgradeStatus['series']['transfer'] {
  const s = [...series, seriesPoint(p)];
  return s.length > SERIES_MAX ? s.filter((_, i) => i % 2 === 0 || i === s.length - 1) : s;
}
