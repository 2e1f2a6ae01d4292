/**
 * Operating an upgrade with plain Temporal tooling: `temporal workflow
 * signal`, the CLI the setup builds (lib/temporal-server.ts). A signal cannot
 * answer, so every check reads the `status` query: each signal is in
 * `status.signals`, accepted or refused with the reason, and a refused one
 * changed nothing.
 *
 * Two real upgrades of the auction site (local provider, small sizes, no plan
 * tests, a short mirror window), under a light bidding workload:
 * - the first is aborted by signal during testing: a clean abort;
 * - the second gets an `approve` during the data transfer (refused), hand-made
 *   copies of Imago's own signals while it awaits approval (refused, and the
 *   workflow keeps answering), then the `approve` that completes it (last:
 *   from then on the stage's clients are served by that upgrade's Unew).
 */
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import { WorkflowFailedError, type Client } from '@temporalio/client';
import { temporalFixture, onTeardown, workflowBundleFixture } from '../fixtures/servers';
import { createWorker } from '../../worker/run';
import { resolveTemporalBinary } from '../../lib/temporal-server';
import { run } from '../../lib/proc';
import { statusQuery } from '../../workflows/messages';
import type { UpgradeStatus } from '../../workflows/status';
import type { UoldStage } from '../../examples/auction/stage';
import { briefTesting, expectUoldServing, stage, startUpgrade, universeDir, universeProcesses, waitPhase, workload } from './harness';

const QUEUE = 'imago-signals';

