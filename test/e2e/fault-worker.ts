/**
 * TEST CODE: an Imago worker process with a fault hook at one cut-over
 * boundary (test/e2e/faults.ts). The product's worker (worker/main.ts) has no
 * such hook; this entry passes it through the test-only seam of createWorker.
 *
 *   node --require tsx/cjs test/e2e/fault-worker.ts --address A --task-queue Q --fault-dir D --boundary after-hold
 */
import { parseArgs } from 'node:util';
import { createWorker } from '../../worker/run';
import { BOUNDARIES, pausingHooks, type Boundary } from './faults';

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { address: { type: 'string' }, 'task-queue': { type: 'string' }, 'fault-dir': { type: 'string' }, boundary: { type: 'string' }, 'workflow-bundle': { type: 'string' } } });
  const boundary = values.boundary as Boundary;
  if (!values.address || !values['task-queue'] || !values['fault-dir'] || !BOUNDARIES.includes(boundary)) {
    throw new Error(`usage: fault-worker --address A --task-queue Q --fault-dir D --boundary ${BOUNDARIES.join('|')}`);
  }
  const { worker, close } = await createWorker({ address: values.address, taskQueue: values['task-queue'], cutoverHooks: pausingHooks(values['fault-dir'], boundary), workflowBundlePath: values['workflow-bundle'] });
  const stop = () => worker.shutdown();
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
  try { await worker.run(); } finally { await close(); }
}

main().then(() => process.exit(0), (err) => { console.error(err); process.exit(1); });
