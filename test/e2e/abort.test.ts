import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import { WorkflowFailedError } from '@temporalio/client';
import { temporalFixture, onTeardown, workerFixture } from '../fixtures/servers';
import { abortUpdate, approveUpdate, pauseUpdate, statusQuery } from '../../workflows/messages';
import type { UoldStage } from '../../examples/auction/stage';
import { briefTesting, expectUoldServing, stage, startUpgrade, universeDir, universeProcesses, waitPhase, workload } from './harness';

describe('end to end: abort in each phase, and the switchover gate', function () {
  this.timeout(300_000);
  let s: UoldStage;

  before(async () => {
    await workerFixture({ taskQueue: 'imago-abort' });
    s = await stage();
    onTeardown(() => s.stop());
  });

  async function expectAborted(id: string, result: Promise<unknown>) {
    const err = await result.then(() => null, (e) => e);
    assert.ok(err instanceof WorkflowFailedError, `the workflow failed (got ${err})`);
    assert.match(String((err as WorkflowFailedError).cause?.message), /aborted/);
    const { client } = await temporalFixture();
    const st = await client.workflow.getHandle(id).query(statusQuery);
    assert.equal(st.outcome, 'aborted');
    assert.equal(st.pointOfNoReturnPassed, false);
    assert.deepEqual(universeProcesses(id), [], 'no process of Unew is left');
    assert.equal(fs.existsSync(universeDir(s, id)), false, "Unew's folder is gone");
    assert.deepEqual(await expectUoldServing(s), { status: 200, target: 'uold', state: 'forward' });
    return st;
  }

  /** Starts an upgrade on this suite's worker, with the plan changed by `overrides`; its id begins with `name`. */
  async function begin(name: string, overrides: (p: any) => void) {
    const { client } = await temporalFixture();
    const id = `${name}-${Date.now()}`;
    return { client, id, h: await startUpgrade(client, s, id, overrides, 'imago-abort') };
  }

  const queue = (p: any) => { p.approval.policy = 'manual'; };

  it('abort during bootstrapping: Unew gone, Uold serving', async () => {
    const { id, h } = await begin('abort-boot', queue);
    await h.executeUpdate(abortUpdate, { args: [{ reason: 'operator changed their mind' }] });
    const st = await expectAborted(id, h.result());
    assert.equal(st.timings.find((t) => t.phase === 'data-transfer'), undefined, 'aborted before data transfer');
  });

  it('abort during data transfer (paused): Unew gone, Uold serving', async () => {
    // Chunks of 5 rows: the copy lasts seconds, so the pause lands in data transfer (at 2,000 rows a chunk
    // this stage's copy ends within a second, and the upgrade could be testing before the pause arrives).
    const { client, id, h } = await begin('abort-transfer', (p) => { queue(p); p.transfer.chunkSize = 5; });
    await waitPhase(client, id, ['data-transfer']);
    await h.executeUpdate(pauseUpdate, { args: [] });
    await h.executeUpdate(abortUpdate, { args: [{ reason: 'load too high' }] });
    const st = await expectAborted(id, h.result());
    assert.equal(st.timings.find((t) => t.phase === 'testing'), undefined, 'aborted before testing');
  });

  it('abort while awaiting approval, after testing: Unew gone, mirroring off, Uold serving', async () => {
    const { client } = await temporalFixture();
    const id = `abort-approval-${Date.now()}`;
    const load = workload(s, 150_000, 40);
    const h = await startUpgrade(client, s, id, (p) => { queue(p); briefTesting(p); }, 'imago-abort');
    try {
      const st0 = await waitPhase(client, id, ['awaiting-approval'], 150_000);
      assert.equal(st0.gate?.pass, true, st0.lastError ?? '');
      await h.executeUpdate(abortUpdate, { args: [{ reason: 'not today' }] });
      await expectAborted(id, h.result());
    } finally {
      load.stop();
      await load.done;
    }
    // approve is refused once the upgrade is over
    await assert.rejects(h.executeUpdate(approveUpdate, { args: [{}] }));
  });

  it('abort while Unew never gets healthy: the wait is cancelled, not waited out', async () => {
    // Listens, but its health check always answers 503; the plan gives it 10 minutes.
    const { client, id, h } = await begin('abort-health', (p) => {
      p.unew.app.command = [process.execPath, '-e', "require('http').createServer((q, r) => { r.statusCode = 503; r.end('warming up'); }).listen(Number(process.env.PORT), '127.0.0.1')"];
      p.unew.app.startTimeoutMs = 600_000;
    });
    await waitPhase(client, id, ['bootstrapping']);
    await new Promise((r) => setTimeout(r, 3_000)); // inside the health wait by now
    const asked = Date.now();
    await h.executeUpdate(abortUpdate, { args: [{ reason: 'not coming up' }] });
    const st = await expectAborted(id, h.result());
    const took = Date.now() - asked;
    // Bounded by the heartbeat throttle (~8 s) and the compensation, far from the 10-minute start timeout.
    assert.ok(took < 45_000, `abort took ${took} ms`);
    assert.match(st.lastError ?? '', /not coming up/);
  });

  it('a new version that exits at start fails bootstrapping at once (not retried), with the end of its log', async () => {
    const { id, h } = await begin('boot-exit', (p) => {
      p.unew.app.command = ['sh', '-c', 'echo "cannot load libauction.so: no such file" >&2; exit 1'];
    });
    const err = await h.result().then(() => null, (e) => e);
    assert.ok(err instanceof WorkflowFailedError);
    const st = await h.query(statusQuery);
    assert.equal(st.outcome, 'failed');
    assert.match(st.lastError ?? '', /IMAGO_APP_EXITED.*libauction\.so/s);
    assert.equal(st.timings.find((t) => t.phase === 'data-transfer'), undefined);
    assert.deepEqual(universeProcesses(id), []);
    assert.equal(fs.existsSync(universeDir(s, id)), false);
  });

  it('a failing plan test blocks the switchover and says why in the status', async () => {
    const { id, h } = await begin('gate-test', (p) => {
      // Only the failing test (the sample's contract test would pass and cost seconds), and a short window.
      p.mirror.minDurationMs = 2_000;
      p.tests = [{ name: 'always-fails', command: ['sh', '-c', 'echo "expected 42, got 41" >&2; exit 3'], timeoutMs: 10_000 }];
    });
    const err = await h.result().then(() => null, (e) => e);
    assert.ok(err instanceof WorkflowFailedError);
    const st = await h.query(statusQuery);
    assert.equal(st.outcome, 'failed');
    assert.equal(st.gate?.pass, false);
    assert.ok(st.gate!.reasons.some((r) => r.includes("test 'always-fails' failed (exit 3)") && r.includes('expected 42, got 41')), st.gate!.reasons.join('\n'));
    assert.equal(st.cutovers.length, 0, 'no cut-over was attempted');
    assert.deepEqual(universeProcesses(id), []);
    assert.deepEqual(await expectUoldServing(s), { status: 200, target: 'uold', state: 'forward' });
  });

  it('a failing compare verdict blocks the switchover and names the endpoint and field', async () => {
    const { client } = await temporalFixture();
    const id = `gate-compare-${Date.now()}`;
    const load = workload(s, 120_000, 40);
    try {
      const h = await startUpgrade(client, s, id, (p) => { p.unew.app.env = { AUCTION_V2_FAULT: 'missing-field' }; }, 'imago-abort');
      await h.result().then(() => null, () => null);
      const st = await h.query(statusQuery);
      assert.equal(st.outcome, 'failed');
      assert.equal(st.gate?.pass, false);
      assert.ok(st.gate!.reasons.some((r) => /^compare regression: .*\/items\/:id.*buyNow/.test(r)), st.gate!.reasons.join('\n'));
      assert.equal(st.cutovers.length, 0);
    } finally {
      load.stop();
      await load.done;
    }
    assert.deepEqual(await expectUoldServing(s), { status: 200, target: 'uold', state: 'forward' });
  });
});