describe('operating an upgrade with signals (temporal workflow signal)', function () {
  this.timeout(180_000);
  let s: UoldStage;
  let client: Client;
  let address: string;
  let load: ReturnType<typeof workload>;

  before(async () => {
    const t = await temporalFixture();
    ({ client, address } = t);
    const { worker, close } = await createWorker({ address, taskQueue: QUEUE, workflowBundlePath: await workflowBundleFixture() });
    const running = worker.run();
    onTeardown(async () => { worker.shutdown(); await running; await close(); });
    s = await stage();
    onTeardown(() => s.stop());
    // Read traffic for the compare window of each upgrade's testing phase; stopped in after().
    load = workload(s, 240_000, 30);
  });

  after(async () => { load?.stop(); await load?.done; });

  /** `temporal workflow signal` as an operator types it; resolves with the CLI's output, rejects on a non-zero exit. */
  function signal(id: string, name: string, input?: string): Promise<string> {
    const args = ['workflow', 'signal', '--address', address, '--namespace', 'default', '--workflow-id', id, '--name', name];
    if (input !== undefined) args.push('--input', input);
    return run(resolveTemporalBinary(), args);
  }

  const status = (id: string) => client.workflow.getHandle(id).query(statusQuery);

  async function waitSignals(id: string, n: number): Promise<UpgradeStatus> {
    const deadline = Date.now() + 30_000;
    for (;;) {
      const st = await status(id);
      if (st.signals.length >= n) return st;
      if (Date.now() > deadline) throw new Error(`${id}: ${n} signals not recorded within 30 s: ${JSON.stringify(st.signals)}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  /** Manual approval, no plan tests, a 2 s mirror window; a slow copy (small chunks, one table at a time) so the transfer can be caught. */
  const manual = (p: any) => {
    p.approval.policy = 'manual';
    briefTesting(p);
    p.transfer.chunkSize = 100;
    p.transfer.parallelTables = 1;
  };

  it('aborted by signal during testing: Unew gone, Uold serving, the status says aborted with the reason', async () => {
    const id = `signals-abort-${Date.now()}`;
    // A longer mirror window, so testing lasts long enough to be caught.
    const h = await startUpgrade(client, s, id, (p) => { manual(p); p.transfer.chunkSize = 2_000; p.mirror.minDurationMs = 8_000; }, QUEUE);
    await waitPhase(client, id, ['testing'], 120_000);
    // A bare string is accepted as abort's reason (what an operator may type in the web UI).
    await signal(id, 'abort', '"maintenance window closed"');
    const err = await h.result().then(() => null, (e) => e);
    assert.ok(err instanceof WorkflowFailedError, `the workflow failed (got ${err})`);
    assert.match(String(err.cause?.message), /upgrade aborted: maintenance window closed/);
    const st = await status(id);
    assert.equal(st.outcome, 'aborted');
    assert.equal(st.abortReason, 'maintenance window closed');
    assert.equal(st.lastError, 'aborted: maintenance window closed');
    assert.deepEqual(st.signals.map((x) => [x.name, x.accepted]), [['abort', true]]);
    const phases = st.timings.map((t) => t.phase);
    assert.ok(phases.includes('testing') && !phases.includes('awaiting-approval') && !phases.includes('termination'), phases.join(' → '));
    assert.equal(st.pointOfNoReturnPassed, false);
    assert.equal(st.cutovers.length, 0);
    // Clean: no process or folder of Unew left; Uold serves, from Uold, with mirroring off.
    assert.deepEqual(universeProcesses(id), [], 'no process of Unew is left');
    assert.equal(fs.existsSync(universeDir(s, id)), false, "Unew's folder is gone");
    assert.deepEqual(await expectUoldServing(s), { status: 200, target: 'uold', state: 'forward' });
  });

  const approvedId = `signals-approve-${Date.now()}`;
  let approvedStarted = false;

  it('an approve signal during the data transfer is refused with the reason, recorded, and changes nothing', async () => {
    await startUpgrade(client, s, approvedId, manual, QUEUE);
    approvedStarted = true;
    await waitPhase(client, approvedId, ['data-transfer']);
    // Paused by signal too, so the transfer cannot end under the test's feet.
    assert.match(await signal(approvedId, 'pause'), /Signal workflow succeeded/);
    const paused = await waitSignals(approvedId, 1);
    assert.deepEqual(paused.signals.map((x) => [x.name, x.accepted]), [['pause', true]]);
    assert.equal(paused.phase, 'data-transfer', `still copying when paused (${paused.transfer?.percent}% copied)`);
    assert.equal(paused.controls.paused, true);

    await signal(approvedId, 'approve', '{"by": "too-early"}');
    const after = await waitSignals(approvedId, 2);
    const refused = after.signals[1];
    assert.deepEqual([refused.name, refused.accepted, refused.by], ['approve', false, 'too-early']);
    assert.equal(refused.reason, 'approve is accepted only while awaiting approval (after testing passed); the phase is data-transfer');
    // Nothing else moved: same phase, no approval, the copy still paused.
    assert.equal(after.phase, 'data-transfer');
    assert.deepEqual(after.approval, paused.approval);
    assert.equal(after.approval.approved, false);
    assert.deepEqual(after.controls, paused.controls);

    await signal(approvedId, 'resume');
    const resumed = await waitSignals(approvedId, 3);
    assert.deepEqual([resumed.signals[2].name, resumed.signals[2].accepted, resumed.controls.paused], ['resume', true, false]);

    // The refused approve left no trace: after testing the upgrade waits for an approval, and keeps waiting.
    const waiting = await waitPhase(client, approvedId, ['awaiting-approval'], 120_000);
    assert.equal(waiting.gate?.pass, true, waiting.lastError ?? JSON.stringify(waiting.gate));
    assert.equal(waiting.approval.approved, false);
    await new Promise((r) => setTimeout(r, 3_000));
    const still = await status(approvedId);
    assert.deepEqual([still.phase, still.approval.approved, still.cutovers.length], ['awaiting-approval', false, 0]);
  });

  it("hand-made copies of Imago's own signals (transferEdge, pointOfNoReturn) are refused and recorded; the workflow keeps answering", async function () {
    if (!approvedStarted) this.skip();
    await signal(approvedId, 'transferEdge'); // no input: one click in the web UI's signal list
    await signal(approvedId, 'pointOfNoReturn', '{"attempt": 1, "at": 0}');
    const st = await waitSignals(approvedId, 5);
    const [edge, pnr] = st.signals.slice(3);
    assert.deepEqual([edge.name, edge.accepted, pnr.name, pnr.accepted], ['transferEdge', false, 'pointOfNoReturn', false]);
    assert.match(edge.reason!, /^transferEdge is sent by Imago's activities only; this one changed nothing/);
    assert.match(pnr.reason!, /cut-over attempt 1 has not started \(0 started so far\)/);
    assert.equal(st.pointOfNoReturnPassed, false, 'the point of no return is not recorded by a hand-made signal');
    assert.equal(st.phase, 'awaiting-approval');
    const failedTasks = (await client.workflow.getHandle(approvedId).fetchHistory()).events!.filter((e) => e.workflowTaskFailedEventAttributes);
    assert.deepEqual(failedTasks.map((e) => e.workflowTaskFailedEventAttributes!.failure?.message), [], 'no workflow task failed');
  });

  it('approved with `temporal workflow signal --name approve`, the upgrade completes; the signal is recorded with who sent it', async function () {
    if (!approvedStarted) this.skip();
    const asked = Date.now();
    assert.match(await signal(approvedId, 'approve', '{"by": "alice", "note": "change CHG-42"}'), /Signal workflow succeeded/);
    const final = await client.workflow.getHandle(approvedId).result() as UpgradeStatus;
    const tookMs = Date.now() - asked;
    assert.equal(final.outcome, 'completed', final.lastError ?? '');
    assert.deepEqual([final.approval.approved, final.approval.by], [true, 'alice']);
    const approve = final.signals.at(-1)!;
    assert.deepEqual([approve.name, approve.accepted, approve.by], ['approve', true, 'alice']);
    assert.deepEqual(final.signals.map((x) => `${x.name}:${x.accepted ? 'accepted' : 'refused'}`),
      ['pause:accepted', 'approve:refused', 'resume:accepted', 'transferEdge:refused', 'pointOfNoReturn:refused', 'approve:accepted']);
    assert.equal(final.cutovers.at(-1)?.switched, true);
    assert.deepEqual(await expectUoldServing(s).then((u) => [u.status, u.target]), [200, 'unew'], 'clients are served by Unew');
    console.log(`      approved by signal → completed in ${(tookMs / 1000).toFixed(1)} s (cut-over ${final.cutovers.at(-1)!.totalMs.toFixed(1)} ms hold → release)`);
  });

});
