/**
 * The upgrade driver: Imago's five phases as one durable workflow.
 *
 *   Bootstrapping → Data transfer → Testing → Termination → Switchover
 *
 * Testing runs before termination (see shared/DESIGN.md): the long tests and
 * the mirrored-traffic comparison need Uold serving, and quiescence must last
 * milliseconds. Termination and switchover run inside one bounded activity
 * (cutOver), because every round trip through the server while clients are
 * held adds to the pause.
 *
 * Deterministic code only: no I/O here (lint-enforced); everything that
 * touches a process, a socket or a database is an activity.
 */
import {
  ApplicationFailure, CancellationScope, condition, isCancellation, log, patched, proxyActivities, setHandler, sleep,
  upsertSearchAttributes, workflowInfo,
} from '@temporalio/workflow';
import type { UpgradeActivities } from '../activities/types';
import type { UnewHandle } from '../providers/provider';
import {
  abortUpdate, approveUpdate, finalizeUpdate, pauseUpdate, resumeUpdate, rollbackUpdate, setThrottleUpdate,
  statusQuery, transferControlsQuery, transferProgressSignal,
} from './messages';
import { cutoverPreset, presets } from './presets';
import { ImagoFromVersion, ImagoOutcome, ImagoPhase, ImagoSystem, ImagoToVersion } from './search-attributes';
import type { GateResult, Phase, UpgradeInput, UpgradeStatus } from './status';
import { describeFailure, evaluateGate, initialStatus, pushSeries } from './upgrade-state';

const short = proxyActivities<UpgradeActivities>(presets.short);
const healthWait = proxyActivities<UpgradeActivities>(presets.health);
const provision = proxyActivities<UpgradeActivities>(presets.provision);
const longRunning = proxyActivities<UpgradeActivities>(presets.transfer);
const testing = proxyActivities<UpgradeActivities>(presets.testing);

/** Thrown inside the workflow when an operator aborts; compensation follows. */
class AbortRequested extends Error {}

