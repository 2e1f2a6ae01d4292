/**
 * The upgrade driver: Imago's five phases as one durable workflow.
 *
 *   Bootstrapping → Data transfer → Testing → Termination → Switchover
 *
 * Testing runs before termination: the long tests and the mirrored-traffic
 * comparison need Uold serving, and quiescence must last milliseconds, so
 * only a short smoke test stays inside termination. Termination and
 * switchover run inside one bounded activity (cutOver), because every round
 * trip through the server while clients are held adds to the pause.
 *
 * The phases are named functions below, read top to bottom. Each step that
 * creates something pushes its undo on a compensation stack; a failure or an
 * abort before the point of no return runs the stack in reverse (Unew
 * destroyed, Uold untouched). From the point of no return on nothing is
 * undone: every path only finishes the switch.
 *
 * An upgrade may last days (a long copy, a weekend's wait for approval): its
 * history stays bounded because the transfer reports progress in heartbeats
 * and only edges as signals, and the workflow continues as new when the
 * server suggests it, at any phase before termination.
 *
 * Deterministic code only: no I/O here (lint-enforced); everything that
 * touches a process, a socket or a database is an activity.
 */
import {
  ApplicationFailure, CancellationScope, allHandlersFinished, condition, continueAsNew, isCancellation, log, patched, proxyActivities,
  setCurrentDetails, setHandler, sleep, upsertSearchAttributes, workflowInfo,
} from '@temporalio/workflow';
import type { CompareSummary, UpgradeActivities } from '../activities/types';
import type { SandboxHandle, UnewHandle } from '../providers/provider';
import {
  DESCRIPTIONS, SIGNAL_NOTE, UPDATE_NOTE,
  abortSignal, abortUpdate, approveSignal, approveUpdate, cutoverCheckUpdate, finalizeSignal, finalizeUpdate, pauseSignal, pauseUpdate,
  pointOfNoReturnSignal, resumeSignal, resumeUpdate, rollbackPointOfNoReturnSignal, rollbackUpdate, setThrottleUpdate, statusQuery, transferControlsQuery, transferEdgeSignal,
} from './messages';
import { cutoverPreset, presets } from './presets';
import { reasonOf, refusal, senderOf, validate, type Operation, type RulesView } from './rules';
import { ImagoFromVersion, ImagoOutcome, ImagoPhase, ImagoSystem, ImagoToVersion } from './search-attributes';
import type { CarriedState, GateResult, Phase, ResumePoint, RollbackStatus, UpgradeInput, UpgradeStatus } from './status';
import {
  applyTransferEdge, currentDetails, describeFailure, emptyCutoverReport, evaluateGate, initialStatus, needsSamplesOnly, pointOfNoReturnProblem, recordSignal, transferEdgeProblem,
  unewFailed,
} from './upgrade-state';

const short = proxyActivities<UpgradeActivities>(presets.short);
const healthWait = proxyActivities<UpgradeActivities>(presets.health);
const provision = proxyActivities<UpgradeActivities>(presets.provision);
const longRunning = proxyActivities<UpgradeActivities>(presets.transfer);
const testing = proxyActivities<UpgradeActivities>(presets.testing);
const reversing = proxyActivities<UpgradeActivities>(presets.reverse);

/** Thrown inside the workflow when an operator aborts; compensation follows. */
class AbortRequested extends Error {}

/** Thrown to leave the current run for a new one (continue-as-new); never seen by anyone else. */
class ContinuingAsNew extends Error {}

/** How often a testing window may restart because Unew was not kept up to date, before the gate fails. */
const MAX_WINDOW_RESTARTS = 5;

/** How often the compare verdict is read while mirroring: a regression stops testing within one interval. */
export const COMPARE_INTERVAL_MS = 2_000;

/** Everything one run of the upgrade knows. Handlers and phases share it. */
interface Run {
  input: UpgradeInput;
  status: UpgradeStatus;
  handle: UnewHandle | null;
  approved: boolean;
  approvalWaitStartedAt: number | null;
  abortReason: string | null;
  finalizeRequested: boolean;
  attempts: number;
  compareEpoch: number;
  /** The undo of each step done so far, run in reverse on failure before the point of no return. */
  undo: Array<{ what: string; fn: () => Promise<unknown> }>;
  transfer: TransferTask | null;
  /** Where the next run picks up, once this one decided to continue as new. */
  resumeAt: ResumePoint | null;
  /** A rollback asked for (by an operator or a failed rule) and not yet acted on. */
  rollbackRequest: { reason: string; by: string; automatic: boolean } | null;
  /** The reverse replication Unew -> Uold, from the point of no return (plans with postSwitchover.rollback). */
  reverse: { scope: CancellationScope; done: Promise<void>; running: boolean; failure: string | null } | null;
  rollbackAttempts: number;
}

interface TransferTask {
  scope: CancellationScope;
  done: Promise<void>;
  running: boolean;
  caughtUp: boolean;
  /** Set when the activity failed for good (its retries exhausted). */
  failure: string | null;
  /** Bumped when the transfer restarted (a new activity attempt): Unew was not fed for a while. */
  restarts: number;
}

