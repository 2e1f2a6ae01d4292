import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { itFull } from '../fixtures/tier';
import { FAST_TIMERS, temporalFixture, onTeardown, workflowBundleFixture } from '../fixtures/servers';
import { waitForBoundary } from './faults';
import { ManagedProcess } from '../../lib/proc';
import { TemporalDevServer } from '../../lib/temporal-server';
import { createWorker } from '../../worker/run';
import { IngressControlClient } from '../../interceptors/ingress';
import { checkLedger } from '../../examples/auction/ledger-checker';
import { statusQuery } from '../../workflows/messages';
import type { UoldStage } from '../../examples/auction/stage';
import { briefTesting, mixedStateViolations, stage, startUpgrade, unewDbUrl, waitPhase, workload } from './harness';

const ROOT = path.join(__dirname, '..', '..');

describe('end to end: durability', function () {
  this.timeout(400_000);
  let s: UoldStage;

  // Each test upgrades its own Uold stage: a completed upgrade leaves the interceptor on Unew.
  beforeEach(async () => {
    // Captured: `s` is reassigned by the next test, and each stage must be stopped itself.
    const mine = await stage();
    s = mine;
    onTeardown(() => mine.stop());
  });

  /** A worker process; with faultDir, one that pauses inside the cut-over's hold (after the flush) so the test can kill it there. */
  async function workerProcess(address: string, taskQueue: string, faultDir?: string): Promise<ManagedProcess> {
    const log = path.join(s.dir, `worker-${Date.now()}.log`);
    const entry = faultDir
      ? [path.join(__dirname, 'fault-worker.ts'), '--fault-dir', faultDir, '--boundary', 'after-flush']
      : [path.join(ROOT, 'worker/main.ts')];
    return new ManagedProcess('worker', process.execPath, ['--require', require.resolve('tsx/cjs'), ...entry, '--address', address, '--task-queue', taskQueue, '--workflow-bundle', await workflowBundleFixture()], log, {
      cwd: ROOT, env: { ...process.env, ...s.env },
    });
  }

  itFull('worker SIGKILLed during data transfer and during termination: completes, no mixed state, no failed request', 'the cut-over matrix kills the worker past the point of no return, long-running.test kills it in testing', async () => {
    const { client, address } = await temporalFixture();
    const queue = 'imago-durable';
    const faultDir = fs.mkdtempSync(path.join(os.tmpdir(), 'imago-durable-'));
    onTeardown(async () => fs.rmSync(faultDir, { recursive: true, force: true }));
    let worker = await workerProcess(address, queue, faultDir);
    onTeardown(() => worker.stop());
    const load = workload(s, 300_000, 40);
    const id = `durable-worker-${Date.now()}`;
    const h = await startUpgrade(client, s, id, briefTesting, queue);
    try {
      await waitPhase(client, id, ['data-transfer'], 120_000);
      await worker.kill9();
      worker = await workerProcess(address, queue, faultDir);
      // Inside the cut-over's hold, every interceptor held, Unew flushed: kill it there.
      await waitForBoundary(faultDir, 240_000);
      await worker.kill9();
      worker = await workerProcess(address, queue);
      const st = await h.result();
      assert.equal(st.outcome, 'completed', st.lastError ?? '');
      assert.ok(st.cutovers.length >= 1);
    } finally {
      load.stop();
    }
    const w = await load.done;
    await worker.stop();
    // The issue asks here for completion, no mixed state and a bounded hold. No request may fail at the
    // interceptor (502/503/504: lost or refused by the switch); an application 500 is reported, not hidden.
    const proxyFailures = ['502', '503', '504'].reduce((n, c) => n + (w.byStatus[c] ?? 0), 0);
    assert.equal(proxyFailures, 0, JSON.stringify(w.byStatus));
    if (w.errors) {
      const recs = (await new IngressControlClient(s.controlUrl, s.token).servedAll(0)).filter((r) => r.status >= 500);
      console.log(`      application errors during the run: ${JSON.stringify(w.byStatus)}; served records: ${JSON.stringify(recs)}`);
    }
    // The hold the dead worker left behind was released by the interceptor at its timeout.
    // Measured where the hold is (the interceptor's own timeline: arrival to reply), not by the
    // generator, whose event loop shares this process with the stage and stalls with a loaded machine.
    const tl = await new IngressControlClient(s.controlUrl, s.token).timeline(0);
    const worst = Math.max(...tl.buckets.map((b) => b.maxMs));
    assert.ok(worst < 5_000 + 3_000, `no request waited beyond the hold timeout (+ margin) at the interceptor: worst ${worst} ms (the generator saw ${Math.max(...w.timeline.map((b) => b.max))} ms)`);
    const served = await mixedStateViolations(s);
    assert.equal(served.violations, 0);
    const ledger = await checkLedger(await unewDbUrl(s, id), 'v2', w.ledger);
    assert.deepEqual([ledger.missing.length, ledger.duplicated.length, ledger.altered.length], [0, 0, 0]);
  });

  it('Temporal server restarted during data transfer: the upgrade carries on and completes', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'imago-restart-'));
    onTeardown(async () => fs.rmSync(dir, { recursive: true, force: true }));
    let server = await new TemporalDevServer({ dbFile: path.join(dir, 'temporal.db'), dynamicConfig: FAST_TIMERS }).start();
    const port = server.port;
    onTeardown(() => server.stop());
    const { worker, close } = await createWorker({ address: server.address, taskQueue: 'imago-restart', workflowBundlePath: await workflowBundleFixture() });
    const running = worker.run();
    onTeardown(async () => { if (worker.getState() === 'RUNNING') { worker.shutdown(); await running.catch(() => undefined); } await close(); });
    const connection = await Connection.connect({ address: server.address });
    onTeardown(() => connection.close());
    const client = new Client({ connection });
    const load = workload(s, 300_000, 40);
    try {
      const id = `durable-server-${Date.now()}`;
      const h = await startUpgrade(client, s, id, briefTesting, 'imago-restart');
      await waitPhase(client, id, ['data-transfer'], 120_000);
      await server.stop();
      await new Promise((r) => setTimeout(r, 1_000));
      server = await new TemporalDevServer({ dbFile: path.join(dir, 'temporal.db'), port, dynamicConfig: FAST_TIMERS }).start();
      const st = await h.result();
      assert.equal(st.outcome, 'completed', st.lastError ?? '');
      assert.ok(st.timings.some((t: { phase: string }) => t.phase === 'switchover'));
      const after = await h.query(statusQuery);
      assert.equal(after.pointOfNoReturnPassed, true);
    } finally {
      load.stop();
      await load.done;
    }
    worker.shutdown();
    await running;
  });
});