export async function upgradeWorkflow(input: UpgradeInput): Promise<UpgradeStatus> {
  const { plan, upgradeId } = input;
  const status = initialStatus(input, Date.now());
  let approved = false;
  let finalizeRequested = false;
  let abortReason: string | null = null;
  let handle: UnewHandle | null = null;

  const setPhase = (phase: Phase) => {
    const now = Date.now();
    const open = status.timings[status.timings.length - 1];
    if (open && open.endedAt === undefined) open.endedAt = now;
    status.timings.push({ phase, startedAt: now });
    status.phase = phase;
    status.phaseStartedAt = now;
    upsertSearchAttributes([{ key: ImagoPhase, value: phase }]);
    log.info('phase', { upgradeId, phase });
  };
  upsertSearchAttributes([
    { key: ImagoSystem, value: plan.system }, { key: ImagoFromVersion, value: plan.from.version },
    { key: ImagoToVersion, value: plan.to.version }, { key: ImagoOutcome, value: 'running' },
  ]);

  // --- messages ---------------------------------------------------------
  setHandler(statusQuery, () => status);
  setHandler(transferControlsQuery, () => status.controls);
  setHandler(transferProgressSignal, (p) => { status.transfer = p; pushSeries(status, p); });
  setHandler(approveUpdate, (arg) => {
    approved = true;
    status.approval = { ...status.approval, approved: true, by: arg?.by ?? 'operator', at: Date.now() };
    return 'approved: termination and switchover will start when Unew has caught up';
  }, { validator: (_arg) => {
    if (status.phase !== 'awaiting-approval') throw new Error(`IMAGO_WRONG_PHASE: approve is accepted only while awaiting approval (after testing passed); the phase is ${status.phase}`);
  } });
  setHandler(abortUpdate, ({ reason }) => {
    abortReason = reason;
    status.abortReason = reason;
    return 'aborting: Unew will be destroyed; Uold is untouched';
  }, { validator: (arg) => {
    if (!arg || typeof arg.reason !== 'string' || !arg.reason.trim()) throw new Error('IMAGO_WRONG_PHASE: abort needs a reason');
    if (status.pointOfNoReturnPassed) throw new Error('IMAGO_WRONG_PHASE: the switchover has happened; abort is no longer possible (use rollback)');
    if (abortReason !== null || status.outcome !== 'running') throw new Error(`IMAGO_WRONG_PHASE: the upgrade is already ${abortReason !== null ? 'aborting' : status.outcome}`);
  } });
  const transferRunning = () => ['data-transfer', 'testing', 'awaiting-approval'].includes(status.phase);
  setHandler(pauseUpdate, () => { status.controls = { ...status.controls, paused: true }; return 'paused'; }, { validator: () => {
    if (!transferRunning()) throw new Error(`IMAGO_WRONG_PHASE: pause is accepted only while data is transferred; the phase is ${status.phase}`);
    if (status.controls.paused) throw new Error('IMAGO_WRONG_PHASE: already paused');
  } });
  setHandler(resumeUpdate, () => { status.controls = { ...status.controls, paused: false }; return 'resumed'; }, { validator: () => {
    if (!status.controls.paused) throw new Error('IMAGO_WRONG_PHASE: not paused');
  } });
  setHandler(setThrottleUpdate, (t) => { status.controls = { ...status.controls, ...t }; return status.controls; }, { validator: (t) => {
    if (!transferRunning()) throw new Error(`IMAGO_WRONG_PHASE: throttle is accepted only while data is transferred; the phase is ${status.phase}`);
    for (const [k, v] of Object.entries(t ?? {})) {
      if (!['chunkSize', 'maxThreadsRunning', 'maxLagMs'].includes(k)) throw new Error(`IMAGO_OPTIONS_INVALID: unknown throttle setting '${k}'`);
      if (!Number.isInteger(v) || (v as number) < 1) throw new Error(`IMAGO_OPTIONS_INVALID: ${k} must be a positive integer`);
    }
  } });
  setHandler(finalizeUpdate, () => { finalizeRequested = true; return 'finalizing'; }, { validator: () => {
    if (status.phase !== 'post-switchover') throw new Error(`IMAGO_WRONG_PHASE: finalize is accepted only in the post-switchover window; the phase is ${status.phase}`);
    if (finalizeRequested) throw new Error('IMAGO_WRONG_PHASE: finalize was already requested');
  } });
  setHandler(rollbackUpdate, (_arg) => 'unreachable', { validator: (_arg) => {
    // Room is left for it: rollback needs reverse replication (Unew → Uold) so
    // that writes made on Unew are not lost; that capability is not built yet.
    throw new Error('IMAGO_WRONG_PHASE: rollback with reverse replication is not available in this version; Unew keeps serving');
  } });

  const expectNotAborted = () => { if (abortReason !== null) throw new AbortRequested(abortReason); };
  /** Waits for fn() or an abort, whichever first; false on timeout. */
  const until = async (fn: () => boolean, timeoutMs?: number) => {
    const ok = timeoutMs === undefined ? (await condition(() => fn() || abortReason !== null), true) : await condition(() => fn() || abortReason !== null, timeoutMs);
    expectNotAborted();
    return ok;
  };

  // --- the phases -------------------------------------------------------
  const transferScope = new CancellationScope();
  let transferDone: Promise<unknown> = Promise.resolve();
  let transferError: string | null = null;
  try {
    setPhase('bootstrapping');
    await short.validatePlanOnWorker(plan);
    status.preflight = await short.preflight(plan);
    expectNotAborted();
    handle = await provision.provisionUnew(upgradeId, plan);
    status.unew = { appUrls: handle.appUrls, dbEndpoint: handle.db.endpoint };
    await provision.installSchema(handle, plan);
    handle = await provision.startUnewApp(handle, plan);
    status.unew = { appUrls: handle.appUrls, dbEndpoint: handle.db.endpoint };
    if (patched('imago-abortable-health-wait')) {
      // The wait can last the plan's whole start timeout: an abort cancels it
      // instead of waiting it out (older histories replay the plain call below).
      const scope = new CancellationScope();
      const h = handle;
      const waiting = scope.run(() => healthWait.waitUnewHealthy(h, plan));
      let settled = false;
      void waiting.then(() => { settled = true; }, () => { settled = true; });
      await condition(() => settled || abortReason !== null);
      if (!settled) { scope.cancel(); await waiting.catch(() => undefined); }
      expectNotAborted();
      await waiting;
    } else {
      await provision.waitUnewHealthy(handle, plan);
    }
    expectNotAborted();

    setPhase('data-transfer');
    const h = handle;
    transferDone = transferScope.run(() => longRunning.runTransfer({ workflowId: workflowInfo().workflowId, handle: h, plan }))
      .catch((err) => { if (!isCancellation(err)) transferError = describeFailure(err); });
    const caughtUp = () => status.transfer?.phase === 'following' && (status.transfer.lagMs ?? Infinity) <= plan.transfer.maxLagMs;
    await until(() => caughtUp() || transferError !== null);
    if (transferError) throw ApplicationFailure.nonRetryable(`data transfer failed: ${transferError}`, 'IMAGO_TRANSFER_FAILED');

    for (let attempt = 1; ; attempt++) {
      setPhase('testing');
      const gate = await runTestingPhase(status, handle, plan, until);
      status.gate = gate;
      if (!gate.pass) throw ApplicationFailure.nonRetryable(`the switchover gate did not pass: ${gate.reasons.join('; ')}`, 'IMAGO_GATE_FAILED');

      if (!approved) {
        if (plan.approval.policy === 'auto') {
          approved = true;
          status.approval = { ...status.approval, approved: true, by: 'policy:auto', at: Date.now() };
        } else {
          setPhase('awaiting-approval');
          const got = await until(() => approved, plan.approval.timeoutMs);
          if (!got && plan.approval.onTimeout === 'abort') throw new AbortRequested(`no approval within ${plan.approval.timeoutMs} ms (approval.onTimeout = abort)`);
          if (!got) status.approval = { ...status.approval, approved: true, by: 'policy:timeout-proceed', at: Date.now() };
        }
      }
      // Begin termination only when Unew is close behind: the flush inside the hold must be short.
      await until(() => transferError !== null || (status.transfer?.lagMs ?? Infinity) <= plan.switchover.maxLagMsToBegin);
      if (transferError) throw ApplicationFailure.nonRetryable(`data transfer failed: ${transferError}`, 'IMAGO_TRANSFER_FAILED');

      setPhase('termination');
      const cut = proxyActivities<UpgradeActivities>(cutoverPreset(plan.switchover.holdTimeoutMs));
      const report = await cut.cutOver({ attempt, handle, plan, verifiedPosition: status.verification?.position ?? null });
      status.cutovers.push(report);
      if (report.switched) break;
      // Not switched: every interceptor was released to Uold and nothing was
      // served by Unew, so going back to testing is safe.
      status.lastError = report.error ?? 'cut-over did not complete';
      if (attempt >= plan.switchover.maxAttempts) {
        throw ApplicationFailure.nonRetryable(`cut-over failed ${attempt} times; last: ${status.lastError}`, 'IMAGO_CUTOVER_FAILED');
      }
      await sleep(1_000);
    }
    // ---- POINT OF NO RETURN ----------------------------------------------
    // Unew has served requests. From here an upgrade can only be finished or
    // rolled back (reverse replication), never aborted: destroying Unew now
    // would lose the writes it has acknowledged.
    status.pointOfNoReturnPassed = true;
    setPhase('switchover');
    status.controls = { ...status.controls, stop: true };
    await short.stopMirror(plan).catch((err) => log.warn('stopMirror failed', { err: String(err) }));
    await CancellationScope.nonCancellable(async () => {
      if (!(await condition(() => transferDone !== null && status.transfer?.phase === 'stopped', 30_000))) transferScope.cancel();
      await transferDone;
    });
    status.series.ingress = await short.collectIngressTimeline(plan, status.timings[0].startedAt)
      .catch(() => status.series.ingress);

    setPhase('post-switchover');
    if (plan.postSwitchover.finalize === 'manual') await condition(() => finalizeRequested);
    else await condition(() => finalizeRequested, plan.postSwitchover.windowMs);
    setPhase('completed');
    status.outcome = 'completed';
    upsertSearchAttributes([{ key: ImagoOutcome, value: 'completed' }]);
    return status;
  } catch (err) {
    status.lastError = err instanceof AbortRequested ? `aborted: ${err.message}` : describeFailure(err);
    if (status.pointOfNoReturnPassed) {
      // Unew serves; nothing to compensate. Report the failure of the tail work.
      status.outcome = 'failed';
      setPhase('failed');
      upsertSearchAttributes([{ key: ImagoOutcome, value: 'failed' }]);
      throw err;
    }
    // Compensation: stop the transfer, destroy Unew. Uold was never written to.
    setPhase('aborting');
    await CancellationScope.nonCancellable(async () => {
      status.controls = { ...status.controls, stop: true };
      transferScope.cancel();
      await transferDone;
      await short.stopMirror(plan).catch((e) => log.warn('stopMirror failed', { err: String(e) }));
      await provision.destroyUnew(upgradeId, plan).catch((e) => {
        log.error('destroying Unew failed', { err: String(e) });
        status.lastError += `; destroying Unew failed: ${String(e)}`;
      });
    });
    const aborted = err instanceof AbortRequested;
    status.outcome = aborted ? 'aborted' : 'failed';
    setPhase(aborted ? 'aborted' : 'failed');
    upsertSearchAttributes([{ key: ImagoOutcome, value: status.outcome }]);
    if (aborted) throw ApplicationFailure.nonRetryable(`upgrade aborted: ${err.message}`, 'IMAGO_ABORTED');
    throw err;
  }
}

