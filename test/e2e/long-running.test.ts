/**
 * Long-running, unattended upgrades, on a dev server whose history limits are
 * lowered so that what production meets after days happens in minutes: the
 * server suggests continue-as-new at a few dozen events and terminates a run
 * at a few hundred — an upgrade that grew its history per tick (as Imago did
 * before: 6,800 events an hour) or never continued as new would be terminated.
 */
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { ImagoClient } from '../../client/api';
import type { UoldStage } from '../../examples/auction/stage';
import { ManagedProcess, run } from '../../lib/proc';
import { resolveTemporalBinary, TemporalDevServer } from '../../lib/temporal-server';
import { loadPlanFile } from '../../plan/load';
import { collectGarbage } from '../../providers/gc';
import { LocalProvider } from '../../providers/local/local-provider';
import { statusQuery } from '../../workflows/messages';
import type { UpgradeStatus } from '../../workflows/status';
import { FAST_TIMERS, onTeardown, workflowBundleFixture } from '../fixtures/servers';
import { itFull } from '../fixtures/tier';
import { briefTesting, expectCleanSwitch, stage, universeDir, universeState, waitPhase, workload } from './harness';

const ROOT = path.join(__dirname, '..', '..');
/** Lowered limits: continue-as-new suggested from 30 events, a run terminated at 250 (production: 10,240 and 51,200). */
const LIMITS = { 'limit.historyCount.suggestContinueAsNew': 30, 'limit.historyCount.error': 250, 'limit.historySize.error': 2_000_000 };

