/**
 * The Imago worker: runs the upgrade workflow and its activities on one task
 * queue. It reaches Temporal with the CLI's connection settings
 * (client/connection.ts: address, namespace, TLS with client certificates, a
 * CA, a server name, an API key), so it connects wherever `imago` can.
 * `imago worker` (and worker/main.ts) resolve them from flags, the Temporal
 * CLI's environment variables and the config file; options are checked once here.
 */
import * as path from 'node:path';
import type { Client } from '@temporalio/client';
import { NativeConnection, Worker, type WorkerOptions } from '@temporalio/worker';
import { connect, nativeConnectionOptions, plainSettings, temporalConnectError, type ConnectionSettings } from '../client/connection';
import { createActivities } from '../activities';
import type { Provider } from '../providers/provider';
import type { CutoverHooks } from '../activities/cutover';
import { TASK_QUEUE } from '../workflows/status';
import { imagoError } from '../lib/errors';
import { collectGarbage } from '../providers/gc';
import { LocalProvider } from '../providers/local/local-provider';

export interface RunWorkerOptions {
  /** How to reach Temporal: the settings `imago` resolves (resolveSettings). Wins over address/namespace. */
  connection?: ConnectionSettings;
  /** Shorthand for a plain-text frontend (a dev server) when `connection` is not given. */
  address?: string;
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

/** The connection settings of these options: `connection`, or a plain-text frontend at `address`. */
export function workerSettings(opts: Pick<RunWorkerOptions, 'connection' | 'address' | 'namespace'>): ConnectionSettings {
  if (opts.connection) {
    if (opts.address !== undefined || opts.namespace !== undefined) throw imagoError('IMAGO_OPTIONS_INVALID', 'worker: give connection (its address and namespace included) or address/namespace, not both');
    return opts.connection;
  }
  if (!opts.address) throw imagoError('IMAGO_OPTIONS_INVALID', 'worker: give connection (client/connection.ts resolveSettings) or the address of a plain-text frontend');
  return plainSettings(opts.address, opts.namespace);
}

export async function createWorker(opts: RunWorkerOptions): Promise<{ worker: Worker; close(): Promise<void> }> {
  for (const [k, v] of Object.entries({ maxConcurrentActivities: opts.maxConcurrentActivities, maxConcurrentWorkflowTasks: opts.maxConcurrentWorkflowTasks })) {
    if (v !== undefined && (!Number.isInteger(v) || v < 1)) throw imagoError('IMAGO_OPTIONS_INVALID', `${k} must be a positive integer, got ${v}`);
  }
  const settings = workerSettings(opts);
  let nativeConnection: NativeConnection;
  try { nativeConnection = await NativeConnection.connect(nativeConnectionOptions(settings)); } catch (err) {
    throw await temporalConnectError(settings, err, 'the worker');
  }
  // The transfer activity signals progress to its workflow and reads its controls through this client: the same settings.
  let connection: Awaited<ReturnType<typeof connect>>['connection'];
  let client: Client;
  try { ({ client, connection } = await connect(settings, "the worker's client")); } catch (err) {
    await nativeConnection.close().catch(() => undefined);
    throw err;
  }
  const lazyClient = () => client;
  const workerOptions: WorkerOptions = {
    connection: nativeConnection,
    namespace: settings.namespace,
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
  let worker: Worker;
  try { worker = await Worker.create(workerOptions); } catch (err) {
    await connection.close().catch(() => undefined);
    await nativeConnection.close().catch(() => undefined);
    throw err;
  }
  return {
    worker,
    async close() {
      await connection.close().catch(() => undefined);
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
  // The runtime's own signal handlers may have begun the shutdown already.
  const stop = (): void => { if (worker.getState() === 'RUNNING') worker.shutdown(); };
  opts.signal?.addEventListener('abort', stop, { once: true });
  const running = worker.run(); // RUNNING from here on
  if (opts.signal?.aborted) stop();
  try { await running; } finally { opts.signal?.removeEventListener('abort', stop); await close(); }
}

async function sweepOwnUniverses(opts: RunWorkerOptions): Promise<void> {
  const { client, connection } = await connect(workerSettings(opts), "the worker's sweep");
  try {
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
