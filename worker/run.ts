/**
 * The Imago worker: runs the upgrade workflow and its activities on one task
 * queue. Options come from flags or env (see worker/main.ts) and are checked
 * once here.
 */
import * as path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, Worker, type WorkerOptions } from '@temporalio/worker';
import { createActivities } from '../activities';
import type { Provider } from '../providers/provider';
import type { CutoverHooks } from '../activities/cutover';
import { TASK_QUEUE } from '../workflows/status';
import { imagoError } from '../lib/errors';
import { collectGarbage } from '../providers/gc';
import { LocalProvider } from '../providers/local/local-provider';

export interface RunWorkerOptions {
  address: string;
  namespace?: string;
  taskQueue?: string;
  /**
   * A workflow bundle built beforehand (bundleWorkflowCode, written to a file):
   * the worker then starts in about a second instead of bundling the workflow
   * code itself (several seconds). It must be built from this checkout's workflows/.
   */
  workflowBundlePath?: string;
  /** Most activities run at once on this worker. */
  maxConcurrentActivities?: number;
  maxConcurrentWorkflowTasks?: number;
  providers?: Record<string, Provider>;
  /** Test code only: wraps the cut-over's steps or control clients to inject faults (test/e2e/fault-worker.ts). */
  cutoverHooks?: CutoverHooks;
  /** Resolve to stop the worker gracefully. */
  signal?: AbortSignal;
}

export async function createWorker(opts: RunWorkerOptions): Promise<{ worker: Worker; close(): Promise<void> }> {
  for (const [k, v] of Object.entries({ maxConcurrentActivities: opts.maxConcurrentActivities, maxConcurrentWorkflowTasks: opts.maxConcurrentWorkflowTasks })) {
    if (v !== undefined && (!Number.isInteger(v) || v < 1)) throw imagoError('IMAGO_OPTIONS_INVALID', `${k} must be a positive integer, got ${v}`);
  }
  const namespace = opts.namespace ?? 'default';
  const nativeConnection = await NativeConnection.connect({ address: opts.address });
  // The transfer activity signals progress to its workflow and reads its controls through this client.
  const connection = await Connection.connect({ address: opts.address });
  const client = new Client({ connection, namespace });
  const lazyClient = () => client;
  const workerOptions: WorkerOptions = {
    connection: nativeConnection,
    namespace,
    taskQueue: opts.taskQueue ?? TASK_QUEUE,
    ...(opts.workflowBundlePath ? { workflowBundle: { codePath: opts.workflowBundlePath } } : { workflowsPath: path.join(__dirname, '..', 'workflows', 'index.ts') }),
    activities: createActivities({ client: lazyClient, providers: opts.providers, cutoverHooks: opts.cutoverHooks }),
    maxConcurrentActivityTaskExecutions: opts.maxConcurrentActivities ?? 20,
    maxConcurrentWorkflowTaskExecutions: opts.maxConcurrentWorkflowTasks ?? 10,
    shutdownGraceTime: '5 seconds',
    // The transfer reports progress in heartbeat details (no history events):
    // send them at least every 2 s, so `imago status` is as fresh as it was with signals.
    maxHeartbeatThrottleInterval: '2 seconds',
  };
  const worker = await Worker.create(workerOptions);
  return {
    worker,
    async close() {
      await connection?.close().catch(() => undefined);
      await nativeConnection.close().catch(() => undefined);
    },
  };
}

/**
 * Runs until `signal` aborts (or SIGINT/SIGTERM when run from main.ts).
 * First it sweeps the local universes of its own task queue that nothing will
 * use again (a terminated upgrade runs no compensation): see providers/gc.ts.
 */
export async function runWorker(opts: RunWorkerOptions): Promise<void> {
  const { worker, close } = await createWorker(opts);
  await sweepOwnUniverses(opts).catch((err) => console.error(`worker: the sweep of leftover universes failed: ${(err as Error).message}`));
  opts.signal?.addEventListener('abort', () => worker.shutdown());
  try { await worker.run(); } finally { await close(); }
}

async function sweepOwnUniverses(opts: RunWorkerOptions): Promise<void> {
  const connection = await Connection.connect({ address: opts.address });
  try {
    const client = new Client({ connection, namespace: opts.namespace ?? 'default' });
    const entries = await collectGarbage({
      client, sources: [{ provider: opts.providers?.local ?? new LocalProvider(), unew: {} }], destroy: true, taskQueue: opts.taskQueue ?? TASK_QUEUE,
      log: (l) => console.error(`worker: ${l}`),
    });
    for (const e of entries.filter((x) => x.action === 'destroy')) {
      console.error(`worker: ${e.destroyed ? 'destroyed' : `could not destroy (${e.error})`} leftover universe ${e.upgradeId}: ${e.why}`);
    }
  } finally {
    await connection.close();
  }
}