export async function upgradeWorkflow(input: UpgradeInput): Promise<UpgradeStatus> {
  const run = startRun(input);
  const { status } = run;
  try {
    const resumeAt = input.carried?.resumeAt;
    if (!resumeAt) await bootstrap(run);
    else {
      // A continued run: Unew exists (and the mirror, once testing began); rebuild their undo.
      run.undo.push({ what: 'destroy Unew', fn: () => provision.destroyUnew(input.upgradeId, input.plan) });
      if (resumeAt !== 'data-transfer') run.undo.push({ what: 'stop mirroring', fn: () => short.stopMirror(input.plan) });
    }
    await transferData(run);
    await testAndSwitch(run, resumeAt);
    const rolledBack = await postSwitchover(run);
    return finish(run, rolledBack ? 'rolled-back' : 'completed');
  } catch (err) {
    if (err instanceof ContinuingAsNew) return continueNow(run);
    status.lastError = err instanceof AbortRequested ? `aborted: ${err.message}` : describeFailure(err);
    if (status.pointOfNoReturnPassed) {
      // Unew serves; nothing may be undone. Only the tail work (stopping the transfer, the report) failed.
      finish(run, 'failed');
      throw err;
    }
    await compensate(run);
    const aborted = err instanceof AbortRequested;
    finish(run, aborted ? 'aborted' : 'failed');
    if (aborted) throw ApplicationFailure.nonRetryable(`upgrade aborted: ${err.message}`, 'IMAGO_ABORTED');
    throw err;
  }
}

// --- the run: state and messages ------------------------------------------

function startRun(input: UpgradeInput): Run {
  const c = input.carried;
  const status = c ? { ...c.status, runs: c.status.runs + 1, controls: { ...c.status.controls, stop: false } } : initialStatus(input, Date.now());
  const run: Run = {
    input, status, handle: c?.handle ?? null, approved: c?.approved ?? false, approvalWaitStartedAt: c?.approvalWaitStartedAt ?? null,
    abortReason: null, finalizeRequested: false, attempts: c?.attempts ?? 0, compareEpoch: c?.compareEpoch ?? 0, undo: [], transfer: null, resumeAt: null,
    rollbackRequest: null, reverse: null, rollbackAttempts: 0,
  };
  const { plan } = input;
  upsertSearchAttributes([
    { key: ImagoSystem, value: plan.system }, { key: ImagoFromVersion, value: plan.from.version },
    { key: ImagoToVersion, value: plan.to.version }, { key: ImagoOutcome, value: 'running' }, { key: ImagoPhase, value: status.phase },
  ]);
  const view = (): RulesView => ({
    phase: status.phase, outcome: status.outcome, pointOfNoReturnPassed: status.pointOfNoReturnPassed, paused: status.controls.paused,
    approved: run.approved, abortRequested: run.abortReason !== null, finalizeRequested: run.finalizeRequested,
    rollback: {
      available: !!status.rollback?.available,
      why: status.rollback?.why ?? (plan.postSwitchover.rollback?.enabled ? 'the reverse replication into Uold starts at the switchover' : 'postSwitchover.rollback.enabled is false in the plan, so Uold was not kept current'),
      requested: run.rollbackRequest !== null || status.phase === 'rolling-back',
    },
  });

  // What each accepted operator message does (the same for an update and a signal).
  const apply: Record<Exclude<Operation, 'rollback' | 'cutoverCheck' | 'setThrottle'>, (arg: unknown) => string> = {
    approve: (arg) => {
      run.approved = true;
      status.approval = { ...status.approval, approved: true, by: senderOf(arg) ?? 'operator', at: Date.now() };
      return 'approved: termination and switchover will start when Unew has caught up';
    },
    abort: (arg) => {
      run.abortReason = reasonOf(arg);
      status.abortReason = run.abortReason;
      return 'aborting: Unew will be destroyed; Uold is untouched';
    },
    pause: () => { status.controls = { ...status.controls, paused: true }; return 'paused'; },
    resume: () => { status.controls = { ...status.controls, paused: false }; return 'resumed'; },
    finalize: () => { run.finalizeRequested = true; return 'finalizing'; },
  };

  setHandler(statusQuery, () => status, { description: DESCRIPTIONS.status });
  setHandler(transferControlsQuery, () => status.controls, { description: DESCRIPTIONS.transferControls });
  for (const [op, def] of [['approve', approveUpdate], ['abort', abortUpdate], ['pause', pauseUpdate], ['resume', resumeUpdate], ['finalize', finalizeUpdate]] as const) {
    setHandler(def as typeof approveUpdate, (arg?: unknown) => apply[op](arg), { validator: (arg?: unknown) => validate(op, view(), arg), description: DESCRIPTIONS[op] + UPDATE_NOTE });
  }
  // A signal cannot answer: each one is recorded in the status, accepted or refused with the reason.
  for (const [op, def] of [['approve', approveSignal], ['abort', abortSignal], ['pause', pauseSignal], ['resume', resumeSignal], ['finalize', finalizeSignal]] as const) {
    setHandler(def as typeof approveSignal, (arg?: unknown) => {
      const r = refusal(op, view(), arg);
      recordSignal(status, { name: op, at: Date.now(), accepted: !r, ...(r ? { reason: r.reason } : {}), ...(senderOf(arg) ? { by: senderOf(arg) } : {}) });
      if (!r) apply[op](arg);
      showDetails(run);
    }, { description: DESCRIPTIONS[op] + SIGNAL_NOTE });
  }
  setHandler(setThrottleUpdate, (t) => { status.controls = { ...status.controls, ...t }; return status.controls; }, {
    validator: (t) => validate('setThrottle', view(), t), description: DESCRIPTIONS.setThrottle + UPDATE_NOTE,
  });
  setHandler(rollbackUpdate, (arg) => {
    run.rollbackRequest = { reason: reasonOf(arg)!, by: senderOf(arg) ?? 'operator', automatic: false };
    showDetails(run);
    return 'rolling back: every client will be moved back to Uold (hold, drain, flush the reverse replication, verify, switch, release)';
  }, { validator: (arg) => validate('rollback', view(), arg), description: DESCRIPTIONS.rollback + UPDATE_NOTE });
  setHandler(cutoverCheckUpdate, async () => {
    const report = await short.checkCutover(cutoverArgs(run));
    status.cutoverCheck = report;
    return report;
  }, { validator: () => validate('cutoverCheck', view()), description: DESCRIPTIONS.cutoverCheck + UPDATE_NOTE });

  // Imago's own signals: the web UI lists them too. A hand-made one must not throw (see transferEdgeProblem): refused, recorded.
  const refuseInternal = (name: string, reason: string) => { recordSignal(status, { name, at: Date.now(), accepted: false, reason }); showDetails(run); };
  setHandler(transferEdgeSignal, (e) => {
    const bad = transferEdgeProblem(e);
    if (bad) { refuseInternal('transferEdge', bad); return; }
    applyTransferEdge(status, e, Date.now());
    const t = run.transfer;
    if (!t) return;
    if (e.edge === 'started' && e.attempt > 1) { t.restarts += 1; t.caughtUp = false; }
    if (e.edge === 'caught-up') t.caughtUp = true;
    if (e.edge === 'fell-behind') t.caughtUp = false;
    // A failure means Unew was not fed for a while: like a restart, it invalidates the compare window.
    if (e.edge === 'error') { t.caughtUp = false; t.restarts += 1; }
    showDetails(run);
  }, { description: DESCRIPTIONS.transferEdge });
  setHandler(pointOfNoReturnSignal, (p) => {
    const bad = pointOfNoReturnProblem(p, run.attempts);
    if (bad) { refuseInternal('pointOfNoReturn', bad); return; }
    // Durable: from here on the workflow never compensates, whatever the cut-over activity reports.
    status.pointOfNoReturnPassed = true;
    status.pointOfNoReturn ??= { attempt: p.attempt, at: p.at, ...(typeof p.unewPosition === 'string' && p.unewPosition ? { unewPosition: p.unewPosition } : {}) };
  }, { description: DESCRIPTIONS.pointOfNoReturn });
  setHandler(rollbackPointOfNoReturnSignal, (p) => {
    const bad = pointOfNoReturnProblem(p, run.rollbackAttempts);
    if (bad || !status.rollback) { refuseInternal('rollbackPointOfNoReturn', bad ?? 'no rollback was started'); return; }
    // Durable: from here the rollback only moves forward, to Uold.
    status.rollback.pointOfNoReturnPassed = true;
  }, { description: DESCRIPTIONS.rollbackPointOfNoReturn });
  return run;
}

