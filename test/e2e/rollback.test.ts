/**
 * Rollback after the switchover, end to end: the auction under the bidding
 * mix through the interceptor; the upgrade completes its switch; writes go on
 * on v2 for a while (carried back into Uold by the reverse replication);
 * then every client goes back to v1, and:
 *  - the ledger checked on Uold shows every acknowledged write, including
 *    those made on v2 (0 missing, duplicated or altered);
 *  - no request was served by Unew after the first one Uold served again
 *    (and none by Uold between Unew's first and the rollback);
 *  - the rollback's pause is printed.
 * Cases: an operator's rollback (ImagoClient); an automatic rollback of a v2
 * whose bids fail only once it serves (test/e2e/flaky-v2.ts); the worker
 * SIGKILLed inside the rollback's hold (a new worker finishes it).
 */
import { strict as assert } from 'node:assert';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ImagoClient } from '../../client/api';
import { checkLedger } from '../../examples/auction/ledger-checker';
import { startUoldStage, type UoldStage } from '../../examples/auction/stage';
import { startWorkload, type WorkloadResult } from '../../examples/auction/workload/generator';
import { IngressControlClient, type ServedRecord } from '../../interceptors/ingress';
import { ManagedProcess } from '../../lib/proc';
import { loadPlanFile } from '../../plan/load';
import { runPreflight } from '../../activities/preflight';
import { inspectPlanFile } from '../../plan/deep-check';
import { LocalProvider } from '../../providers/local/local-provider';
import { createWorker } from '../../worker/run';
import { statusQuery } from '../../workflows/messages';
import type { UpgradeStatus } from '../../workflows/status';
import { onTeardown, temporalFixture, workflowBundleFixture } from '../fixtures/servers';
import { itFull } from '../fixtures/tier';
import { briefTesting, universeState } from './harness';

const ROOT = path.join(__dirname, '..', '..');
const SIZE = { users: 300, items: 1_000, bids: 4_000 };

/** The rollback's atomicity from the served records: none by Unew after Uold's first again; none by Uold between Unew's first and that. */
export function rollbackAtomicity(records: ServedRecord[]): { uoldBefore: number; unew: number; uoldAfter: number; unewAfterRollback: number; uoldDuringUnew: number } {
  const firstNew = Math.min(...records.filter((r) => r.upstream === 'unew').map((r) => r.start));
  const back = Math.min(...records.filter((r) => r.upstream === 'uold' && r.start > firstNew).map((r) => r.start));
  return {
    uoldBefore: records.filter((r) => r.upstream === 'uold' && r.start < firstNew).length,
    unew: records.filter((r) => r.upstream === 'unew').length,
    uoldAfter: records.filter((r) => r.upstream === 'uold' && r.start >= back).length,
    unewAfterRollback: records.filter((r) => r.upstream === 'unew' && r.start >= back).length,
    // Uold replies that ended after Unew's first began, before the rollback: must be none (the forward switch's own rule).
    uoldDuringUnew: records.filter((r) => r.upstream === 'uold' && r.start > firstNew && r.start < back && r.end > firstNew).length,
  };
}

interface World { s: UoldStage; address: string; imago: ImagoClient; queue: string; dir: string }

async function world(name: string, cleanup: Array<() => Promise<unknown>>, opts: { generalLog?: boolean } = {}): Promise<World> {
  const t = await temporalFixture();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `imago-rollback-${name}-`));
  cleanup.push(async () => fs.rmSync(dir, { recursive: true, force: true }));
  const s = await startUoldStage({ ...SIZE, dir: path.join(dir, 'stage'), generalLog: opts.generalLog });
  cleanup.push(() => s.stop());
  // The reverse replication's account on Uold: writes to the application's database only (docs/rollback.md).
  const pw = crypto.randomBytes(8).toString('hex');
  await s.db.createUser('imago_writer', pw, ['SELECT, INSERT, UPDATE, DELETE, CREATE, DROP ON `auction`.*']);
  Object.assign(process.env, s.env, { IMAGO_UOLD_WRITER_URL: s.db.urlFor('imago_writer', pw, 'auction') });
  return { s, address: t.address, imago: ImagoClient.fromClient(t.client), queue: `rollback-${name}-${Date.now()}`, dir };
}

