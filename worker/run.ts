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
import { TASK_QUEUE } from '../workflows/status';
import { imagoError } from '../lib/errors';

export interface RunWorkerOptions {
  address: string;
  namespace?: string;
  taskQueue?: string;
  /** Most activities run at once on this worker. */
  maxConcurrentActivities?: number;
  maxConcurrentWorkflowTasks?: number;
  providers?: Record<string, Provider>;
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
    workflowsPath: path.join(__dirname, '..', 'workflows', 'index.ts'),
    activities: createActivities({ client: lazyClient, providers: opts.providers }),
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

/** Runs until `signal` aborts (or SIGINT/SIGTERM when run from main.ts). */
export async function runWorker(opts: RunWorkerOptions): Promise<void> {
  const { worker, close } = await createWorker(opts);
  opts.signal?.addEventListener('abort', () => worker.shutdown());
  try { await worker.run(); } finally { await close(); }
}