function setPhase(run: Run, phase: Phase): void {
  const { status } = run;
  const now = Date.now();
  const open = status.timings[status.timings.length - 1];
  if (open && open.endedAt === undefined) open.endedAt = now;
  status.timings.push({ phase, startedAt: now });
  status.phase = phase;
  status.phaseStartedAt = now;
  upsertSearchAttributes([{ key: ImagoPhase, value: phase }]);
  showDetails(run);
  log.info('phase', { upgradeId: run.input.upgradeId, phase });
}

/** The web UI's current details, kept in step with the status (no history event: it is read with a query). */
function showDetails(run: Run): void {
  setCurrentDetails(currentDetails(run.status, workflowInfo().workflowId));
}

function expectNotAborted(run: Run): void {
  if (run.abortReason !== null) throw new AbortRequested(run.abortReason);
}

/** Waits for fn() or an abort, whichever first; false on timeout. */
async function until(run: Run, fn: () => boolean, timeoutMs?: number): Promise<boolean> {
  const done = () => fn() || run.abortReason !== null;
  const ok = timeoutMs === undefined ? (await condition(done), true) : await condition(done, timeoutMs);
  expectNotAborted(run);
  return ok;
}

/** Like until, and leaves the run for a new one when the server suggests it (history bounded). */
async function untilOrContinue(run: Run, resumeAt: ResumePoint, fn: () => boolean, timeoutMs?: number): Promise<boolean> {
  const suggested = () => workflowInfo().continueAsNewSuggested;
  const ok = await until(run, () => fn() || suggested(), timeoutMs);
  if (!fn() && suggested()) {
    run.resumeAt = resumeAt;
    throw new ContinuingAsNew();
  }
  return ok;
}

function finish(run: Run, outcome: 'completed' | 'aborted' | 'failed' | 'rolled-back'): UpgradeStatus {
  run.status.outcome = outcome;
  setPhase(run, outcome);
  upsertSearchAttributes([{ key: ImagoOutcome, value: outcome }]);
  return run.status;
}

