/**
 * TEST CODE: an Imago worker process that pauses the first rollback attempt
 * after one of its steps (through the worker's test-only CutoverHooks seam),
 * writes `at` in the fault folder and waits for `go`, so that
 * test/e2e/rollback.test.ts can SIGKILL it there. worker/main.ts has no such hook.
 *
 *   node --require tsx/cjs test/e2e/rollback-fault-worker.ts --address A --task-queue Q --fault-dir D --after switchProvider --workflow-bundle B
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import type { CutoverHooks, CutoverSteps } from '../../activities/cutover';
import { createWorker } from '../../worker/run';

function pausingAfter(dir: string, step: keyof CutoverSteps): CutoverHooks {
  return {
    wrapSteps(steps, _ctx, kind) {
      if (kind !== 'rollback') return steps;
      return new Proxy(steps, {
        get(target, prop, recv) {
          const v = Reflect.get(target, prop, recv);
          if (typeof v !== 'function') return v;
          if (prop !== step) return v.bind(target);
          return async (...args: unknown[]) => {
            const r = await v.apply(target, args);
            if (!fs.existsSync(path.join(dir, 'at'))) {
              fs.writeFileSync(path.join(dir, 'at'), String(step));
              while (!fs.existsSync(path.join(dir, 'go'))) await new Promise((res) => setTimeout(res, 10));
            }
            return r;
          };
        },
      });
    },
  };
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { address: { type: 'string' }, 'task-queue': { type: 'string' }, 'fault-dir': { type: 'string' }, after: { type: 'string' }, 'workflow-bundle': { type: 'string' } } });
  if (!values.address || !values['task-queue'] || !values['fault-dir'] || !values.after) throw new Error('usage: rollback-fault-worker --address A --task-queue Q --fault-dir D --after STEP');
  const { worker, close } = await createWorker({ address: values.address, taskQueue: values['task-queue'], cutoverHooks: pausingAfter(values['fault-dir'], values.after as keyof CutoverSteps), workflowBundlePath: values['workflow-bundle'] });
  const stop = () => worker.shutdown();
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
  try { await worker.run(); } finally { await close(); }
}

main().then(() => process.exit(0), (err) => { console.error(err); process.exit(1); });