describe('long-running upgrades: bounded history, continue-as-new, crashes, orphans', function () {
  this.timeout(600_000);
  let server: TemporalDevServer;
  let client: Client;
  let s: UoldStage;

  before(async () => {
    server = await new TemporalDevServer({ dynamicConfig: { ...LIMITS, ...FAST_TIMERS } }).start();
    onTeardown(() => server.stop());
    const connection = await Connection.connect({ address: server.address });
    onTeardown(() => connection.close());
    client = new Client({ connection });
    const first = await stage();
    s = first;
    // Captured: the last test replaces `s`, and each stage must be stopped itself.
    onTeardown(() => first.stop());
  });

  /** Approves, waits for the outcome (completed) and checks the switch against the workload's ledger. */
  async function approveAndExpectClean(imago: ImagoClient, id: string, load: ReturnType<typeof workload>): Promise<UpgradeStatus> {
    await imago.approve(id, 'ci');
    const st = await client.workflow.getHandle(id).result() as UpgradeStatus;
    assert.equal(st.outcome, 'completed', st.lastError ?? '');
    load.stop();
    await expectCleanSwitch(s, id, await load.done);
    return st;
  }

  async function workerProcess(queue: string, opts: { ownGroup?: boolean } = {}): Promise<ManagedProcess> {
    return new ManagedProcess('worker', process.execPath, ['--require', require.resolve('tsx/cjs'), path.join(ROOT, 'worker/main.ts'),
      '--address', server.address, '--task-queue', queue, '--workflow-bundle', await workflowBundleFixture()],
    path.join(s.dir, `worker-${queue}-${Date.now()}.log`), { cwd: ROOT, env: { ...process.env, ...s.env }, detached: !!opts.ownGroup });
  }

  function plan(name: string, over: (p: any) => void = () => undefined) {
    return loadPlanFile(s.writePlan((p) => {
      p.name = name;
      briefTesting(p);
      over(p);
    }));
  }

  itFull('imago gc finds and removes a universe whose workflow was terminated (no compensation ran); the dry run removes nothing', 'the AWS suite\'s terminated-upgrade case runs gc', async () => {
    const queue = 'imago-long-gc';
    const worker = await workerProcess(queue);
    onTeardown(() => worker.stop());
    const imago = ImagoClient.fromClient(client);
    const { workflowId: id } = await imago.start(plan('long-gc', (p) => { p.approval.policy = 'manual'; }), { taskQueue: queue });
    await waitPhase(client, id, ['data-transfer'], 120_000);
    await run(resolveTemporalBinary(), ['workflow', 'terminate', '--address', server.address, '--workflow-id', id, '--reason', 'test: an operator terminated it']);
    await worker.stop();
    assert.deepEqual(universeState(s, id), { dbAlive: true, appAlive: true }, 'a terminated workflow ran no compensation: Unew is left behind');
    const sources = [{ provider: new LocalProvider(), unew: { local: { baseDir: path.join(s.dir, 'universes') } } }];
    const dry = await collectGarbage({ client, sources });
    const entry = dry.find((e) => e.upgradeId === id);
    assert.ok(entry, JSON.stringify(dry));
    assert.deepEqual([entry!.workflow, entry!.action, entry!.destroyed], ['TERMINATED', 'destroy', undefined]);
    assert.deepEqual(universeState(s, id), { dbAlive: true, appAlive: true }, 'the dry run destroyed nothing');
    // Through the CLI, as an operator runs it.
    const out = await run(process.execPath, ['--require', require.resolve('tsx/cjs'), path.join(ROOT, 'client/cli.ts'), 'gc', '--universes-dir', path.join(s.dir, 'universes'), '--address', server.address, '--yes'], { cwd: ROOT });
    assert.match(out, new RegExp(`removed\\s+local:${id}\\s+workflow TERMINATED`));
    assert.deepEqual(universeState(s, id), { dbAlive: false, appAlive: false });
    assert.equal(fs.existsSync(universeDir(s, id)), false, "Unew's folder is gone");
  });

  itFull("Unew's database SIGKILLed during the copy: no worker crash, the status names the cause while retrying, then a clean failure", 'test/transfer/unreachable.test.ts kills Unew\'s mariadbd mid-copy at the transfer level', async () => {
    const queue = 'imago-long-unreachable';
    const worker = await workerProcess(queue);
    onTeardown(() => worker.stop());
    const imago = ImagoClient.fromClient(client);
    const { workflowId: id } = await imago.start(plan('long-unreachable', (p) => { p.transfer.unreachableRetryMs = 15_000; }), { taskQueue: queue });
    await waitPhase(client, id, ['data-transfer'], 120_000);
    await imago.pause(id);
    const state = JSON.parse(fs.readFileSync(path.join(universeDir(s, id), 'state.json'), 'utf8')) as { dbPid: number };
    process.kill(state.dbPid, 'SIGKILL');
    await imago.resume(id);
    // While retried: the status names the code and says what is left.
    let seen: UpgradeStatus | null = null;
    for (const deadline = Date.now() + 30_000; Date.now() < deadline && !seen?.transferError;) {
      await new Promise((r) => setTimeout(r, 300));
      seen = await imago.status(id);
    }
    assert.equal(seen?.transferError?.code, 'TRANSFER_TARGET_UNREACHABLE', JSON.stringify(seen?.transferError));
    assert.match(seen!.lastError ?? '', /TRANSFER_TARGET_UNREACHABLE.*retrying: \d+ s of retries left/);
    const err = await client.workflow.getHandle(id).result().then(() => null, (e: Error) => e);
    assert.ok(err, 'the upgrade failed');
    const final = await client.workflow.getHandle(id).query(statusQuery);
    assert.equal(final.outcome, 'failed');
    assert.match(final.lastError ?? '', /TRANSFER_TARGET_UNREACHABLE|still failing after \d+ s of retries/);
    assert.equal(worker.exitedAlready, false, 'the worker did not crash');
    assert.doesNotMatch(fs.readFileSync(worker.logFile, 'utf8'), /unhandled|Unhandled/, 'no unhandled rejection in the worker');
    assert.equal(fs.existsSync(universeDir(s, id)), false, 'compensation destroyed Unew');
    await worker.stop();
  });

  it("the worker SIGKILLed during testing, then its whole process group killed while awaiting approval: Unew survives, the upgrade completes", async () => {
    const queue = 'imago-long-crash';
    let worker = await workerProcess(queue, { ownGroup: true });
    onTeardown(() => worker.stop());
    const imago = ImagoClient.fromClient(client);
    const load = workload(s, 400_000, 40);
    try {
      const { workflowId: id } = await imago.start(plan('long-crash', (p) => { p.approval.policy = 'manual'; p.mirror.minDurationMs = 6_000; }), { taskQueue: queue });
      await waitPhase(client, id, ['testing'], 180_000);
      await new Promise((r) => setTimeout(r, 1_500)); // mirroring has begun
      await worker.kill9();
      await new Promise((r) => setTimeout(r, 3_000));
      worker = await workerProcess(queue, { ownGroup: true });
      const waiting = await waitPhase(client, id, ['awaiting-approval'], 240_000);
      assert.equal(waiting.gate?.pass, true, `the gate passed although the transfer stopped for a while: ${JSON.stringify(waiting.gate?.reasons)}`);
      // Ctrl-C, systemctl stop, a container stop: the whole process group.
      process.kill(-worker.pid!, 'SIGKILL');
      await worker.waitExit();
      await new Promise((r) => setTimeout(r, 1_000));
      assert.equal(universeState(s, id).dbAlive, true, "Unew's database is the universe's, not the worker's: it survives the worker's process group");
      worker = await workerProcess(queue, { ownGroup: true });
      await approveAndExpectClean(imago, id, load);
    } finally {
      load.stop();
      await load.done;
      await worker.stop();
    }
  });

  it('continues as new during the transfer and while awaiting approval, waits with a history that does not grow, then completes: 0 lost writes, 0 mixed state', async () => {
    // A stage of its own: the previous test left this one's interceptor on Unew.
    const own = await stage();
    s = own;
    onTeardown(() => own.stop());
    const queue = 'imago-long';
    const worker = await workerProcess(queue);
    onTeardown(() => worker.stop());
    const imago = ImagoClient.fromClient(client);
    const load = workload(s, 400_000, 40);
    try {
      const { workflowId: id } = await imago.start(plan('long-cain', (p) => { p.approval.policy = 'manual'; }), { taskQueue: queue });
      const handle = client.workflow.getHandle(id);
      await waitPhase(client, id, ['awaiting-approval'], 300_000);
      // The run that tested continues as new at the approval wait (its history is past the suggestion).
      let waiting = await handle.query(statusQuery);
      for (const deadline = Date.now() + 60_000; waiting.runs < 3 && Date.now() < deadline;) {
        await new Promise((r) => setTimeout(r, 500));
        waiting = await handle.query(statusQuery);
      }
      await new Promise((r) => setTimeout(r, 3_000)); // the new run's transfer has restarted and caught up
      const atWait = await handle.describe();
      // Waiting costs nothing: no per-tick signals, no timers; the transfer's progress is in its heartbeat.
      // 10 s: a history that grew per tick (the old signal per second) would have grown by dozens.
      await new Promise((r) => setTimeout(r, 10_000));
      const later = await handle.describe();
      const live = await imago.status(id);
      assert.equal(later.runId, atWait.runId, 'no continue-as-new while waiting with a small history');
      console.log(`      awaiting approval: run ${waiting.runs}, history ${atWait.historyLength} → ${later.historyLength} events over 10 s; transfer ${live.transfer?.phase} lag ${live.transfer?.lagMs} ms (from its heartbeat)`);
      assert.ok(waiting.runs >= 3, `continued as new at least twice (during the transfer, and at the approval wait): runs = ${waiting.runs}`);
      assert.equal(waiting.phase, 'awaiting-approval');
      const where = waiting.continuations.map((c) => c.resumeAt);
      assert.ok(where.includes('data-transfer') && where.includes('awaiting-approval'), `continued during the transfer and at the approval wait: ${JSON.stringify(waiting.continuations)}`);
      assert.ok(waiting.continuations.every((c) => c.historyLength < LIMITS['limit.historyCount.error']), 'every run ended well below the limit the server terminates at');
      assert.ok(later.historyLength - atWait.historyLength <= 8, `the history grew by ${later.historyLength - atWait.historyLength} events in 10 s of waiting`);
      assert.equal(live.transfer?.phase, 'following', 'the status shows the transfer following, from its heartbeat');
      assert.ok(live.transfer!.at > Date.now() - 10_000, 'the transfer progress in the status is fresh');
      assert.ok(waiting.timings.filter((t) => t.phase === 'data-transfer').length === 1, 'one data-transfer row in the timings across runs');
      const st = await approveAndExpectClean(imago, id, load);
      assert.ok(st.runs >= 3);
    } finally {
      load.stop();
      await load.done;
      await worker.stop();
    }
  });
});