// --- phase 1: bootstrapping ---------------------------------------------------

async function bootstrap(run: Run): Promise<void> {
  const { plan, upgradeId } = run.input;
  const { status } = run;
  setPhase(run, 'bootstrapping');
  await short.validatePlanOnWorker(plan);
  status.preflight = await short.preflight(plan);
  expectNotAborted(run);
  // Pushed before provisioning: destroy is idempotent and finds by id what a half-done provisioning left.
  run.undo.push({ what: 'destroy Unew', fn: () => provision.destroyUnew(upgradeId, plan) });
  let handle = await provision.provisionUnew(upgradeId, plan);
  status.unew = { appUrls: handle.appUrls, dbEndpoint: handle.db.endpoint };
  await provision.installSchema(handle, plan);
  handle = await provision.startUnewApp(handle, plan);
  run.handle = handle;
  status.unew = { appUrls: handle.appUrls, dbEndpoint: handle.db.endpoint };
  // The wait can last the plan's whole start timeout: an abort cancels it instead of waiting it out.
  const scope = new CancellationScope();
  const h = handle;
  const waiting = scope.run(() => healthWait.waitUnewHealthy(h, plan));
  let settled = false;
  void waiting.then(() => { settled = true; }, () => { settled = true; });
  await condition(() => settled || run.abortReason !== null);
  if (!settled) { scope.cancel(); await waiting.catch(() => undefined); }
  expectNotAborted(run);
  await waiting;
}

// --- phase 2: data transfer ---------------------------------------------------

function startTransfer(run: Run): void {
  const { plan } = run.input;
  const handle = run.handle!;
  const scope = new CancellationScope();
  const task: TransferTask = { scope, done: Promise.resolve(), running: true, caughtUp: false, failure: null, restarts: 0 };
  task.done = scope.run(() => longRunning.runTransfer({ workflowId: workflowInfo().workflowId, handle, plan }))
    .then((r) => { run.status.transfer = r.snapshot; run.status.series.transfer = r.series; }, (err) => { if (!isCancellation(err)) task.failure = describeFailure(err); })
    .finally(() => { task.running = false; });
  run.transfer = task;
  run.undo.push({ what: 'stop the transfer', fn: () => stopTransfer(run) });
}

/** Asks the transfer to stop (it reads its controls twice a second) and waits; cancels it if it does not. */
async function stopTransfer(run: Run): Promise<void> {
  const t = run.transfer;
  if (!t) return;
  run.status.controls = { ...run.status.controls, stop: true };
  await CancellationScope.nonCancellable(async () => {
    if (!(await condition(() => !t.running, 30_000))) t.scope.cancel();
    await t.done;
  });
}

function expectTransferAlive(run: Run): void {
  const f = run.transfer?.failure;
  if (f) throw ApplicationFailure.nonRetryable(`data transfer failed: ${f}`, 'IMAGO_TRANSFER_FAILED');
}

async function transferData(run: Run): Promise<void> {
  // A continued run keeps its phase (and its timings row); the transfer restarts under it.
  if (!run.input.carried) setPhase(run, 'data-transfer');
  startTransfer(run);
  await untilOrContinue(run, run.input.carried?.resumeAt ?? 'data-transfer', () => run.transfer!.caughtUp || run.transfer!.failure !== null);
  expectTransferAlive(run);
}

// --- phases 3–5: testing, approval, termination and switchover ----------------

async function testAndSwitch(run: Run, resumeAt: ResumePoint | undefined): Promise<void> {
  const { plan } = run.input;
  const { status } = run;
  let skipTesting = resumeAt === 'awaiting-approval';
  for (;;) {
    if (!skipTesting) {
      setPhase(run, 'testing');
      const gate = await runTestingPhase(run);
      status.gate = gate;
      showDetails(run);
      if (!gate.pass) throw ApplicationFailure.nonRetryable(`the switchover gate did not pass: ${gate.reasons.join('; ')}`, 'IMAGO_GATE_FAILED');
    }
    skipTesting = false;
    await awaitApproval(run);
    const switched = await cutOverAttempt(run);
    if (switched) return;
    if (run.attempts >= plan.switchover.maxAttempts) {
      throw ApplicationFailure.nonRetryable(`cut-over failed ${run.attempts} times; last: ${status.lastError}`, 'IMAGO_CUTOVER_FAILED');
    }
    await sleep(1_000);
  }
}

