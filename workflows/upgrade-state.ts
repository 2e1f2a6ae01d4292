/** Pure helpers of the upgrade workflow: initial status, bounded series, the gate. Deterministic. */
import type { CompareSummary, VerificationSummary } from '../activities/types';
import type { CutoverReport, GateResult, SignalRecord, TestResult, TransferEdge, TransferEdgeEvent, TransferProgressSnapshot, UpgradeInput, UpgradeStatus } from './status';

export const SERIES_MAX = 600;

export function initialStatus(input: UpgradeInput, now: number): UpgradeStatus {
  const { plan, upgradeId } = input;
  return {
    upgradeId, system: plan.system, from: plan.from.version, to: plan.to.version, provider: plan.unew.provider,
    phase: 'bootstrapping', phaseStartedAt: now, timings: [], unew: null, transfer: null,
    controls: { paused: false, stop: false, chunkSize: plan.transfer.chunkSize, maxThreadsRunning: plan.transfer.maxThreadsRunning, maxLagMs: plan.transfer.maxLagMs, niceRatio: plan.transfer.niceRatio },
    tests: [], compare: null, verification: null, gate: null,
    approval: { policy: plan.approval.policy, approved: false }, cutovers: [], cutoverCheck: null, pointOfNoReturnPassed: false, pointOfNoReturn: null,
    lastError: null, abortReason: null, outcome: 'running', preflight: null, signals: [], transferError: null, uoldRetirement: null, runs: 1, continuations: [],
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
/** Compare rules that only say "not enough evidence yet": more mirrored pairs may still make the verdict pass. */
const WANTS_MORE: ReadonlySet<string> = new Set(['no-traffic', 'min-samples']);
/** Compare rules that Unew itself broke: no amount of further pairs makes the verdict pass, so testing stops at once. */
const UNEW_FAILED: ReadonlySet<string> = new Set(['regression', 'server-error']);

/** True when every failing rule only wants more pairs (an empty list too). */
export function needsSamplesOnly(failures: CompareSummary['failures']): boolean {
  return failures.every((f) => WANTS_MORE.has(f.rule));
}

/** True when a regression or a server-error rule failed: testing stops without waiting for the window's end. */
export function unewFailed(failures: CompareSummary['failures']): boolean {
  return failures.some((f) => UNEW_FAILED.has(f.rule));
}

/** A line that tells why a test failed: an error, a refused connection, a failed assertion, a timeout. */
const FAILING_LINE = /error|ECONNREFUSED|ECONNRESET|ETIMEDOUT|EADDR|fail|assert|exception|panic|fatal|not ok|✗|✘|✖|expected|timed? ?out|killed after|cannot run/i;

/**
 * The few lines of a failed test's output that tell why, in their order: the
 * first lines that look like a failure (an error, ECONNREFUSED, a failed
 * assertion), else its last lines. Pure (the workflow calls it).
 */
export function failureLines(output: string, max = 3): string[] {
  const lines = output.split('\n').map((l) => l.trim()).filter((l) => l.length > 0);
  const failing = lines.filter((l) => FAILING_LINE.test(l));
  return (failing.length > 0 ? failing.slice(0, max) : lines.slice(-max)).map((l) => (l.length > 160 ? `${l.slice(0, 157)}...` : l));
}

export function evaluateGate(tests: TestResult[], compare: CompareSummary | null, verification: VerificationSummary | null): GateResult {
  const reasons: string[] = [];
  const failed = tests.filter((t) => !t.passed);
  for (const t of failed) {
    const lines = failureLines(t.output);
    reasons.push(`test '${t.name}' failed (exit ${t.exitCode})${lines.length > 0 ? `: ${lines.join(' | ')}` : ', no output'}`);
  }
  // Every failing rule, named: a reader sees at once which rule of the verdict held the gate.
  if (compare && !compare.pass) {
    for (const r of compare.reasons) {
      const rule = compare.failures.find((f) => f.reason === r)?.rule;
      reasons.push(rule ? `compare ${rule}: ${r}` : `compare: ${r}`);
    }
  }
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
 * Imago's own signals (transferEdge from the transfer activity,
 * pointOfNoReturn from the cut-over activity) are listed by the web UI's
 * "Send a Signal" like any other, with whatever input is typed. Why these
 * checks: a handler that throws on a hand-made input fails the workflow task,
 * and again on every replay, since the signal stays in the history: the
 * upgrade would stop making progress and answer nothing, abort included. A
 * signal that fails them is recorded as refused and changes nothing.
 */
const EDGES: readonly TransferEdge[] = ['started', 'copy-done', 'caught-up', 'fell-behind', 'stopped', 'error'];
const INTERNAL = 'is sent by Imago\'s activities only; this one changed nothing';

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isCount = (v: unknown): v is number => Number.isInteger(v) && (v as number) >= 1;

/** Why a transferEdge signal is not one the transfer activity sends, or null. */
export function transferEdgeProblem(arg: unknown): string | null {
  if (!isRecord(arg)) return `transferEdge ${INTERNAL} (its input must be the transfer's edge event)`;
  const problems: string[] = [];
  if (!EDGES.includes(arg.edge as TransferEdge)) problems.push(`edge must be one of ${EDGES.join(', ')}`);
  if (!isCount(arg.attempt)) problems.push('attempt must be a positive integer');
  const snap = arg.snapshot;
  if (!isRecord(snap) || typeof snap.phase !== 'string' || typeof snap.percent !== 'number') problems.push('snapshot must be the transfer\'s progress snapshot');
  if (arg.error !== undefined && !isRecord(arg.error)) problems.push('error must be {code, message}');
  return problems.length ? `transferEdge ${INTERNAL}: ${problems.join('; ')}` : null;
}

/**
 * Why a pointOfNoReturn signal cannot come from a cut-over attempt of this
 * upgrade, or null. One that names an attempt already started is honoured
 * even when the workflow has moved on (a cut-over activity that outlived its
 * timeout may still switch): forward-only must not depend on timing.
 */
export function pointOfNoReturnProblem(arg: unknown, attemptsStarted: number): string | null {
  if (!isRecord(arg) || !isCount(arg.attempt) || typeof arg.at !== 'number' || !Number.isFinite(arg.at)) {
    return `pointOfNoReturn ${INTERNAL} (its input must be {attempt, at} from the cut-over)`;
  }
  if (arg.attempt > attemptsStarted) {
    return `pointOfNoReturn ${INTERNAL}: cut-over attempt ${arg.attempt} has not started (${attemptsStarted} started so far)`;
  }
  return null;
}

/**
 * What Temporal's web UI shows as the upgrade's current details (markdown):
 * where it stands, and what it waits for with the signal or command that
 * unblocks it. Short lines, one fact each.
 */
export function currentDetails(status: UpgradeStatus, workflowId: string): string {
  const head = `**${status.system}** ${status.from} → ${status.to} · \`${status.provider}\` · **${status.phase}**${status.runs > 1 ? ` (run ${status.runs})` : ''}`;
  const facts: string[] = [];
  const t = status.transfer;
  const ended = status.outcome !== 'running';
  if (t && !ended) facts.push(`transfer: ${t.phase}, ${t.percent}% copied, lag ${t.lagMs ?? '?'} ms`);
  if (status.controls.paused && !ended) facts.push('copy paused: signal `resume`');
  if (status.gate) facts.push(`gate: ${status.gate.pass ? 'passed' : `failed — ${(status.gate.reasons[0] ?? '').slice(0, 200)}`}`);
  if (status.pointOfNoReturnPassed && status.phase !== 'completed') facts.push('point of no return passed: forward only');
  if (status.cutovers.length) {
    const c = status.cutovers[status.cutovers.length - 1];
    facts.push(`cut-over attempt ${c.attempt}: ${c.switched ? `switched, ${c.totalMs.toFixed(1)} ms hold → release` : c.mode}`);
  }
  const rb = status.rollback;
  if (rb && !ended && status.phase === 'post-switchover') {
    facts.push(rb.available ? `rollback available: \`imago rollback ${workflowId} --reason …\`${rb.reverse?.lagMs != null ? ` (reverse replication lag ${rb.reverse.lagMs} ms)` : ''}` : `rollback not available: ${(rb.why ?? '').slice(0, 160)}`);
  }
  if (rb?.requested) facts.push(`rollback ${rb.requested.automatic ? 'automatic' : `by ${rb.requested.by}`}: ${rb.requested.reason.slice(0, 200)}`);
  if (status.lastError && status.outcome !== 'completed') facts.push(`last error: ${status.lastError.slice(0, 300)}`);
  if (ended) facts.push(`outcome: **${status.outcome}**`);
  const last = status.signals[status.signals.length - 1];
  if (last && !ended) facts.push(`last signal: \`${last.name}\` ${last.accepted ? 'accepted' : `refused — ${(last.reason ?? '').slice(0, 160)}`}`);
  const parts = [head, facts.map((f) => `- ${f}`).join('\n')];
  if (status.phase === 'awaiting-approval' && !ended) {
    parts.push([
      '**To approve:**',
      '',
      '- signal `approve`, input `{"by": "your name"}`',
      `- or \`imago approve ${workflowId}\``,
      '',
      '**To stop:**',
      '',
      '- signal `abort`, input `{"reason": "…"}`',
      `- or \`imago abort ${workflowId} --reason …\``,
    ].join('\n'));
  }
  // Why a last line that says little: the UI (2.42) sizes the frame of this
  // markdown to its body, leaving out the first paragraph's top margin, so the
  // last line is cut off. Better this one than the command that unblocks it.
  parts.push(UI_LAST_LINE);
  return parts.filter((p) => p).join('\n\n');
}

/** The last line of the markdown the web UI shows (see currentDetails): harmless when it is cut off. */
export const UI_LAST_LINE = '_Updated at each phase change and signal._';
