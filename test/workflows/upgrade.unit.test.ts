/**
 * The upgrade workflow's logic, in seconds: the real workflow code on a real
 * Temporal dev server, with every activity MOCKED (plain functions that
 * record their calls and play a scripted part: the transfer signals its
 * edges, the cut-over records its point of no return). No database, no
 * interceptor, no universe: what is tested is the order of the phases, the
 * compensation stack, the operator messages and the forward-only rule.
 */
import { strict as assert } from 'node:assert';
import * as path from 'node:path';
import { WorkflowFailedError, type Client } from '@temporalio/client';
import { ApplicationFailure, Context } from '@temporalio/activity';
import { NativeConnection, Worker } from '@temporalio/worker';
import type { UpgradeActivities } from '../../activities/types';
import { isImagoError } from '../../lib/errors';
import { loadPlanFile } from '../../plan/load';
import type { UpgradePlan } from '../../plan/types';
import type { UnewHandle } from '../../providers/provider';
import { ImagoClient } from '../../client/api';
import { approveSignal, pointOfNoReturnSignal, rollbackPointOfNoReturnSignal, statusQuery, transferControlsQuery, transferEdgeSignal } from '../../workflows/messages';
import type { CutoverReport, TransferProgressSnapshot, UpgradeStatus } from '../../workflows/status';
import { emptyCutoverReport } from '../../workflows/upgrade-state';
import { temporalFixture, workflowBundleFixture } from '../fixtures/servers';

const EXAMPLE = path.join(__dirname, '..', '..', 'examples', 'auction', 'plan.yaml');
const HANDLE: UnewHandle = { upgradeId: 'x', provider: 'local', appUrls: ['http://127.0.0.1:1'], db: { adminUrlRef: 'env:NONE', endpoint: '127.0.0.1:1', database: 'auction' }, state: {} };

function plan(over: (p: any) => void = () => undefined): UpgradePlan {
  const p = JSON.parse(JSON.stringify(loadPlanFile(EXAMPLE)));
  p.tests = [];
  p.mirror.minDurationMs = 50;
  p.postSwitchover.windowMs = 50;
  over(p);
  return p;
}

const snapshot = (phase: TransferProgressSnapshot['phase'], lagMs = 0): TransferProgressSnapshot => ({
  at: Date.now(), phase, tables: [], copiedRows: 10, totalRows: 10, percent: 100, rowsPerSec: 0, etaSec: 0, appliedPosition: '0-1-1',
  lagMs, lagEvents: 0, throttleReason: null, paused: false,
});

