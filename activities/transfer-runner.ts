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
import { Context } from '@temporalio/activity';
import type { Client } from '@temporalio/client';
import { isImagoError } from '../lib/errors';
import type { UpgradePlan } from '../plan/types';
import type { UnewHandle } from '../providers/provider';
import { createTransfer, type TransferProgress } from '../transfer/transfer';
import { transferControlsQuery, transferEdgeSignal } from '../workflows/messages';
import type { TransferControls, TransferEdge, TransferProgressSnapshot, UpgradeStatus } from '../workflows/status';
import { seriesPoint, SERIES_MAX } from '../workflows/upgrade-state';
import { loadConversion, readerServerId, uoldDbUrl, unewAdminUrl } from './context';

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

      const transfer = createTransfer({
        source: { url: uoldDbUrl(plan), database: plan.uold.db.database },
        target: { url: unewAdminUrl(handle), database: handle.db.database },
        conversion: loadConversion(plan),
        chunkSize: plan.transfer.chunkSize,
        parallelTables: plan.transfer.parallelTables,
        serverId: readerServerId(handle.upgradeId, 'transfer'),
        throttle: { maxThreadsRunning: plan.transfer.maxThreadsRunning, maxLagMs: plan.transfer.maxLagMs },
      });
      const abort = new AbortController();
      ctx.cancellationSignal.addEventListener('abort', () => abort.abort());
      let failed: unknown;
      const running = transfer.run(abort.signal).catch((err) => { failed = err; });
      let finished = false;
      void running.then(() => { finished = true; });
      let controls: TransferControls | null = null;
      let lastPhase: TransferProgressSnapshot['phase'] | null = null;
      const lag = new LagEdges();
      await edge('started', toSnapshot(transfer.progress(), false));
      while (!finished) {
        await Promise.race([running, new Promise((r) => setTimeout(r, 500))]);
        try {
          const c = await wf.query(transferControlsQuery);
          if (c.stop) abort.abort();
          if (!controls || c.paused !== controls.paused) { if (c.paused) transfer.pause(); else transfer.resume(); }
          if (!controls || c.chunkSize !== controls.chunkSize) transfer.setChunkSize(c.chunkSize);
          if (!controls || c.maxLagMs !== controls.maxLagMs || c.maxThreadsRunning !== controls.maxThreadsRunning) {
            transfer.setThrottle({ maxLagMs: c.maxLagMs, maxThreadsRunning: c.maxThreadsRunning });
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
      }
      if (failed && !abort.signal.aborted) {
        // The workflow names the cause in its status while Temporal retries this activity.
        const code = isImagoError(failed) ? failed.code : (failed as { code?: string })?.code ?? 'TRANSFER_FAILED';
        await edge('error', toSnapshot(transfer.progress(), false), { code: String(code), message: String((failed as Error)?.message ?? failed).slice(0, 2_000) });
        throw failed;
      }
      const last = toSnapshot(transfer.progress(), false, true);
      series = pushPoint(series, last);
      await edge('stopped', last);
      return { snapshot: last, series };
    },
  };
}

/** Appends a point; past SERIES_MAX every other one is dropped, so the series stays bounded. */
function pushPoint(series: UpgradeStatus['series']['transfer'], p: TransferProgressSnapshot): UpgradeStatus['series']['transfer'] {
  const s = [...series, seriesPoint(p)];
  return s.length > SERIES_MAX ? s.filter((_, i) => i % 2 === 0 || i === s.length - 1) : s;
}
