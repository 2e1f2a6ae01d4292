/**
 * The long data-transfer activity: copy, then follow Uold until the workflow
 * says stop. It heartbeats progress (a retry after a worker crash resumes from
 * the state kept in Unew, not from the heartbeat), signals progress to the
 * workflow every couple of seconds for status queries, and reads the
 * operator's controls (pause, chunk size, throttle, stop) with a query.
 */
import { Context } from '@temporalio/activity';
import type { Client } from '@temporalio/client';
import type { UpgradePlan } from '../plan/types';
import type { UnewHandle } from '../providers/provider';
import { createTransfer, type TransferProgress } from '../transfer/transfer';
import { transferControlsQuery, transferProgressSignal } from '../workflows/messages';
import type { TransferControls, TransferProgressSnapshot } from '../workflows/status';
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

export function createTransferActivities(client: () => Client) {
  return {
    async runTransfer(args: { workflowId: string; handle: UnewHandle; plan: UpgradePlan }): Promise<TransferProgressSnapshot | null> {
      const { plan, handle } = args;
      const ctx = Context.current();
      const wf = client().workflow.getHandle(args.workflowId);
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
      let controls: TransferControls | null = null;
      let lastSignal = 0;
      let finished = false;
      void running.then(() => { finished = true; });
      while (!finished) {
        await Promise.race([running, new Promise((r) => setTimeout(r, 500))]);
        const progress = transfer.progress();
        ctx.heartbeat({ phase: progress.phase, rowsCopied: progress.rowsCopied, appliedPosition: progress.appliedPosition });
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
        if (Date.now() - lastSignal >= 2_000 && !finished) {
          lastSignal = Date.now();
          await wf.signal(transferProgressSignal, toSnapshot(progress, controls?.paused ?? false)).catch(() => undefined);
        }
      }
      if (failed && !abort.signal.aborted) throw failed;
      const last = toSnapshot(transfer.progress(), false, true);
      await wf.signal(transferProgressSignal, last).catch(() => undefined);
      return last;
    },
  };
}