/** Mock activities: record calls; the transfer plays edges through the client, the cut-over plays a script. */
function mocks(client: () => Client, script: { cutOver?: (args: Parameters<UpgradeActivities['cutOver']>[0], n: number) => Promise<CutoverReport>; compareFresh?: () => boolean; grantsPass?: boolean; compareVerdict?: (n: number) => Awaited<ReturnType<UpgradeActivities['compareVerdict']>>; ruleFails?: () => boolean; rollBackRestores?: number } = {}) {
  const calls: string[] = [];
  const startMirrorEpochs: number[] = [];
  let cutOvers = 0;
  const acts: UpgradeActivities = {
    async validatePlanOnWorker() { calls.push('validatePlanOnWorker'); },
    async preflight() { calls.push('preflight'); return { server: 'mock', version: '10.11', binlogFormat: 'ROW', gtidPosition: '0-1-1', grants: [], tables: 1, freeDiskBytes: 1 } as any; },
    async provisionUnew() { calls.push('provisionUnew'); return HANDLE; },
    async installSchema() { calls.push('installSchema'); return { statements: 1 }; },
    async startUnewApp() { calls.push('startUnewApp'); return HANDLE; },
    async waitUnewHealthy() { calls.push('waitUnewHealthy'); },
    async runTransfer({ workflowId }) {
      calls.push('runTransfer');
      const wf = client().workflow.getHandle(workflowId);
      await wf.signal(transferEdgeSignal, { edge: 'started', attempt: 1, snapshot: snapshot('copy') });
      await wf.signal(transferEdgeSignal, { edge: 'caught-up', attempt: 1, snapshot: snapshot('following') });
      for (;;) {
        const c = await wf.query(transferControlsQuery).catch(() => null);
        if (c?.stop) return { snapshot: snapshot('stopped'), series: [] };
        await new Promise((r) => setTimeout(r, 100));
      }
    },
    async runPlanTests() { calls.push('runPlanTests'); return []; },
    async checkGrants() { calls.push('checkGrants'); const passed = script.grantsPass ?? true; return { name: 'grants check', passed, durationMs: 1, exitCode: passed ? 0 : 1, output: passed ? '' : 'INSERT on item_bids missing' }; },
    async startMirror(_h, _p, epoch = 0, sandbox = null) { calls.push(sandbox ? `startMirror(sandbox=${sandbox.appUrl})` : 'startMirror'); startMirrorEpochs.push(epoch); },
    async createSandbox() { calls.push('createSandbox'); return { upgradeId: 'x', appUrl: 'http://127.0.0.1:2', dbEndpoint: '127.0.0.1:3', position: '0-1-1', createdAt: Date.now(), cloneMs: 1, startMs: 1 }; },
    async destroySandbox() { calls.push('destroySandbox'); },
    async runLoadTest() { calls.push('runLoadTest'); return { name: 'load test', passed: true, exitCode: 0, durationMs: 1, output: '' }; },
    async compareVerdict() {
      calls.push('compareVerdict');
      if (script.compareVerdict) return script.compareVerdict(calls.filter((c) => c === 'compareVerdict').length);
      const fresh = script.compareFresh?.() ?? true;
      return { pass: true, reasons: [], failures: [], samples: 50, report: null, unewFresh: fresh, freshness: fresh ? 'fresh' : 'Unew is not being kept up to date' };
    },
    async stopMirror() { calls.push('stopMirror'); },
    async verifyData() { calls.push('verifyData'); return { differences: 0, checked: 10, examples: [], position: '0-1-1' }; },
    async checkCutover() { calls.push('checkCutover'); return { ok: true, at: Date.now(), checks: [], verifiedPosition: '0-1-1' }; },
    async cutOver(args) {
      calls.push(`cutOver(pnr=${args.pointOfNoReturn})`);
      cutOvers += 1;
      if (script.cutOver) return script.cutOver(args, cutOvers);
      // With rollback wanted, the cut-over reads Unew's position inside the hold and sends it with the point of no return.
      const unewPosition = args.plan.postSwitchover.rollback?.enabled ? { unewPosition: '0-2-5' } : {};
      await client().workflow.getHandle(args.workflowId).signal(pointOfNoReturnSignal, { attempt: args.attempt, at: Date.now(), ...unewPosition });
      return { ...emptyCutoverReport(args.attempt), switched: true, pointOfNoReturn: true };
    },
    async collectIngressTimeline() { calls.push('collectIngressTimeline'); return []; },
    async retireUold() { calls.push('retireUold'); return { kept: true, detail: 'kept (mock)' }; },
    async destroyUnew() { calls.push('destroyUnew'); },
    async runReverse(args) {
      calls.push(`runReverse(${args.startPosition})`);
      // Until cancelled (the workflow cancels it once every client is back on Uold, or at finalize).
      const ctx = Context.current();
      while (!ctx.cancellationSignal.aborted) { ctx.heartbeat(); await new Promise((r) => setTimeout(r, 100)); }
      return { running: false, startPosition: args.startPosition, appliedPosition: args.startPosition, lagMs: 0, eventsApplied: 0 };
    },
    async watchWindow(args) {
      calls.push('watchWindow');
      const bad = script.ruleFails?.() ?? false;
      return { at: Date.now(), reverse: { appliedPosition: '0-2-5', lagMs: 3, behind: 0 }, baselineP99Ms: args.baselineP99Ms ?? 4, rules: [{ name: 'error-rate', ok: !bad, value: bad ? 0.3 : 0, detail: bad ? '30 of 100 replies were 5xx' : '0 of 100 replies were 5xx' }] };
    },
    async rollBack(args) {
      calls.push(`rollBack(pnr=${args.pointOfNoReturn})`);
      // A failure before the rollback's own point of no return: every client stays on Unew.
      if (args.attempt <= (script.rollBackRestores ?? 0)) return { ...emptyCutoverReport(args.attempt), mode: 'restored', switched: false, error: 'INGRESS_DRAIN_TIMEOUT: (mock)' };
      await client().workflow.getHandle(args.workflowId).signal(rollbackPointOfNoReturnSignal, { attempt: args.attempt, at: Date.now() });
      return { ...emptyCutoverReport(args.attempt), switched: true, pointOfNoReturn: true };
    },
    async finishRollback() { calls.push('finishRollback'); return { reverseStateDropped: true }; },
  };
  return { acts, calls, startMirrorEpochs };
}