/** Testing: grants, plan tests, mirrored-traffic comparison, data verification → the gate. */
async function runTestingPhase(run: Run): Promise<GateResult> {
  const { plan } = run.input;
  const { status } = run;
  const handle = run.handle!;
  const grants = plan.unew.grants?.enabled !== false ? [await short.checkGrants(handle, plan)] : [];
  status.tests = [...grants, ...await testing.runPlanTests(handle, plan)];
  if (!run.undo.some((u) => u.what === 'stop mirroring')) run.undo.push({ what: 'stop mirroring', fn: () => short.stopMirror(plan) });
  // Runs started before shadow writes existed mirror reads only (their history has no sandbox step).
  // A failed test (or grants check) already fails the gate: no sandbox is cloned (its copy loads the machine) for writes that cannot change that.
  const testsFailed = status.tests.some((t) => !t.passed);
  const sandbox = patched('shadow-writes-sandbox') ? (testsFailed ? skipSandbox(run) : await startSandbox(run)) : null;
  let compare = await compareWindow(run, sandbox);
  // The load test while the sandbox is up (its writes go there), after the window (it replays what the window recorded).
  // Like the sandbox: after a failed test (or grants check) the gate fails whatever the load test finds (runs from before this rule ran it).
  const loadTestUseful = !unewFailed(compare.failures) && (!testsFailed || !patched('load-test-skipped-on-failed-test'));
  if (plan.loadTest?.enabled && patched('load-test') && loadTestUseful) status.tests = [...status.tests, await testing.runLoadTest(handle, plan, sandbox)];
  if (sandbox) await endSandbox(run);
  status.compare = compare.report;
  if (!compare.unewFresh) compare = { ...compare, pass: false, reasons: [...compare.reasons, `Unew was not kept up to date during testing (${compare.freshness})`] };
  const verification = plan.verify.enabled ? await testing.verifyData(handle, plan) : null;
  status.verification = verification;
  return evaluateGate(status.tests, compare, verification);
}

/**
 * Mirrors for at least minDurationMs, and until every endpoint has its
 * samples, or maxDurationMs passes. The verdict is read every
 * COMPARE_INTERVAL_MS from the start: a failure of Unew itself (a regression
 * or a server error, told by the verdict's typed rule, never by its text)
 * ends testing at once, whatever minDurationMs says — more pairs cannot make
 * it pass. A window during which Unew was not kept up to date (the transfer
 * down after a worker crash) compares stale data: it is discarded and a
 * fresh one starts once Unew has caught up again, at most
 * MAX_WINDOW_RESTARTS times.
 */
async function compareWindow(run: Run, sandbox: SandboxHandle | null = null) {
  const { plan } = run.input;
  const handle = run.handle!;
  for (let restarts = 0; ; restarts++) {
    await (sandbox ? short.startMirror(handle, plan, run.compareEpoch, sandbox) : short.startMirror(handle, plan, run.compareEpoch));
    const restartsBefore = run.transfer!.restarts;
    const start = Date.now();
    let compare!: CompareSummary;
    const stale = () => !compare.unewFresh || run.transfer!.restarts !== restartsBefore;
    // No continue-as-new inside the window: it is bounded (maxDurationMs) and
    // would restart testing. A suggestion is taken at the next wait (approval).
    for (;;) {
      const elapsed = Date.now() - start;
      await until(run, () => run.transfer!.failure !== null, elapsed < plan.mirror.minDurationMs ? Math.min(COMPARE_INTERVAL_MS, plan.mirror.minDurationMs - elapsed) : COMPARE_INTERVAL_MS);
      expectTransferAlive(run);
      compare = await short.compareVerdict(plan, handle);
      if (stale() || unewFailed(compare.failures)) break;
      const now = Date.now() - start;
      if (now < plan.mirror.minDurationMs) continue;
      if (compare.pass || !needsSamplesOnly(compare.failures) || now >= plan.mirror.maxDurationMs) break;
      // A failed plan test already fails the gate: waiting up to maxDurationMs for samples cannot change that.
      if (run.status.tests.some((t) => !t.passed) && patched('testing-ends-on-failed-test')) break;
    }
    if (!stale() || restarts >= MAX_WINDOW_RESTARTS) return compare;
    // Pairs taken while Unew was not fed compare old data with new: discard the window.
    log.warn('compare window discarded: Unew was not kept up to date', { freshness: compare.freshness, restarts: run.transfer!.restarts });
    run.compareEpoch += 1;
    await untilOrContinue(run, 'testing', () => run.transfer!.caughtUp || run.transfer!.failure !== null);
    expectTransferAlive(run);
  }
}

/**
 * The sandbox of shadow writes for this testing window: a clone of Unew with
 * a second instance of the new version, where mirrored writes go (never into
 * Unew). Its undo is pushed first, so an abort or a failure removes it.
 */
async function startSandbox(run: Run): Promise<SandboxHandle | null> {
  const { plan, upgradeId } = run.input;
  const { status } = run;
  if (!run.undo.some((u) => u.what === 'destroy the sandbox')) run.undo.push({ what: 'destroy the sandbox', fn: () => provision.destroySandbox(upgradeId, plan) });
  const sandbox = await provision.createSandbox(run.handle!, plan);
  status.sandbox = sandbox
    ? { appUrl: sandbox.appUrl, position: sandbox.position, createdAt: sandbox.createdAt, cloneMs: sandbox.cloneMs, startMs: sandbox.startMs, destroyedAt: null }
    : { none: plan.sandbox?.enabled === false ? 'sandbox.enabled is false: writes were not mirrored' : `the ${plan.unew.provider} provider has no sandbox (sandbox.enabled: auto): writes were not mirrored` };
  return sandbox;
}

function skipSandbox(run: Run): null {
  run.status.sandbox = { none: `not made: ${run.status.tests.filter((t) => !t.passed).map((t) => `'${t.name}'`).join(', ')} failed, so the gate fails whatever writes show` };
  return null;
}

/** At the end of the compare window: writes stop being copied, the sandbox is removed (no process, no data left). */
async function endSandbox(run: Run): Promise<void> {
  const { plan, upgradeId } = run.input;
  await provision.destroySandbox(upgradeId, plan);
  run.undo = run.undo.filter((u) => u.what !== 'destroy the sandbox');
  const sb = run.status.sandbox;
  if (sb && 'appUrl' in sb) sb.destroyedAt = Date.now();
}

