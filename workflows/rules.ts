/**
 * The operator messages' rules, as a pure module: which message is accepted
 * in which phase, and why not otherwise. The workflow's update validators and
 * signal handlers use it, and so does the client's test double of the
 * workflow (test/client/double), so the two cannot drift apart.
 *
 * A refusal is an ApplicationFailure whose type is a registry code
 * (IMAGO_WRONG_PHASE, IMAGO_OPTIONS_INVALID): the client maps the type, not
 * the message. Deterministic; no I/O.
 */
import { ApplicationFailure } from '@temporalio/common';
import type { ErrorCode } from '../lib/errors';
import type { Phase, UpgradeStatus } from './status';

export type Operation = 'approve' | 'abort' | 'pause' | 'resume' | 'setThrottle' | 'finalize' | 'rollback' | 'cutoverCheck';

/** What the rules look at: the status plus the requests the workflow has accepted but not yet acted on. */
export interface RulesView {
  phase: Phase;
  outcome: UpgradeStatus['outcome'];
  pointOfNoReturnPassed: boolean;
  paused: boolean;
  approved: boolean;
  abortRequested: boolean;
  finalizeRequested: boolean;
  /** Whether this upgrade can roll back (reverse replication into Uold is set up), and why not otherwise. */
  rollback: { available: boolean; why?: string; requested: boolean };
}

export interface Refusal { code: ErrorCode; reason: string }

/** Phases in which the data transfer runs (pause, resume, throttle apply to it). */
export const TRANSFER_PHASES: readonly Phase[] = ['data-transfer', 'testing', 'awaiting-approval'];
/** Phases in which Unew is up and following, so the cut-over's dry run can measure it. */
export const CHECKABLE_PHASES: readonly Phase[] = ['testing', 'awaiting-approval'];
export const THROTTLE_KEYS = ['chunkSize', 'maxThreadsRunning', 'maxLagMs', 'niceRatio'] as const;

const wrong = (reason: string): Refusal => ({ code: 'IMAGO_WRONG_PHASE', reason });

/** Why `op` with `arg` is refused in this state, or null when it is accepted. */
export function refusal(op: Operation, v: RulesView, arg?: unknown): Refusal | null {
  const ended = v.outcome !== 'running';
  if (ended) return wrong(`the upgrade has ended (${v.outcome}); nothing was changed`);
  switch (op) {
    case 'approve':
      if (v.phase !== 'awaiting-approval') return wrong(`approve is accepted only while awaiting approval (after testing passed); the phase is ${v.phase}`);
      if (v.approved) return wrong('already approved');
      return null;
    case 'abort': {
      const reason = reasonOf(arg);
      if (!reason) return { code: 'IMAGO_OPTIONS_INVALID', reason: 'abort needs a reason (e.g. --reason "load too high")' };
      if (v.abortRequested || v.phase === 'aborting') return wrong('the upgrade is already aborting');
      if (v.pointOfNoReturnPassed || v.phase === 'switchover' || v.phase === 'post-switchover') {
        return wrong('the switchover has happened; abort is no longer possible (Unew serves; see rollback)');
      }
      // Why: once the hold has begun, an abort could not be honoured without
      // racing the switch. The cut-over either completes or, on any failure
      // before its point of no return, puts every client back on Uold by itself.
      if (v.phase === 'termination') return wrong('termination has begun; the cut-over will either complete or put every client back on Uold by itself');
      return null;
    }
    case 'pause':
      if (!TRANSFER_PHASES.includes(v.phase)) return wrong(`pause is accepted only while data is transferred; the phase is ${v.phase}`);
      if (v.paused) return wrong('already paused');
      return null;
    case 'resume':
      if (!v.paused) return wrong('not paused');
      return null;
    case 'setThrottle': {
      if (!TRANSFER_PHASES.includes(v.phase)) return wrong(`throttle is accepted only while data is transferred; the phase is ${v.phase}`);
      const bad = throttleProblems(arg);
      return bad ? { code: 'IMAGO_OPTIONS_INVALID', reason: bad } : null;
    }
    case 'finalize':
      if (v.phase !== 'post-switchover') return wrong(`finalize is accepted only in the post-switchover window; the phase is ${v.phase}`);
      if (v.finalizeRequested) return wrong('finalize was already requested');
      return null;
    case 'rollback':
      if (!reasonOf(arg)) return { code: 'IMAGO_OPTIONS_INVALID', reason: 'rollback needs a reason (e.g. --reason "p99 doubled")' };
      if (v.phase !== 'post-switchover') return wrong(`rollback is accepted only in the post-switchover window; the phase is ${v.phase}`);
      if (v.finalizeRequested) return wrong('finalize was requested: the window is closing, rollback is no longer possible');
      if (v.rollback.requested) return wrong('a rollback is already under way');
      if (!v.rollback.available) return wrong(`rollback is not available for this upgrade: ${v.rollback.why ?? 'no reverse replication'}; Unew keeps serving`);
      return null;
    case 'cutoverCheck':
      if (!CHECKABLE_PHASES.includes(v.phase)) return wrong(`the cut-over check needs Unew up and following (testing or awaiting approval); the phase is ${v.phase}`);
      return null;
  }
}

/** The failure an update validator throws: the registry code as its type, so clients map types, not messages. */
export function refusalFailure(op: Operation, r: Refusal): ApplicationFailure {
  return ApplicationFailure.create({ type: r.code, message: `${op} refused: ${r.reason}`, nonRetryable: true });
}

/** Throws the refusal, if any (for update validators). */
export function validate(op: Operation, v: RulesView, arg?: unknown): void {
  const r = refusal(op, v, arg);
  if (r) throw refusalFailure(op, r);
}

/** An abort's or rollback's reason from an update argument or a signal's input (the web UI may send a bare string). */
export function reasonOf(arg: unknown): string | null {
  const raw = typeof arg === 'string' ? arg : (arg as { reason?: unknown } | null | undefined)?.reason;
  return typeof raw === 'string' && raw.trim() ? raw.trim() : null;
}

/** Who sent a message, when the sender says (`{by: "alice"}`). */
export function senderOf(arg: unknown): string | undefined {
  const by = (arg as { by?: unknown } | null | undefined)?.by;
  return typeof by === 'string' && by.trim() ? by.trim().slice(0, 100) : undefined;
}

function throttleProblems(arg: unknown): string | null {
  if (arg === null || typeof arg !== 'object' || Array.isArray(arg)) return 'throttle needs an object of settings, e.g. {"chunkSize": 500}';
  const problems: string[] = [];
  for (const [k, v] of Object.entries(arg)) {
    if (!(THROTTLE_KEYS as readonly string[]).includes(k)) problems.push(`unknown throttle setting '${k}' (known: ${THROTTLE_KEYS.join(', ')})`);
    else if (k === 'niceRatio') { if (typeof v !== 'number' || !(v >= 0 && v <= 100)) problems.push('niceRatio must be a number from 0 to 100'); }
    else if (!Number.isInteger(v) || (v as number) < 1) problems.push(`${k} must be a positive integer`);
  }
  if (!Object.keys(arg).length) problems.push(`give at least one of ${THROTTLE_KEYS.join(', ')}`);
  return problems.length ? problems.join('; ') : null;
}