describe('the upgrade workflow with mocked activities', function () {
  this.timeout(60_000);
  let client: Client;
  let connection: NativeConnection;
  let worker: Worker;
  let running: Promise<void>;
  const QUEUE = `unit-${process.pid}`;
  let n = 0;
  /** One worker for every test: each workflow's activities go to the mocks of the test that started it. */
  const byWorkflow = new Map<string, UpgradeActivities>();
  let next: UpgradeActivities | null = null;

  before(async () => {
    const t = await temporalFixture();
    client = t.client;
    connection = await NativeConnection.connect({ address: t.address });
    const dispatch = Object.fromEntries(Object.keys(mocks(() => client).acts).map((name) => [name, (...args: unknown[]) => {
      const acts = byWorkflow.get(Context.current().info.workflowExecution!.workflowId)!;
      return (acts[name as keyof UpgradeActivities] as (...a: unknown[]) => Promise<unknown>)(...args);
    }]));
    worker = await Worker.create({ connection, taskQueue: QUEUE, workflowBundle: { codePath: await workflowBundleFixture() }, activities: dispatch });
    running = worker.run();
  });
  after(async () => { worker?.shutdown(); await running; await connection?.close(); });

  async function withWorker<T>(acts: UpgradeActivities, fn: (queue: string) => Promise<T>): Promise<T> {
    next = acts;
    return fn(QUEUE);
  }

  async function start(queue: string, p: UpgradePlan) {
    const id = `unit-${++n}-${Date.now()}`;
    byWorkflow.set(id, next!);
    return client.workflow.start('upgradeWorkflow', { taskQueue: queue, workflowId: id, args: [{ upgradeId: id, plan: p }] });
  }

  async function waitFor(h: { query: (q: typeof statusQuery) => Promise<UpgradeStatus> }, pred: (s: UpgradeStatus) => boolean): Promise<UpgradeStatus> {
    for (let i = 0; i < 300; i++) {
      const s = await h.query(statusQuery).catch(() => null);
      if (s && pred(s)) return s;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error('condition not reached');
  }

  it('runs the phases in order, checks before cutting over, stops the transfer after the switch, completes', async () => {
    const m = mocks(() => client);
    const st = await withWorker(m.acts, async (q) => (await start(q, plan())).result() as Promise<UpgradeStatus>);
    assert.equal(st.outcome, 'completed');
    assert.deepEqual(st.timings.map((t) => t.phase), ['bootstrapping', 'data-transfer', 'testing', 'termination', 'switchover', 'post-switchover', 'completed']);
    assert.deepEqual(st.uoldRetirement, { kept: true, detail: 'kept (mock)' }, 'finalize asked the provider to retire (or keep) Uold');
    assert.ok(m.calls.indexOf('checkCutover') < m.calls.indexOf('cutOver(pnr=false)'), 'the dry run comes before the attempt');
    assert.ok(!m.calls.includes('destroyUnew'), 'nothing compensated');
    assert.equal(st.pointOfNoReturnPassed, true);
    assert.equal(st.pointOfNoReturn?.attempt, 1);
    assert.equal(st.transfer?.phase, 'stopped', 'the transfer was asked to stop and returned');
    // Shadow writes: the sandbox is made before mirroring starts, given to it, and removed before the verification and the gate.
    const at = (c: string) => m.calls.indexOf(c);
    assert.ok(at('runPlanTests') < at('createSandbox') && at('createSandbox') < at('startMirror(sandbox=http://127.0.0.1:2)'), m.calls.join(' '));
    assert.ok(at('startMirror(sandbox=http://127.0.0.1:2)') < at('destroySandbox') && at('destroySandbox') < at('verifyData'), m.calls.join(' '));
    // The load test runs while the sandbox is up (its writes go there), after the window.
    assert.ok(at('startMirror(sandbox=http://127.0.0.1:2)') < at('runLoadTest') && at('runLoadTest') < at('destroySandbox'), m.calls.join(' '));
    assert.equal(m.calls.filter((c) => c === 'destroySandbox').length, 1);
    assert.ok(st.sandbox && 'appUrl' in st.sandbox && st.sandbox.destroyedAt !== null, 'the status says where it was and when it was removed');
  });

  it('an abort while awaiting approval runs the compensation stack in reverse: mirror off, transfer stopped, Unew destroyed', async () => {
    const m = mocks(() => client);
    await withWorker(m.acts, async (q) => {
      const h = await start(q, plan((p) => { p.approval.policy = 'manual'; }));
      await waitFor(h, (s) => s.phase === 'awaiting-approval');
      const reply = await ImagoClient.fromClient(client).abort(`imago-${h.workflowId}`, 'x').catch((e) => e);
      assert.ok(isImagoError(reply, 'CLIENT_NOT_FOUND'), 'the CLI prefix is not this test\'s id');
      await h.executeUpdate('abort', { args: [{ reason: 'change freeze' }] });
      const err = await h.result().then(() => null, (e) => e);
      assert.ok(err instanceof WorkflowFailedError);
      const st = await h.query(statusQuery);
      assert.equal(st.outcome, 'aborted');
      assert.equal(st.abortReason, 'change freeze');
    });
    const tail = m.calls.slice(m.calls.indexOf('verifyData') + 1);
    assert.deepEqual(tail.filter((c) => ['stopMirror', 'destroyUnew'].includes(c)), ['stopMirror', 'destroyUnew']);
    assert.ok(!m.calls.some((c) => c.startsWith('cutOver')), 'no cut-over started');
  });

  it('refuses an abort once termination has begun, with the registry code as the failure type; the status keeps no trace of it', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => { release = r; });
    const m = mocks(() => client, { cutOver: async (args) => { await gate; return { ...emptyCutoverReport(args.attempt), switched: true, pointOfNoReturn: true }; } });
    const st = await withWorker(m.acts, async (q) => {
      const h = await start(q, plan());
      await waitFor(h, (s) => s.phase === 'termination');
      const err = await h.executeUpdate('abort', { args: [{ reason: 'too late' }] }).then(() => null, (e) => e);
      assert.equal((err?.cause as { type?: string })?.type, 'IMAGO_WRONG_PHASE');
      assert.match(String(err?.cause?.message), /termination has begun; the cut-over will either complete or put every client back on Uold by itself/);
      release();
      return h.result() as Promise<UpgradeStatus>;
    });
    assert.equal(st.outcome, 'completed');
    assert.equal(st.abortReason, null);
  });

  it('past the point of no return a failing cut-over is only retried forward: never compensated, never destroyed', async () => {
    const m = mocks(() => client, {
      cutOver: async (args, n) => {
        if (n === 1) {
          await client.workflow.getHandle(args.workflowId).signal(pointOfNoReturnSignal, { attempt: args.attempt, at: Date.now() });
          // Given up for good (not retried by Temporal): the workflow itself must carry on forward.
          throw ApplicationFailure.nonRetryable('interceptor 2 did not answer its release', 'INGRESS_FLEET_PARTIAL');
        }
        return { ...emptyCutoverReport(args.attempt), switched: true, mode: 'forward', pointOfNoReturn: true };
      },
    });
    const st = await withWorker(m.acts, async (q) => (await start(q, plan())).result() as Promise<UpgradeStatus>);
    assert.equal(st.outcome, 'completed');
    assert.ok(m.calls.includes('cutOver(pnr=true)'), `the next attempt was told the point of no return had passed: ${m.calls.join(', ')}`);
    assert.ok(!m.calls.includes('destroyUnew'));
    assert.equal(st.cutovers.at(-1)?.mode, 'forward');
  });

  it('operator signals follow the same rules as the updates, and each is recorded: refused ones change nothing', async () => {
    const m = mocks(() => client);
    const st = await withWorker(m.acts, async (q) => {
      const h = await start(q, plan((p) => { p.approval.policy = 'manual'; }));
      // At once: the run is still bootstrapping (with mocks, the phases before approval pass too quickly to aim at one).
      await h.signal(approveSignal, { by: 'too-early' });
      const early = await waitFor(h, (s) => s.signals.length >= 1);
      assert.deepEqual([early.signals[0].name, early.signals[0].accepted, early.approval.approved], ['approve', false, false]);
      assert.match(early.signals[0].reason!, /approve is accepted only while awaiting approval/);
      await waitFor(h, (s) => s.phase === 'awaiting-approval');
      await h.signal(approveSignal, { by: 'alice' });
      return h.result() as Promise<UpgradeStatus>;
    });
    assert.equal(st.outcome, 'completed');
    assert.deepEqual(st.signals.map((s) => [s.name, s.accepted, s.by]), [['approve', false, 'too-early'], ['approve', true, 'alice']]);
    assert.equal(st.approval.by, 'alice');
  });

  it('a compare window during which Unew was not fed is discarded and a fresh one starts (a new epoch)', async () => {
    let polls = 0;
    const m = mocks(() => client, { compareFresh: () => ++polls > 1 });
    const st = await withWorker(m.acts, async (q) => (await start(q, plan())).result() as Promise<UpgradeStatus>);
    assert.equal(st.outcome, 'completed');
    assert.deepEqual(m.startMirrorEpochs, [0, 1], 'the stale window was discarded and the mirror restarted with a fresh comparer');
  });
  const withRollback = (over: (p: any) => void = () => undefined) => plan((p) => {
    p.postSwitchover.rollback = { enabled: true, uoldWriterUrlRef: 'env:W', onRolledBack: 'keep-unew' };
    p.postSwitchover.finalize = 'manual';
    over(p);
  });

  it('rollback in the window: the reverse starts at Unew\'s position of the point of no return, finalize stops it; a rollback runs the cut-over back, outcome rolled-back', async () => {
    const m = mocks(() => client);
    const m2 = mocks(() => client, { rollBackRestores: 1 });
    // Two upgrades at once (the worker serves both): one finalized, one rolled back.
    const [st, st2] = await Promise.all([
      withWorker(m.acts, async (q) => {
        const h = await start(q, withRollback());
        const inWindow = await waitFor(h, (s) => s.phase === 'post-switchover' && !!s.rollback?.available);
        assert.equal(inWindow.rollback?.startPosition, '0-2-5');
        for (let i = 0; i < 100 && !m.calls.includes('runReverse(0-2-5)'); i++) await new Promise((r) => setTimeout(r, 50));
        assert.equal((await h.executeUpdate('finalize', { args: [] }).then(() => null, (e) => e)), null, 'finalize is accepted in a rollback-ready window');
        return h.result() as Promise<UpgradeStatus>;
      }),
      withWorker(m2.acts, async (q) => {
        const h = await start(q, withRollback());
        await waitFor(h, (s) => s.phase === 'post-switchover' && !!s.rollback?.available);
        const noReason = await h.executeUpdate('rollback', { args: [{ reason: '' }] }).then(() => null, (e) => e);
        assert.equal((noReason?.cause as { type?: string })?.type, 'IMAGO_OPTIONS_INVALID');
        assert.match(await h.executeUpdate('rollback', { args: [{ reason: 'p99 doubled', by: 'bob' }] }) as string, /rolling back/);
        const again = await h.executeUpdate('rollback', { args: [{ reason: 'twice' }] }).then(() => null, (e) => e);
        assert.equal((again?.cause as { type?: string })?.type, 'IMAGO_WRONG_PHASE');
        // The first attempt fails before its point of no return: back in the window, clients on Unew, rollback offered again.
        const back = await waitFor(h, (s) => s.phase === 'post-switchover' && (s.rollback?.cutovers.length ?? 0) === 1);
        assert.match(back.lastError ?? '', /rollback attempt 1 did not complete \(every client stays on Unew\): INGRESS_DRAIN_TIMEOUT/);
        assert.equal(back.rollback?.pointOfNoReturnPassed, false);
        assert.match(await h.executeUpdate('rollback', { args: [{ reason: 'p99 doubled', by: 'bob' }] }) as string, /rolling back/);
        return h.result() as Promise<UpgradeStatus>;
      }),
    ]);
    // Finalized: this upgrade completes; the reverse was stopped and its state removed from Uold.
    assert.equal(st.outcome, 'completed');
    assert.ok(m.calls.includes('runReverse(0-2-5)'));
    assert.ok(m.calls.indexOf('finishRollback') > m.calls.indexOf('runReverse(0-2-5)'));
    assert.ok(m.calls.indexOf('runReverse(0-2-5)') > m.calls.indexOf('collectIngressTimeline'), 'the reverse starts only after the forward transfer stopped');

    assert.equal(st2.outcome, 'rolled-back');
    assert.deepEqual(st2.timings.map((t) => t.phase).slice(-3), ['post-switchover', 'rolling-back', 'rolled-back']);
    assert.deepEqual({ reason: st2.rollback?.requested?.reason, by: st2.rollback?.requested?.by, automatic: st2.rollback?.requested?.automatic }, { reason: 'p99 doubled', by: 'bob', automatic: false });
    assert.equal(st2.rollback?.pointOfNoReturnPassed, true);
    assert.equal(st2.rollback?.unew, 'kept');
    assert.ok(!m2.calls.includes('destroyUnew') && !m2.calls.includes('retireUold'), 'Unew kept for inspection; Uold not retired');
    assert.deepEqual(m2.calls.filter((c) => /^(rollBack|finishRollback)/.test(c)), ['rollBack(pnr=false)', 'rollBack(pnr=false)', 'finishRollback']);
    assert.deepEqual(st2.rollback?.cutovers.map((c) => [c.attempt, c.mode, c.switched]), [[1, 'restored', false], [2, 'fresh', true]]);
  });

  it('automatic rollback: a failed rule rolls back by itself, with the rule in the reason; without rollback in the plan, rollback is refused with why', async () => {
    const m = mocks(() => client, { ruleFails: () => true });
    const m2 = mocks(() => client);
    const [st] = await Promise.all([
      withWorker(m.acts, async (q) => (await start(q, withRollback((p) => {
        p.postSwitchover.autoRollback = { enabled: true, evaluateEveryMs: 200 };
        p.postSwitchover.rollback.onRolledBack = 'destroy-unew';
      }))).result() as Promise<UpgradeStatus>),
      withWorker(m2.acts, async (q) => {
        const h = await start(q, plan((p) => { p.postSwitchover.finalize = 'manual'; }));
        await waitFor(h, (s) => s.phase === 'post-switchover');
        const err = await h.executeUpdate('rollback', { args: [{ reason: 'x' }] }).then(() => null, (e) => e);
        assert.equal((err?.cause as { type?: string })?.type, 'IMAGO_WRONG_PHASE');
        assert.match(String(err?.cause?.message), /postSwitchover.rollback.enabled is false in the plan/);
        await h.executeUpdate('finalize', { args: [] });
        assert.equal(((await h.result()) as UpgradeStatus).outcome, 'completed');
      }),
    ]);
    assert.equal(st.outcome, 'rolled-back');
    assert.equal(st.rollback?.requested?.automatic, true);
    assert.equal(st.rollback?.requested?.by, 'auto-rollback');
    assert.match(st.rollback!.requested!.reason, /automatic rollback: rule error-rate failed: 30 of 100 replies were 5xx/);
    assert.equal(st.rollback?.unew, 'destroyed', 'onRolledBack: destroy-unew');
    assert.ok(m.calls.indexOf('destroyUnew') > m.calls.indexOf('finishRollback'), 'Unew destroyed once every client is on Uold and the reverse stopped');
    assert.ok(!m2.calls.some((c) => c.startsWith('runReverse')), 'no reverse replication without rollback in the plan');
  });

  it('a regression stops testing within one compare interval, long before minDurationMs; the gate names the rule', async () => {
    const regression = { rule: 'regression' as const, endpoint: 'GET /items/:id', reason: 'GET /items/:id: regression rate 40.0% > 1.0% (maxRegressionRate): field $.price differs over 225 samples' };
    const wantsMore = { rule: 'min-samples' as const, endpoint: 'GET /categories', reason: 'GET /categories: 3 pairs compared, needs at least 5 (minSamplesPerEndpoint)' };
    const m = mocks(() => client, {
      // The first verdict wants more pairs only; the second shows the regression (its text mentions samples: the type decides).
      compareVerdict: (n) => ({ pass: false, reasons: n === 1 ? [wantsMore.reason] : [wantsMore.reason, regression.reason], failures: n === 1 ? [wantsMore] : [wantsMore, regression], samples: 50, report: null, unewFresh: true, freshness: 'fresh' }),
    });
    const started = Date.now();
    let testingMs = 0;
    await withWorker(m.acts, async (q) => {
      const h = await start(q, plan((p) => { p.mirror.minDurationMs = 60_000; p.mirror.maxDurationMs = 120_000; }));
      const err = await h.result().then(() => null, (e) => e);
      assert.ok(err instanceof WorkflowFailedError, 'the gate failed the upgrade');
      const st = await h.query(statusQuery);
      const testing = st.timings.find((t) => t.phase === 'testing')!;
      testingMs = (testing.endedAt ?? Date.now()) - testing.startedAt;
      assert.equal(st.gate?.pass, false);
      assert.ok(st.gate!.reasons.some((r) => r.startsWith('compare regression: GET /items/:id')), st.gate!.reasons.join('\n'));
      assert.ok(st.gate!.reasons.some((r) => r.startsWith('compare min-samples: GET /categories')), 'every failing rule is named');
    });
    assert.equal(m.calls.filter((c) => c === 'compareVerdict').length, 2, 'stopped at the first verdict that showed the regression');
    // Two compare intervals of 2 s: the first (wants more) and the one that saw the regression; minDurationMs was 60 s.
    assert.ok(testingMs < 10_000, `testing lasted ${testingMs} ms (minDurationMs 60 s)`);
    assert.ok(Date.now() - started < 15_000);
    assert.ok(m.calls.includes('stopMirror') && m.calls.includes('destroyUnew'), 'compensated: mirror off, Unew destroyed');
    assert.ok(m.calls.includes('destroySandbox'), 'and the sandbox removed');
  });

  it('a failed test already fails the gate: no sandbox is cloned (the status says why), no load test runs, the window ends at minDurationMs', async () => {
    const wantsMore = { rule: 'min-samples' as const, endpoint: 'GET /rare', reason: 'GET /rare: 1 pairs compared, needs at least 5' };
    const m = mocks(() => client, { grantsPass: false, compareVerdict: () => ({ pass: false, reasons: [wantsMore.reason], failures: [wantsMore], samples: 1, report: null, unewFresh: true, freshness: 'fresh' }) });
    await withWorker(m.acts, async (q) => {
      const h = await start(q, plan());
      await h.result().then(() => null, (e) => e);
      const st = await h.query(statusQuery);
      assert.equal(st.gate?.pass, false);
      assert.ok(st.sandbox && 'none' in st.sandbox && /'grants check' failed/.test(st.sandbox.none), JSON.stringify(st.sandbox));
    });
    assert.ok(!m.calls.includes('createSandbox'), m.calls.join(' '));
    assert.ok(!m.calls.includes('runLoadTest'), `the plan enables the load test, but its verdict could not change the gate: ${m.calls.join(' ')}`);
    assert.ok(m.calls.includes('startMirror'), 'reads are still mirrored and compared');
    assert.equal(m.calls.filter((c) => c === 'compareVerdict').length, 1, 'and the window ends at minDurationMs: no wait for samples');
  });
});