async function awaitApproval(run: Run): Promise<void> {
  const { plan } = run.input;
  const { status } = run;
  if (run.approved) return;
  if (plan.approval.policy === 'auto') {
    run.approved = true;
    status.approval = { ...status.approval, approved: true, by: 'policy:auto', at: Date.now() };
    return;
  }
  if (status.phase !== 'awaiting-approval') setPhase(run, 'awaiting-approval');
  run.approvalWaitStartedAt ??= Date.now();
  const left = Math.max(0, run.approvalWaitStartedAt + plan.approval.timeoutMs - Date.now());
  const got = await untilOrContinue(run, 'awaiting-approval', () => run.approved || run.transfer!.failure !== null, left);
  expectTransferAlive(run);
  if (!got && plan.approval.onTimeout === 'abort') throw new AbortRequested(`no approval within ${plan.approval.timeoutMs} ms (approval.onTimeout = abort)`);
  if (!got) status.approval = { ...status.approval, approved: true, by: 'policy:timeout-proceed', at: Date.now() };
  run.approved = true;
}

function cutoverArgs(run: Run) {
  const { status } = run;
  return {
    workflowId: workflowInfo().workflowId, attempt: run.attempts + 1, handle: run.handle!, plan: run.input.plan,
    verifiedPosition: status.cutoverCheck?.verifiedPosition ?? status.verification?.position ?? null, reportedLagMs: status.transfer?.lagMs ?? null,
  };
}

/**
 * One attempt of termination + switchover. The dry run first: when one of
 * its checks fails nobody is held, and it is tried again a few times before
 * the attempt counts as failed. Returns true once every client is on Unew.
 */
async function cutOverAttempt(run: Run): Promise<boolean> {
  const { plan } = run.input;
  const { status } = run;
  for (let i = 0; ; i++) {
    expectTransferAlive(run);
    const check = await short.checkCutover(cutoverArgs(run));
    status.cutoverCheck = check;
    if (check.ok) break;
    if (i >= 9) {
      run.attempts += 1;
      status.lastError = `cut-over check failed: ${check.checks.filter((c) => !c.ok).map((c) => `${c.name}: ${c.detail}`).join('; ')}`;
      status.cutovers.push({ ...emptyCutoverReport(run.attempts), mode: 'refused', error: status.lastError });
      return false;
    }
    await until(run, () => false, 2_000);
  }
  // Why here, in the same workflow task as the phase change: an abort accepted
  // up to this moment is honoured (the cut-over does not start); from the
  // phase change on, the validator refuses it.
  expectNotAborted(run);
  run.attempts += 1;
  setPhase(run, 'termination');
  const cut = proxyActivities<UpgradeActivities>({ ...cutoverPreset(plan.switchover.holdTimeoutMs), summary: `cut-over attempt ${run.attempts}` });
  const args = { ...cutoverArgs(run), attempt: run.attempts };
  let report;
  try {
    report = await cut.cutOver({ ...args, pointOfNoReturn: status.pointOfNoReturnPassed });
  } catch (err) {
    if (!status.pointOfNoReturnPassed) throw err;
    report = null;
    status.lastError = describeFailure(err);
  }
  // Past the point of no return the only way is forward: repeat until every client is on Unew.
  for (let backoff = 1_000; status.pointOfNoReturnPassed && !report?.switched; backoff = Math.min(backoff * 2, 30_000)) {
    await sleep(backoff);
    try {
      report = await cut.cutOver({ ...args, pointOfNoReturn: true });
    } catch (err) {
      status.lastError = `finishing the switch (forward only): ${describeFailure(err)}`;
    }
  }
  if (report) status.cutovers.push(report);
  showDetails(run);
  if (report?.switched) {
    status.pointOfNoReturnPassed = true;
    status.pointOfNoReturn ??= { attempt: report.attempt, at: Date.now() };
    return true;
  }
  // Not switched, and the point of no return was not passed: every interceptor
  // was released to Uold and nothing was served by Unew, so testing again is safe.
  status.lastError = report?.error ?? 'cut-over did not complete';
  return false;
}

// --- after the point of no return ----------------------------------------------

async function postSwitchover(run: Run): Promise<boolean> {
  const { plan } = run.input;
  const { status } = run;
  // ---- POINT OF NO RETURN (passed) ----------------------------------------
  // Unew has served requests. From here an upgrade can only be finished,
  // never aborted: destroying Unew now would lose the writes it acknowledged.
  setPhase(run, 'switchover');
  run.undo = [];
  await stopTransfer(run);
  await short.stopMirror(plan).catch((err) => log.warn('stopMirror failed', { err: String(err) }));
  status.series.ingress = await short.collectIngressTimeline(plan, status.timings[0].startedAt).catch(() => status.series.ingress);
  if (plan.postSwitchover.rollback?.enabled) {
    // Why after stopTransfer: a forward stream still reading Uold would carry the reverse's writes back into Unew.
    startReverse(run);
    setPhase(run, 'post-switchover');
    if (await rollbackWindow(run)) return true;
    // Finalize: the reverse replication stops, and Uold keeps no trace of it.
    await stopReverse(run);
    await short.finishRollback(run.handle!, plan).catch((err) => { status.lastError = `removing the reverse replication's state from Uold: ${describeFailure(err)}`; });
    status.rollback = { ...status.rollback!, available: false, why: 'finalized: the reverse replication has stopped' };
  } else {
    setPhase(run, 'post-switchover');
    if (plan.postSwitchover.finalize === 'manual') await condition(() => run.finalizeRequested);
    else await condition(() => run.finalizeRequested, plan.postSwitchover.windowMs);
  }
  // Finalize: Uold's fleet is released by the provider (AWS: deregistered and terminated), or kept by policy.
  status.uoldRetirement = await provision.retireUold(run.handle!, plan);
  return false;
}