function planOf(w: World, over: (p: any) => void = () => undefined) {
  return loadPlanFile(w.s.writePlan((p) => {
    p.name = `rollback-${Date.now() % 1_000_000}`;
    briefTesting(p);
    p.approval.policy = 'auto';
    p.postSwitchover.finalize = 'manual';
    p.postSwitchover.rollback = { enabled: true, uoldWriterUrlRef: 'env:IMAGO_UOLD_WRITER_URL' };
    over(p);
  }));
}

async function waitStatus(w: World, id: string, pred: (s: UpgradeStatus) => boolean, timeoutMs = 240_000): Promise<UpgradeStatus> {
  const h = w.imago.client.workflow.getHandle(id);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const st = await h.query(statusQuery).catch(() => null);
    if (st && pred(st)) return st;
    if (st && st.outcome !== 'running') throw new Error(`ended ${st.outcome} (phase ${st.phase}, last error ${st.lastError})`);
    if (Date.now() > deadline) throw new Error(`condition not reached in ${timeoutMs} ms; phase ${st?.phase}, last error ${st?.lastError}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** Every acknowledged write on Uold, the rollback's atomicity, the pause: what every case asserts. */
async function expectRolledBack(w: World, id: string, final: UpgradeStatus, result: WorkloadResult, loadStartedAt: number, label: string, minOnV2 = 5): Promise<void> {
  const { s } = w;
  assert.equal(final.outcome, 'rolled-back', final.lastError ?? '');
  const records = await new IngressControlClient(s.controlUrl, s.token).servedAll(0);
  const a = rollbackAtomicity(records);
  const ledger = await checkLedger(`${s.db.rootUrl}auction`, 'v1', result.ledger);
  const onV2 = result.ledger.filter((e) => e.at > final.pointOfNoReturn!.at && e.at < final.rollback!.requested!.at).length;
  const cut = final.rollback!.cutovers.at(-1)!;
  // Timeline buckets are placed by ms since the workload started.
  const rbStart = final.timings.find((t) => t.phase === 'rolling-back')!.startedAt - loadStartedAt;
  const around = result.timeline.filter((b) => b.t >= rbStart - 1_000 && b.t <= rbStart + 3_000);
  const before = result.timeline.filter((b) => b.t < rbStart - 2_000 && b.t > rbStart - 12_000).map((b) => b.p99 ?? 0).sort((x, y) => x - y);
  const pause = Math.max(0, ...around.map((b) => b.max)) - (before[Math.floor(before.length / 2)] ?? 0);
  console.log(`      ${label}: rollback cut-over ${cut.totalMs.toFixed(1)} ms (hold ${cut.holdMs.toFixed(1)}, drain ${cut.drainMs.toFixed(1)}, flush ${cut.flushMs.toFixed(1)}, verify ${cut.verifyMs.toFixed(1)}, switch ${cut.switchMs.toFixed(1)}, release ${cut.releaseMs.toFixed(1)}; ${cut.changedRowsVerified} changed rows verified); pause seen by clients ${pause.toFixed(0)} ms; served ${JSON.stringify(a)}; ${result.ledger.length} acknowledged writes, ${onV2} of them on v2; ledger on Uold ${JSON.stringify({ checked: ledger.checked, missing: ledger.missing.length, duplicated: ledger.duplicated.length, altered: ledger.altered.length })}`);
  assert.ok(a.unew > 0 && a.uoldAfter > 0, `Unew served, then Uold again: ${JSON.stringify(a)}`);
  assert.equal(a.unewAfterRollback, 0, 'no request served by Unew after the first one Uold served again');
  assert.equal(a.uoldDuringUnew, 0, 'no request served by Uold while Unew served');
  assert.ok(onV2 >= minOnV2, `writes were acknowledged by v2 during the window (${onV2}, at least ${minOnV2} expected)`);
  assert.deepEqual([ledger.missing.length, ledger.duplicated.length, ledger.altered.length], [0, 0, 0], JSON.stringify(ledger).slice(0, 800));
  assert.ok(ledger.checked >= result.ledger.length);
  const st = await new IngressControlClient(s.controlUrl, s.token).status();
  assert.deepEqual([st.target, st.state], ['uold', 'forward'], 'the interceptor ends on Uold, released');
  assert.equal(final.rollback?.unew, 'kept');
  assert.deepEqual(universeState(s, id), { dbAlive: true, appAlive: true }, 'Unew kept for inspection');
  const [left] = await s.db.query("SELECT table_name FROM information_schema.tables WHERE table_schema = 'auction' AND table_name LIKE '\\_imago%'") as unknown as [unknown[]];
  assert.equal((left as unknown[] | undefined)?.length ?? 0, 0, "the reverse replication's state is removed from Uold");
}

describe('rollback after the switchover: every client back on v1, every write of v2 in Uold', function () {
  this.timeout(420_000);
  const cleanup: Array<() => Promise<unknown>> = [];
  afterEach(async () => { for (const fn of cleanup.splice(0).reverse()) await fn().catch((e) => console.error('rollback clean-up:', e)); });

  it("an operator's rollback in the window: v1 serves again with v2's writes; exit code 4", async () => {
    const w = await world('manual', cleanup, { generalLog: true });
    const { worker, close } = await createWorker({ address: w.address, taskQueue: w.queue, workflowBundlePath: await workflowBundleFixture() });
    const running = worker.run();
    cleanup.push(async () => { worker.shutdown(); await running; await close(); });
    onTeardown(async () => { if (worker.getState() === 'RUNNING') { worker.shutdown(); await running; } });
    const loadStartedAt = Date.now();
    const load = startWorkload({ baseUrl: w.s.url, mix: 'bidding', rate: 60, durationMs: 300_000, users: [1, SIZE.users], items: [1, SIZE.items], seed: 7 });
    cleanup.push(async () => { load.stop(); await load.done; });
    const started = await w.imago.start(planOf(w), { taskQueue: w.queue });
    const id = started.workflowId;
    const inWindow = await waitStatus(w, id, (st) => st.phase === 'post-switchover' && !!st.rollback?.available);
    assert.ok(inWindow.pointOfNoReturn?.unewPosition, "Unew's position at the point of no return was read inside the hold");
    // v2 serves, and writes, for a while; the reverse replication carries them into Uold.
    await new Promise((r) => setTimeout(r, 6_000));
    const mid = await waitStatus(w, id, (st) => !!st.rollback?.reverse?.appliedPosition && st.rollback.reverse.appliedPosition !== inWindow.rollback?.startPosition, 30_000).catch(() => null);
    const reply = await w.imago.rollback(id, 'e2e: v2 looks wrong');
    assert.match(reply, /rolling back/);
    const final = await (w.imago.client.workflow.getHandle(id).result() as Promise<UpgradeStatus>);
    await new Promise((r) => setTimeout(r, 2_000)); // v1 serves (and writes) again
    load.stop();
    const result = await load.done;
    assert.equal(result.errors, 0, `no client request failed: ${JSON.stringify(result.byStatus)}`);
    console.log(`      reverse replication during the window: ${JSON.stringify(mid?.rollback?.reverse ?? null)}`);
    await expectRolledBack(w, id, final, result, loadStartedAt, 'manual');
    assert.equal(final.rollback?.requested?.automatic, false);
    // Uold was written to by Imago only from the point of no return, and only as the writer account.
    const writes = await w.s.db.query(
      "SELECT user_host AS u, UNIX_TIMESTAMP(event_time) * 1000 AS t, CONVERT(argument USING utf8mb4) AS q FROM mysql.general_log WHERE command_type = 'Query' AND user_host NOT LIKE 'auction[%' AND user_host NOT LIKE 'root[%'",
    ) as Array<{ u: string; t: number | string; q: string }>;
    const imagoWrites = writes.filter((r) => /^\s*(INSERT|UPDATE|DELETE|REPLACE|CREATE|ALTER|DROP|TRUNCATE)/i.test(r.q));
    assert.ok(imagoWrites.length > 0 && imagoWrites.every((r) => r.u.startsWith('imago_writer[')), `writes by others than the app: ${JSON.stringify(imagoWrites.filter((r) => !r.u.startsWith('imago_writer[')).slice(0, 3))}`);
    const firstWrite = Math.min(...imagoWrites.map((r) => Number(r.t)));
    assert.ok(firstWrite >= final.pointOfNoReturn!.at - 1, `Imago's first write to Uold (${firstWrite}) comes after the point of no return (${final.pointOfNoReturn!.at})`);
    // The CLI says so with exit code 4.
    const cli = new ManagedProcess('imago-status', process.execPath, [path.join(ROOT, 'client/bin/imago.js'), 'watch', id, '--address', w.address], path.join(w.dir, 'cli.log'), { cwd: ROOT, env: { ...process.env } });
    const code = await cli.waitExit();
    assert.equal(code, 4, fs.readFileSync(path.join(w.dir, 'cli.log'), 'utf8').slice(-1_000));
  });
  it('automatic rollback: a v2 whose bids fail only once it serves is rolled back by the error-rate rule, with the rule in the status', async () => {
    const w = await world('auto', cleanup);
    const { worker, close } = await createWorker({ address: w.address, taskQueue: w.queue, workflowBundlePath: await workflowBundleFixture() });
    const running = worker.run();
    cleanup.push(async () => { worker.shutdown(); await running; await close(); });
    const loadStartedAt = Date.now();
    const load = startWorkload({ baseUrl: w.s.url, mix: 'bidding', rate: 60, durationMs: 300_000, users: [1, SIZE.users], items: [1, SIZE.items], seed: 8 });
    cleanup.push(async () => { load.stop(); await load.done; });
    const plan = planOf(w, (p) => {
      p.unew.app.command = [process.execPath, '--require', require.resolve('tsx/cjs'), path.join(__dirname, 'flaky-v2.ts')];
      // The latency rule is left loose here: this case shows the error-rate rule (test/workflows/rollback-rules.unit.test.ts shows both).
      p.postSwitchover.autoRollback = { enabled: true, evaluateEveryMs: 500, sampleWindowMs: 4_000, minRequests: 30, maxErrorRate: 0.02, maxP99Ratio: 1_000 };
    });
    const id = (await w.imago.start(plan, { taskQueue: w.queue })).workflowId;
    const final = await (w.imago.client.workflow.getHandle(id).result() as Promise<UpgradeStatus>);
    await new Promise((r) => setTimeout(r, 2_000));
    load.stop();
    const result = await load.done;
    const req = final.rollback?.requested;
    console.log(`      automatic rollback: ${JSON.stringify(req)}; rules ${JSON.stringify(final.rollback?.rules)}; window ${((req?.at ?? 0) - (final.pointOfNoReturn?.at ?? 0))} ms after the point of no return; client errors ${JSON.stringify(result.byStatus)}`);
    assert.equal(req?.automatic, true);
    assert.equal(req?.by, 'auto-rollback');
    assert.match(req!.reason, /automatic rollback: rule error-rate failed: \d+ of \d+ replies were 5xx/);
    assert.ok((result.byStatus['500'] ?? 0) > 0, 'clients saw the fault (v2 only)');
    // The rule fires within seconds of the switch: v2 acknowledged only a few writes by then.
    await expectRolledBack(w, id, final, result, loadStartedAt, 'automatic', 1);
  });

  itFull('the worker SIGKILLed inside the rollback, past its point of no return: a new worker finishes it, every client on v1', 'the cut-over matrix kills the worker past the forward point of no return, through the same driver', async () => {
    const w = await world('kill', cleanup);
    const faultDir = path.join(w.dir, 'fault');
    fs.mkdirSync(faultDir);
    const env = { ...process.env };
    const bundle = ['--workflow-bundle', await workflowBundleFixture()];
    let worker = new ManagedProcess('rollback-fault-worker', process.execPath, ['--require', require.resolve('tsx/cjs'), path.join(__dirname, 'rollback-fault-worker.ts'), '--address', w.address, '--task-queue', w.queue, '--fault-dir', faultDir, '--after', 'switchProvider', ...bundle], path.join(w.dir, 'fault-worker.log'), { cwd: ROOT, env });
    cleanup.push(() => worker.stop());
    const loadStartedAt = Date.now();
    const load = startWorkload({ baseUrl: w.s.url, mix: 'bidding', rate: 60, durationMs: 300_000, users: [1, SIZE.users], items: [1, SIZE.items], seed: 9 });
    cleanup.push(async () => { load.stop(); await load.done; });
    const id = (await w.imago.start(planOf(w), { taskQueue: w.queue })).workflowId;
    await waitStatus(w, id, (st) => st.phase === 'post-switchover' && !!st.rollback?.available);
    await new Promise((r) => setTimeout(r, 4_000));
    await w.imago.rollback(id, 'e2e: kill inside the rollback');
    for (const end = Date.now() + 60_000; !fs.existsSync(path.join(faultDir, 'at')); ) {
      if (Date.now() > end) throw new Error('the rollback did not reach its boundary');
      await new Promise((r) => setTimeout(r, 20));
    }
    const at = await w.imago.client.workflow.getHandle(id).query(statusQuery);
    assert.equal(at.phase, 'rolling-back');
    assert.equal(at.rollback?.pointOfNoReturnPassed, true, "the rollback's point of no return is recorded before its commit");
    await worker.kill9();
    worker = new ManagedProcess('worker', process.execPath, ['--require', require.resolve('tsx/cjs'), path.join(ROOT, 'worker/main.ts'), '--address', w.address, '--task-queue', w.queue, ...bundle], path.join(w.dir, 'worker.log'), { cwd: ROOT, env });
    const final = await (w.imago.client.workflow.getHandle(id).result() as Promise<UpgradeStatus>);
    await new Promise((r) => setTimeout(r, 2_000));
    load.stop();
    const result = await load.done;
    console.log(`      kill: rollback attempts ${JSON.stringify(final.rollback?.cutovers.map((c) => ({ a: c.attempt, mode: c.mode, sw: c.switched, pnr: c.pointOfNoReturn, err: c.error?.slice(0, 100) })))}; client errors ${JSON.stringify(result.byStatus)}`);
    assert.ok(final.rollback!.cutovers.some((c) => c.mode === 'forward' && c.switched), 'a later attempt finished the rollback forward, to Uold');
    assert.equal(result.errors, 0, `no client request failed: ${JSON.stringify(result.byStatus)}`);
    await expectRolledBack(w, id, final, result, loadStartedAt, 'kill');
  });
  it("bad input is refused before anything starts: a table without a reverse, a reverse that is not the inverse (table and first row named), a writer account that cannot write", async () => {
    const w = await world('bad', cleanup);
    const conversion = path.join(ROOT, 'examples', 'auction', 'conversion.ts');
    const variant = (name: string, body: string) => {
      const file = path.join(w.dir, `${name}.ts`);
      fs.writeFileSync(file, `import conv from ${JSON.stringify(conversion.replace(/\.ts$/, ''))};\nexport default ${body};\n`);
      return file;
    };
    const noReverse = variant('no-reverse', "{ ...conv, reverse: conv.reverse!.filter((r) => r.source !== 'purchases') }");
    // Loses everything after the first space of a name: 'Ada Lovelace' comes back as 'Ada'.
    const notInverse = variant('not-inverse', "{ ...conv, reverse: conv.reverse!.map((r) => (r.source !== 'users' ? r : { ...r, convert: (n: any) => ({ users: [{ ...r.convert(n).users[0], name: String(n.first_name) }] }) })) }");
    const fileOf = (conv: string) => w.s.writePlan((p) => {
      p.unew.conversion = conv;
      p.postSwitchover.rollback = { enabled: true, uoldWriterUrlRef: 'env:IMAGO_UOLD_WRITER_URL' };
    });

    // imago plan validate: the missing reverse, by table.
    const validated = await inspectPlanFile(fileOf(noReverse), { offline: true });
    assert.deepEqual(validated.errors, ["/unew/conversion: reverse: Unew table 'purchases' (written from 'buy_now') has no reverse (ROLLBACK_REVERSE_MISSING; postSwitchover.rollback.enabled is true)"]);

    // The preflight (the workflow runs the same, without the scratch database): Uold's real rows through forward then reverse.
    const providers = { local: new LocalProvider() };
    const pre1 = await runPreflight(loadPlanFile(fileOf(noReverse)), { providers, scratch: false, sampleRows: 50 });
    const rb1 = pre1.checks.filter((c) => c.group === 'rollback');
    assert.equal(pre1.ok, false);
    assert.deepEqual(rb1.filter((c) => c.status === 'fail').map((c) => [c.name, c.code]), [['reverse', 'ROLLBACK_REVERSE_MISSING']]);
    const pre2 = await runPreflight(loadPlanFile(fileOf(notInverse)), { providers, scratch: false, sampleRows: 50 });
    const bad = pre2.checks.filter((c) => c.group === 'rollback' && c.status === 'fail');
    console.log(`      refused: ${bad.map((c) => `[${c.code}] ${c.name}: ${c.detail}`).join(' | ')}`);
    assert.deepEqual(bad.map((c) => [c.name, c.code]), [['round trip users', 'ROLLBACK_REVERSE_NOT_INVERSE']]);
    assert.match(bad[0].detail, /^table 'users', key \[1\]: column 'name' comes back as "\S+", was "\S+ [^"]+"; row \{"id":1,/);
    assert.ok(pre2.checks.some((c) => c.group === 'rollback' && c.name === 'round trip bids' && c.status === 'ok'), 'the other tables round-trip');
    assert.ok(pre2.checks.some((c) => c.group === 'rollback' && c.name === 'writer account' && c.status === 'ok'));

    // A writer account without write privileges: each missing one named, with the GRANT that fixes it.
    await w.s.db.createUser('imago_ro', 'pw', ['SELECT ON `auction`.*']);
    process.env.IMAGO_UOLD_RO_URL = w.s.db.urlFor('imago_ro', 'pw', 'auction');
    const pre3 = await runPreflight(loadPlanFile(w.s.writePlan((p) => { p.postSwitchover.rollback = { enabled: true, uoldWriterUrlRef: 'env:IMAGO_UOLD_RO_URL' }; })), { providers, scratch: false, sampleRows: 50 });
    const ro = pre3.checks.find((c) => c.group === 'rollback' && c.name === 'writer account')!;
    assert.deepEqual([ro.status, ro.code], ['fail', 'ROLLBACK_WRITER_PRIVILEGES']);
    assert.match(ro.detail, /lacks INSERT, UPDATE, DELETE, CREATE, DROP on auction\.\*/);
    assert.match(ro.fix!, /^GRANT INSERT, UPDATE, DELETE, CREATE, DROP ON `auction`\.\* TO 'imago_ro'@/);
    const trips = pre3.checks.filter((c) => c.group === 'rollback' && c.name.startsWith('round trip'));
    assert.ok(trips.length === 7 && trips.every((c) => c.status === 'ok' || /is empty/.test(c.detail)), `the auction's own reverse round-trips Uold's rows: ${JSON.stringify(trips.filter((c) => c.status !== 'ok'))}`);
  });
});