/** Testing: plan tests, mirrored-traffic comparison, data verification → the gate. */
async function runTestingPhase(
  status: UpgradeStatus, handle: UnewHandle, plan: UpgradeInput['plan'],
  until: (fn: () => boolean, timeoutMs?: number) => Promise<boolean>,
): Promise<GateResult> {
  // patched(): workflows started before the grants check existed replay without it.
  const grants = patched('imago-grants-check') && plan.unew.grants?.enabled !== false ? [await short.checkGrants(handle, plan)] : [];
  status.tests = [...grants, ...await testing.runPlanTests(handle, plan)];
  await short.startMirror(handle, plan);
  // Mirror for at least minDurationMs, and until every endpoint has its samples or maxDurationMs.
  const start = Date.now();
  await until(() => false, plan.mirror.minDurationMs);
  let compare = await short.compareVerdict(plan);
  while (!compare.pass && Date.now() - start < plan.mirror.maxDurationMs && compare.reasons.every((r) => /samples/i.test(r))) {
    await until(() => false, 2_000);
    compare = await short.compareVerdict(plan);
  }
  status.compare = compare.report;
  const verification = plan.verify.enabled ? await testing.verifyData(handle, plan) : null;
  status.verification = verification;
  return evaluateGate(status.tests, compare, verification);
}
