/** Pure helpers of the upgrade workflow: initial status, bounded series, the gate. Deterministic. */
import type { CompareSummary, VerificationSummary } from '../activities/types';
import type { GateResult, TestResult, TransferProgressSnapshot, UpgradeInput, UpgradeStatus } from './status';

export const SERIES_MAX = 600;

export function initialStatus(input: UpgradeInput, now: number): UpgradeStatus {
  const { plan, upgradeId } = input;
  return {
    upgradeId, system: plan.system, from: plan.from.version, to: plan.to.version, provider: plan.unew.provider,
    phase: 'bootstrapping', phaseStartedAt: now, timings: [], unew: null, transfer: null,
    controls: { paused: false, stop: false, chunkSize: plan.transfer.chunkSize, maxThreadsRunning: plan.transfer.maxThreadsRunning, maxLagMs: plan.transfer.maxLagMs },
    tests: [], compare: null, verification: null, gate: null,
    approval: { policy: plan.approval.policy, approved: false }, cutovers: [], pointOfNoReturnPassed: false,
    lastError: null, abortReason: null, outcome: 'running', preflight: null,
    series: { transfer: [], ingress: [] },
  };
}

/** Appends a progress point; past SERIES_MAX points every other one is dropped, so the series stays bounded. */
export function pushSeries(status: UpgradeStatus, p: TransferProgressSnapshot): void {
  const s = status.series.transfer;
  s.push({ at: p.at, percent: p.percent, copiedRows: p.copiedRows, rowsPerSec: p.rowsPerSec, lagMs: p.lagMs });
  if (s.length > SERIES_MAX) status.series.transfer = s.filter((_, i) => i % 2 === 0 || i === s.length - 1);
}

/** The switchover gate: every test passed, the compare verdict passed, zero data differences. */
export function evaluateGate(tests: TestResult[], compare: CompareSummary | null, verification: VerificationSummary | null): GateResult {
  const reasons: string[] = [];
  const failed = tests.filter((t) => !t.passed);
  for (const t of failed) reasons.push(`test '${t.name}' failed (exit ${t.exitCode}): ${t.output.split('\n').slice(-3).join(' ').slice(0, 300)}`);
  if (compare && !compare.pass) reasons.push(...compare.reasons.map((r) => `compare: ${r}`));
  if (verification && verification.differences > 0) reasons.push(`verification: ${verification.differences} rows differ between convert(Uold) and Unew`);
  return {
    pass: reasons.length === 0,
    reasons,
    tests: { passed: tests.length - failed.length, failed: failed.length },
    compare: compare ? { pass: compare.pass, reasons: compare.reasons, samples: compare.samples } : null,
    verification: verification ? { differences: verification.differences, checked: verification.checked } : null,
  };
}

/** The message a person needs from a failure: the innermost cause (an activity's ApplicationFailure), not "Activity task failed". */
export function describeFailure(err: unknown): string {
  let e = err as { message?: string; cause?: unknown; type?: string } | undefined;
  let text = String(e?.message ?? err);
  for (let depth = 0; e && depth < 10; depth++) {
    if (e.message && !/^Activity task (failed|timed out)$/.test(e.message)) text = e.message;
    e = e.cause as typeof e;
  }
  return text;
}
