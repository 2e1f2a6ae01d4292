/**
 * TEST DOUBLE of the upgrade workflow, for the client's tests only. It has the
 * real workflow's type name, messages (workflows/messages.ts) and status shape
 * (workflows/status.ts), and walks a scripted sequence of phases with short
 * timers instead of doing any work. Validators refuse operations that are
 * invalid in the current phase, as the real workflow's do.
 *
 * Script knobs come from the plan: approval.policy (manual waits for approve),
 * postSwitchover.finalize/windowMs, and plan.system containing 'tests-fail'
 * (a failing test fails the gate and the run).
 */
import { ApplicationFailure, condition, setHandler, sleep, upsertSearchAttributes } from '@temporalio/workflow';
import { ImagoOutcome as outcomeKey, ImagoPhase as phaseKey } from '../../../workflows/search-attributes';
import { abortUpdate, approveUpdate, finalizeUpdate, pauseUpdate, resumeUpdate, rollbackUpdate, setThrottleUpdate, statusQuery } from '../../../workflows/messages';
import type { Phase, UpgradeInput, UpgradeStatus } from '../../../workflows/status';

const TICK = 150;

export async function upgradeWorkflow(input: UpgradeInput): Promise<string> {
  const { plan } = input;
  const s: UpgradeStatus = {
    upgradeId: input.upgradeId, system: plan.system, from: plan.from.version, to: plan.to.version, provider: plan.unew.provider,
    phase: 'bootstrapping', phaseStartedAt: Date.now(), timings: [{ phase: 'bootstrapping', startedAt: Date.now() }],
    unew: null, transfer: null,
    controls: { paused: false, chunkSize: plan.transfer.chunkSize, maxThreadsRunning: plan.transfer.maxThreadsRunning, maxLagMs: plan.transfer.maxLagMs, stop: false },
    tests: [], compare: null, verification: null, gate: null,
    approval: { policy: plan.approval.policy, approved: false }, cutovers: [], pointOfNoReturnPassed: false,
    lastError: null, preflight: null, abortReason: null, outcome: 'running', series: { transfer: [], ingress: [] },
  };
  let finalized = false;
  let rollbackReason: string | null = null;
  const enter = (phase: Phase) => {
    const now = Date.now();
    const open = s.timings[s.timings.length - 1];
    if (open && open.endedAt === undefined) open.endedAt = now;
    s.timings.push({ phase, startedAt: now });
    s.phase = phase; s.phaseStartedAt = now;
    upsertSearchAttributes([{ key: phaseKey, value: phase }]);
  };
  const wrong = (op: string, allowed: string) => { throw new Error(`IMAGO_WRONG_PHASE: ${op} is accepted only ${allowed}; the upgrade is in phase '${s.phase}'`); };
  const live = () => s.outcome === 'running';

  setHandler(statusQuery, () => s);
  setHandler(approveUpdate, (arg) => { s.approval = { ...s.approval, approved: true, by: arg?.by ?? 'unknown', at: Date.now() }; return 'approved'; },
    { validator: (_arg?: { by?: string; note?: string }) => { if (s.phase !== 'awaiting-approval') wrong('approve', 'while awaiting approval'); } });
  setHandler(abortUpdate, ({ reason }) => { s.abortReason = reason; return 'aborting'; },
    { validator: (arg) => {
      if (!arg?.reason) throw new Error('abort needs a reason');
      if (!live() || s.pointOfNoReturnPassed || s.abortReason) wrong('abort', 'before the switchover, once');
    } });
  setHandler(pauseUpdate, () => { s.controls.paused = true; return 'paused'; },
    { validator: () => { if (s.controls.paused || !['data-transfer', 'testing', 'awaiting-approval'].includes(s.phase)) wrong('pause', 'while copying or testing and not paused'); } });
  setHandler(resumeUpdate, () => { s.controls.paused = false; return 'resumed'; },
    { validator: () => { if (!s.controls.paused) wrong('resume', 'while paused'); } });
  setHandler(setThrottleUpdate, (c) => { Object.assign(s.controls, c); return { ...s.controls }; },
    { validator: (c) => {
      if (s.pointOfNoReturnPassed || !live()) wrong('setThrottle', 'before the switchover');
      for (const [k, v] of Object.entries(c ?? {})) if (!Number.isInteger(v) || (v as number) < 1) throw new Error(`setThrottle: ${k} must be a positive integer`);
    } });
  setHandler(finalizeUpdate, () => { finalized = true; return 'finalizing'; },
    { validator: () => { if (s.phase !== 'post-switchover' || finalized || rollbackReason) wrong('finalize', 'once, in post-switchover'); } });
  setHandler(rollbackUpdate, ({ reason }) => { rollbackReason = reason; return 'rolling back'; },
    { validator: (arg) => {
      if (!arg?.reason) throw new Error('rollback needs a reason');
      if (s.phase !== 'post-switchover' || finalized || rollbackReason) wrong('rollback', 'once, in post-switchover');
    } });

  const finish = (outcome: UpgradeStatus['outcome'], phase: Phase) => {
    enter(phase);
    const open = s.timings[s.timings.length - 1]; open.endedAt = Date.now();
    s.outcome = outcome;
    upsertSearchAttributes([{ key: outcomeKey, value: outcome }]);
  };
  const step = async () => {
    await sleep(TICK);
    await condition(() => !s.controls.paused || !!s.abortReason);
    return !!s.abortReason;
  };
  // Like the real workflow: an aborted run fails with IMAGO_ABORTED, its status saying 'aborted'.
  const aborted = async (): Promise<string> => {
    enter('aborting'); await sleep(TICK); finish('aborted', 'aborted');
    throw ApplicationFailure.nonRetryable(`upgrade aborted: ${s.abortReason}`, 'IMAGO_ABORTED');
  };

  if (await step()) return aborted();
  s.unew = { appUrls: ['http://127.0.0.1:1/'], dbEndpoint: '127.0.0.1:1' };
  enter('data-transfer');
  const total = 50_000;
  for (let i = 1; i <= 5; i++) {
    if (await step()) return aborted();
    const copied = (total * i) / 5;
    const lagMs = i < 5 ? 900 - i * 150 : 40;
    s.transfer = {
      at: Date.now(), phase: i < 5 ? 'copy' : 'following', tables: [{ table: 'items', copied, total, done: i === 5 }],
      copiedRows: copied, totalRows: total, percent: i * 20, rowsPerSec: 10_000 + i * 500, etaSec: (5 - i) * 2,
      appliedPosition: `0-1-${i * 100}`, lagMs, lagEvents: 5 - i, throttleReason: null, paused: false,
    };
    s.series.transfer.push({ at: Date.now(), percent: i * 20, copiedRows: copied, rowsPerSec: 10_000 + i * 500, lagMs });
  }
  enter('testing');
  if (await step()) return aborted();
  const failTests = plan.system.includes('tests-fail');
  s.tests = [{ name: 'smoke', passed: true, durationMs: 120, exitCode: 0, output: 'ok' },
    { name: 'bids', passed: !failTests, durationMs: 340, exitCode: failTests ? 1 : 0, output: failTests ? 'expected 200, got 500 on /bid' : 'ok' }];
  s.compare = { pass: true, samples: 240, mismatches: 1, noise: 3, mismatchRate: 1 / 240, threshold: 0.01,
    examples: [{ method: 'GET', path: '/items/7', diff: [{ path: '$.price', old: '10.00', new: '10.0' }] }] };
  s.verification = { differences: 0, checked: total, examples: [], position: '0-1-500' };
  s.gate = { pass: !failTests, reasons: failTests ? ['test bids failed'] : [], tests: { passed: failTests ? 1 : 2, failed: failTests ? 1 : 0 },
    compare: { pass: true, reasons: [], samples: 240 }, verification: { differences: 0, checked: total } };
  if (failTests) {
    s.lastError = 'IMAGO_GATE_FAILED: test bids failed';
    finish('failed', 'failed');
    throw ApplicationFailure.nonRetryable('test bids failed', 'IMAGO_GATE_FAILED');
  }
  enter('awaiting-approval');
  if (plan.approval.policy === 'auto') s.approval = { ...s.approval, approved: true, by: 'policy', at: Date.now() };
  await condition(() => s.approval.approved || !!s.abortReason);
  if (s.abortReason) return aborted();
  enter('termination');
  const t0 = Date.now();
  await sleep(TICK);
  enter('switchover');
  s.pointOfNoReturnPassed = true;
  s.cutovers.push({ attempt: 1, switched: true, holdMs: 180, drainMs: 40, flushMs: 60, verifyMs: 30, switchMs: 5, releaseMs: 2,
    totalMs: Date.now() - t0, uoldPosition: '0-1-500', changedRowsVerified: 12 });
  // A client-visible timeline: steady traffic, a short hold with a latency spike, steady again.
  for (let i = 0; i < 60; i++) {
    const at = t0 - 3_000 + i * 100;
    const held = at >= t0 && at < t0 + 200;
    const released = at === t0 + 200;
    s.series.ingress.push(released ? { at, count: 45, errors: 0, meanMs: 120, maxMs: 200 }
      : { at, count: held ? 0 : 20 + (i % 5), errors: 0, meanMs: held ? 0 : 4 + (i % 3), maxMs: held ? 0 : 15 + (i % 7) });
  }
  await sleep(TICK);
  enter('post-switchover');
  const auto = plan.postSwitchover.finalize === 'auto';
  if (auto) await condition(() => finalized || !!rollbackReason, plan.postSwitchover.windowMs);
  else await condition(() => finalized || !!rollbackReason);
  if (rollbackReason) {
    s.abortReason = rollbackReason;
    finish('rolled-back', 'rolled-back');
    return 'rolled-back';
  }
  finish('completed', 'completed');
  return 'completed';
}