// --- rollback after the switchover ------------------------------------------------

function emptyRollbackStatus(): RollbackStatus {
  return { available: false, why: null, startPosition: null, reverse: null, rules: null, requested: null, cutovers: [], pointOfNoReturnPassed: false, unew: null };
}

/** Starts the reverse replication from Unew's position at the point of no return, when it is known. */
function startReverse(run: Run): void {
  const { plan } = run.input;
  const { status } = run;
  const startPosition = status.pointOfNoReturn?.unewPosition ?? null;
  status.rollback = { ...emptyRollbackStatus(), ...status.rollback, startPosition };
  if (!startPosition) {
    // A retried cut-over found the point of no return already passed: clients may have been served by Unew before its position was read.
    status.rollback = { ...status.rollback, available: false, why: "Unew's position at the point of no return is unknown (the switch was finished by a retried attempt), so not every write of Unew could be carried back" };
    return;
  }
  const scope = new CancellationScope();
  const task: NonNullable<Run['reverse']> = { scope, done: Promise.resolve(), running: true, failure: null };
  task.done = scope.run(() => reversing.runReverse({ workflowId: workflowInfo().workflowId, handle: run.handle!, plan, startPosition }))
    .then(() => undefined, (err) => {
      if (isCancellation(err)) return;
      task.failure = describeFailure(err);
      status.rollback = { ...status.rollback!, available: false, why: `the reverse replication failed: ${task.failure}` };
      status.lastError = `reverse replication: ${task.failure}`;
    })
    .finally(() => { task.running = false; });
  run.reverse = task;
  // Offered once Uold holds the reverse's state (the first look at it in the window), not before.
  status.rollback = { ...status.rollback, available: false, why: 'the reverse replication into Uold is starting', reverse: { running: true, appliedPosition: null, lagMs: null, behind: null, at: Date.now() } };
}

async function stopReverse(run: Run): Promise<void> {
  const t = run.reverse;
  if (!t) return;
  // Cancellation waits for the activity to stop (transfer preset): nothing writes to Uold after this.
  await CancellationScope.nonCancellable(async () => { t.scope.cancel(); await t.done; });
  if (run.status.rollback?.reverse) run.status.rollback.reverse = { ...run.status.rollback.reverse, running: false, at: Date.now() };
}

/**
 * The window with rollback: until finalize (or the window's end), watch the
 * reverse's lag and, with autoRollback, the rules; a rollback asked for by an
 * operator or by a failed rule moves every client back to Uold. Returns true
 * once rolled back. A rollback attempt that fails before its own point of no
 * return leaves every client on Unew: the window goes on.
 */
async function rollbackWindow(run: Run): Promise<boolean> {
  const { plan } = run.input;
  const { status } = run;
  const ps = plan.postSwitchover;
  const auto = ps.autoRollback?.enabled ? ps.autoRollback : null;
  const end = ps.finalize === 'manual' ? Number.POSITIVE_INFINITY : Date.now() + ps.windowMs;
  // Each look adds ~5 history events: without rules, the reverse's lag is looked at every 5 s for a
  // minute, then every 30 s (a window finalized by hand may last days; the history must stay bounded).
  const windowStart = Date.now();
  const every = () => (auto ? auto.evaluateEveryMs : Date.now() - windowStart < 60_000 ? 5_000 : 30_000);
  let baseline: number | null = null;
  for (let first = true; ; first = false) {
    const left = end - Date.now();
    if (!first && run.rollbackRequest === null && !run.finalizeRequested && left > 0) {
      await condition(() => run.finalizeRequested || run.rollbackRequest !== null, Math.max(1, Math.min(every(), left)));
    }
    if (run.rollbackRequest) {
      if (await rollBack(run)) return true;
      continue;
    }
    if (run.finalizeRequested || Date.now() >= end) return false;
    const w: Awaited<ReturnType<UpgradeActivities['watchWindow']>> | null = await short.watchWindow({ handle: run.handle!, plan, baselineP99Ms: baseline })
      .catch((err) => { log.warn('watchWindow failed', { err: String(err) }); return null; });
    if (!w) continue;
    baseline = w.baselineP99Ms;
    const rb = status.rollback!;
    status.rollback = {
      ...rb,
      reverse: { running: run.reverse?.running ?? false, appliedPosition: w.reverse.appliedPosition, lagMs: w.reverse.lagMs, behind: w.reverse.behind, at: w.at, ...(w.reverse.error ? { error: w.reverse.error } : {}) },
      rules: auto ? { at: w.at, baselineP99Ms: w.baselineP99Ms, results: w.rules.map((r) => ({ name: r.name, ok: r.ok, detail: r.detail })) } : rb.rules,
    };
    if (!status.rollback.available && !status.rollback.pointOfNoReturnPassed && run.reverse?.running && !run.reverse.failure && w.reverse.appliedPosition) {
      status.rollback = { ...status.rollback, available: true, why: null };
    }
    const failed = auto ? w.rules.find((r) => !r.ok) : undefined;
    if (failed && status.rollback.available && !run.finalizeRequested) {
      run.rollbackRequest = { reason: `automatic rollback: rule ${failed.name} failed: ${failed.detail}`, by: 'auto-rollback', automatic: true };
    }
    showDetails(run);
  }
}

