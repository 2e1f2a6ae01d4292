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
import { reasonOf, senderOf, validate, type RulesView } from '../../../workflows/rules';
import { emptyCutoverReport, initialStatus } from '../../../workflows/upgrade-state';
import type { Phase, UpgradeInput, UpgradeStatus } from '../../../workflows/status';

const TICK = 150;

export async function upgradeWorkflow(input: UpgradeInput): Promise<string> {
  const { plan } = input;
  const s: UpgradeStatus = initialStatus(input, Date.now());
  s.timings.push({ phase: 'bootstrapping', startedAt: Date.now() });
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
  // The real workflow's rules (workflows/rules.ts), so the double cannot drift from it.
  const view = (): RulesView => ({
    phase: s.phase, outcome: s.outcome, pointOfNoReturnPassed: s.pointOfNoReturnPassed, paused: s.controls.paused,
    approved: s.approval.approved, abortRequested: s.abortReason !== null, finalizeRequested: finalized,
    // The double plays an upgrade whose plan enables rollback.
    rollback: { available: true, requested: rollbackReason !== null },
  });

  setHandler(statusQuery, () => s);
  setHandler(approveUpdate, (arg) => { s.approval = { ...s.approval, approved: true, by: senderOf(arg) ?? 'unknown', at: Date.now() }; return 'approved'; },
    { validator: (arg) => validate('approve', view(), arg) });
  setHandler(abortUpdate, (arg) => { s.abortReason = reasonOf(arg); return 'aborting'; },
    { validator: (arg) => validate('abort', view(), arg) });
  setHandler(pauseUpdate, () => { s.controls.paused = true; return 'paused'; }, { validator: () => validate('pause', view()) });
  setHandler(resumeUpdate, () => { s.controls.paused = false; return 'resumed'; }, { validator: () => validate('resume', view()) });
  setHandler(setThrottleUpdate, (c) => { Object.assign(s.controls, c); return { ...s.controls }; }, { validator: (c) => validate('setThrottle', view(), c) });
  setHandler(finalizeUpdate, () => { finalized = true; return 'finalizing'; }, { validator: () => validate('finalize', view()) });
  setHandler(rollbackUpdate, (arg) => { rollbackReason = reasonOf(arg); return 'rolling back'; }, { validator: (arg) => validate('rollback', view(), arg) });

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
  s.cutovers.push({ ...emptyCutoverReport(1), switched: true, pointOfNoReturn: true, holdMs: 180, drainMs: 40, flushMs: 60, verifyMs: 30, switchMs: 5, releaseMs: 2,
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
