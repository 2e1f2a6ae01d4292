/** Pure helpers of the upgrade workflow: initial status, bounded series, the gate. Deterministic. */
import type { CompareSummary, VerificationSummary } from '../activities/types';
import type { CutoverReport, GateResult, SignalRecord, TestResult, TransferEdgeEvent, TransferProgressSnapshot, UpgradeInput, UpgradeStatus } from './status';

export const SERIES_MAX = 600;

export function initialStatus(input: UpgradeInput, now: number): UpgradeStatus {
  const { plan, upgradeId } = input;
  return {
    upgradeId, system: plan.system, from: plan.from.version, to: plan.to.version, provider: plan.unew.provider,
    phase: 'bootstrapping', phaseStartedAt: now, timings: [], unew: null, transfer: null,
    controls: { paused: false, stop: false, chunkSize: plan.transfer.chunkSize, maxThreadsRunning: plan.transfer.maxThreadsRunning, maxLagMs: plan.transfer.maxLagMs },
    tests: [], compare: null, verification: null, gate: null,
    approval: { policy: plan.approval.policy, approved: false }, cutovers: [], cutoverCheck: null, pointOfNoReturnPassed: false, pointOfNoReturn: null,
    lastError: null, abortReason: null, outcome: 'running', preflight: null, signals: [], transferError: null, runs: 1, continuations: [],
    series: { transfer: [], ingress: [] },
  };
}

/** One point of the transfer's progress series (kept by the transfer activity, bounded to SERIES_MAX). */
export function seriesPoint(p: TransferProgressSnapshot): UpgradeStatus['series']['transfer'][number] {
  return { at: p.at, percent: p.percent, copiedRows: p.copiedRows, rowsPerSec: p.rowsPerSec, lagMs: p.lagMs };
}

/** What an edge from the transfer changes in the status: the snapshot, and the failure while it is retried. */
export function applyTransferEdge(status: UpgradeStatus, e: TransferEdgeEvent, now: number): void {
  status.transfer = e.snapshot;
  if (e.edge === 'error' && e.error) {
    status.transferError = { code: e.error.code, message: e.error.message, attempt: e.attempt, at: now };
    status.lastError = `data transfer (attempt ${e.attempt}, retried): ${e.error.code}: ${e.error.message}`;
  } else if (e.edge === 'started' || e.edge === 'caught-up') {
    if (status.transferError) status.lastError = null;
    status.transferError = null;
  }
}

/** A cut-over report with nothing done yet. */
export function emptyCutoverReport(attempt: number): CutoverReport {
  return {
    attempt, switched: false, mode: 'fresh', pointOfNoReturn: false, holdMs: 0, drainMs: 0, flushMs: 0, verifyMs: 0, switchMs: 0,
    recordMs: 0, providerMs: 0, releaseMs: 0, totalMs: 0, uoldPosition: '', changedRowsVerified: 0,
  };
}

export const SIGNALS_KEPT = 50;

/** Records an operator message that came as a signal; the list stays bounded. */
export function recordSignal(status: UpgradeStatus, r: SignalRecord): void {
  status.signals.push(r);
  if (status.signals.length > SIGNALS_KEPT) status.signals.splice(0, status.signals.length - SIGNALS_KEPT);
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

/**
 * What Temporal's web UI shows as the upgrade's current details (markdown):
 * where it stands, and what it waits for with the command that unblocks it.
 */
export function currentDetails(status: UpgradeStatus, workflowId: string): string {
  const lines = [`**${status.system}** ${status.from} → ${status.to} on \`${status.provider}\` — phase **${status.phase}**${status.runs > 1 ? ` (run ${status.runs})` : ''}`];
  const t = status.transfer;
  if (t && !['completed', 'aborted', 'failed'].includes(status.phase)) lines.push(`transfer: ${t.phase}, ${t.percent}% copied, lag ${t.lagMs ?? '?'} ms (live figures: the \`runTransfer\` activity's heartbeat)`);
  if (status.gate) lines.push(`gate: ${status.gate.pass ? 'passed' : `failed — ${status.gate.reasons[0] ?? ''}`}`);
  if (status.phase === 'awaiting-approval') lines.push(`awaiting approval: send signal \`approve\` (input \`{"by": "your name"}\`) or run \`imago approve ${workflowId}\`; to stop, signal \`abort\` with \`{"reason": "…"}\``);
  if (status.pointOfNoReturnPassed && status.phase !== 'completed') lines.push('point of no return passed: the switch only goes forward');
  if (status.cutovers.length) { const c = status.cutovers[status.cutovers.length - 1]; lines.push(`cut-over attempt ${c.attempt}: ${c.switched ? `switched (hold → release ${c.totalMs.toFixed(1)} ms)` : c.mode}`); }
  if (status.lastError && status.outcome !== 'completed') lines.push(`last error: ${status.lastError.slice(0, 300)}`);
  if (status.outcome !== 'running') lines.push(`outcome: **${status.outcome}**`);
  return lines.join('\n\n');
}