/**
 * The cut-over back to Uold (the rollBack activity: the upgrade's driver and
 * steps with the universes swapped), then the reverse stopped, its state
 * removed from Uold, and Unew kept or destroyed per the plan. Past the
 * rollback's own point of no return it is only finished forward, to Uold.
 */
async function rollBack(run: Run): Promise<boolean> {
  const { plan, upgradeId } = run.input;
  const { status } = run;
  const req = run.rollbackRequest!;
  const rb = status.rollback!;
  status.rollback = { ...rb, requested: { reason: req.reason, by: req.by, at: Date.now(), automatic: req.automatic } };
  run.rollbackAttempts += 1;
  setPhase(run, 'rolling-back');
  const cut = proxyActivities<UpgradeActivities>({ ...cutoverPreset(plan.switchover.holdTimeoutMs), summary: `rollback attempt ${run.rollbackAttempts}` });
  const args = { workflowId: workflowInfo().workflowId, attempt: run.rollbackAttempts, handle: run.handle!, plan, startPosition: rb.startPosition! };
  let report;
  try {
    report = await cut.rollBack({ ...args, pointOfNoReturn: status.rollback.pointOfNoReturnPassed });
  } catch (err) {
    report = null;
    status.lastError = `rollback: ${describeFailure(err)}`;
  }
  // Past the rollback's point of no return the only way is on to Uold.
  for (let backoff = 1_000; status.rollback.pointOfNoReturnPassed && !report?.switched; backoff = Math.min(backoff * 2, 30_000)) {
    await sleep(backoff);
    try {
      report = await cut.rollBack({ ...args, pointOfNoReturn: true });
    } catch (err) {
      status.lastError = `finishing the rollback (forward only, to Uold): ${describeFailure(err)}`;
    }
  }
  if (report) status.rollback.cutovers = [...status.rollback.cutovers, report];
  if (!report?.switched) {
    // Every client is still on Unew, and nothing was served by Uold: the window goes on; rollback may be asked again.
    status.lastError = `rollback attempt ${run.rollbackAttempts} did not complete (every client stays on Unew): ${report?.error ?? status.lastError ?? 'unknown'}`;
    run.rollbackRequest = null;
    setPhase(run, 'post-switchover');
    return false;
  }
  status.rollback.pointOfNoReturnPassed = true;
  await stopReverse(run);
  await short.finishRollback(run.handle!, plan).catch((err) => { status.lastError = `removing the reverse replication's state from Uold: ${describeFailure(err)}`; });
  let unew: 'kept' | 'destroyed' = 'kept';
  if (plan.postSwitchover.rollback?.onRolledBack === 'destroy-unew') {
    // Every client is on Uold already: a failure here leaves Unew for `imago gc` or by hand, not a failed rollback.
    unew = await provision.destroyUnew(upgradeId, plan).then(() => 'destroyed' as const, (err) => { status.lastError = `destroying Unew after the rollback: ${describeFailure(err)}`; return 'kept' as const; });
  }
  status.rollback = { ...status.rollback, unew };
  status.rollback = { ...status.rollback, available: false, why: 'rolled back' };
  return true;
}

// --- compensation and continue-as-new ---------------------------------------------

async function compensate(run: Run): Promise<void> {
  setPhase(run, 'aborting');
  await CancellationScope.nonCancellable(async () => {
    for (const step of [...run.undo].reverse()) {
      try { await step.fn(); } catch (e) {
        log.error('compensation step failed', { step: step.what, err: String(e) });
        run.status.lastError += `; ${step.what} failed: ${describeFailure(e)}`;
      }
    }
  });
}

async function continueNow(run: Run): Promise<never> {
  const resumeAt = run.resumeAt ?? 'data-transfer';
  // The transfer resumes in the next run from the state it keeps in Unew; stop it here first.
  await stopTransfer(run);
  await condition(allHandlersFinished);
  run.status.continuations = [...run.status.continuations, { at: Date.now(), resumeAt, historyLength: workflowInfo().historyLength }].slice(-50);
  const carried: CarriedState = {
    status: run.status, handle: run.handle!, resumeAt, approved: run.approved, approvalWaitStartedAt: run.approvalWaitStartedAt,
    attempts: run.attempts, compareEpoch: run.compareEpoch,
  };
  log.info('continuing as new', { upgradeId: run.input.upgradeId, resumeAt, historyLength: workflowInfo().historyLength });
  return continueAsNew<typeof upgradeWorkflow>({ upgradeId: run.input.upgradeId, plan: run.input.plan, carried });
}
