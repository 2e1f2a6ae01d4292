/**
 * `npx tsx worker/main.ts [--address host:port] [--namespace ns] [--task-queue q] [--max-activities n] [--workflow-bundle FILE]`
 * Defaults from TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, IMAGO_TASK_QUEUE, IMAGO_WORKER_MAX_ACTIVITIES.
 */
import { parseArgs } from 'node:util';
import { Runtime } from '@temporalio/worker';
import { runWorker } from './run';

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      address: { type: 'string', default: process.env.TEMPORAL_ADDRESS ?? '127.0.0.1:7233' },
      namespace: { type: 'string', default: process.env.TEMPORAL_NAMESPACE ?? 'default' },
      'task-queue': { type: 'string', default: process.env.IMAGO_TASK_QUEUE ?? 'imago' },
      'max-activities': { type: 'string', default: process.env.IMAGO_WORKER_MAX_ACTIVITIES ?? '20' },
      'workflow-bundle': { type: 'string', default: process.env.IMAGO_WORKFLOW_BUNDLE },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    console.log('usage: imago worker [--address host:port] [--namespace ns] [--task-queue q] [--max-activities n] [--workflow-bundle FILE]');
    return;
  }
  Runtime.install({ logger: undefined, shutdownSignals: ['SIGINT', 'SIGTERM'] });
  await runWorker({
    address: values.address!, namespace: values.namespace, taskQueue: values['task-queue'],
    maxConcurrentActivities: Number(values['max-activities']), workflowBundlePath: values['workflow-bundle'],
  });
}

main().catch((err) => { console.error(err?.message ?? err); process.exit(1); });
