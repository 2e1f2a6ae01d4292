/**
 * The upgrade workflow's messages, defined once and shared by the workflow,
 * the activities and the client.
 *
 * Operator messages come two ways, with the same rules (workflows/rules.ts):
 * - as **updates** (the CLI and the library): a validator refuses a message
 *   that is invalid in the current phase, with the reason, and nothing
 *   changes; an accepted one answers.
 * - as **signals** of the same name (Temporal's web UI, `temporal workflow
 *   signal`): a signal cannot answer, so the workflow records each one in
 *   `status.signals`, accepted or refused with the reason; a refused signal
 *   changes nothing.
 */
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import type { CutoverCheckReport, TransferControls, TransferEdgeEvent, UpgradeStatus } from './status';

export interface ApproveArgs { by?: string; note?: string }
export interface ReasonArgs { reason: string; by?: string }
export type ThrottleArgs = Partial<Pick<TransferControls, 'chunkSize' | 'maxThreadsRunning' | 'maxLagMs' | 'niceRatio'>>;

/** Operator approval of the switchover (testing → termination). Valid only while awaiting approval. */
export const approveUpdate = defineUpdate<string, [ApproveArgs]>('approve');
/** Abort before termination begins: Unew is destroyed, Uold untouched. */
export const abortUpdate = defineUpdate<string, [ReasonArgs]>('abort');
/** Pause / resume the data copy (Uold's load is the reason, usually). */
export const pauseUpdate = defineUpdate<string, []>('pause');
export const resumeUpdate = defineUpdate<string, []>('resume');
/** Change the copy chunk size and throttle thresholds while running. */
export const setThrottleUpdate = defineUpdate<TransferControls, [ThrottleArgs]>('setThrottle');
/** End the post-switchover window now: Uold's resources are released per policy. */
export const finalizeUpdate = defineUpdate<string, []>('finalize');
/** Return traffic to Uold during the post-switchover window (needs postSwitchover.rollback: see docs/rollback.md). */
export const rollbackUpdate = defineUpdate<string, [ReasonArgs]>('rollback');
/** The cut-over's dry run now: every check and its figure, nobody held (`imago cutover check`). */
export const cutoverCheckUpdate = defineUpdate<CutoverCheckReport, []>('cutoverCheck');

/** The same operator messages as signals (web UI, `temporal workflow signal --name approve`). The input may be JSON or, for abort, a bare reason string. */
export const approveSignal = defineSignal<[ApproveArgs?]>('approve');
export const abortSignal = defineSignal<[ReasonArgs | string]>('abort');
export const pauseSignal = defineSignal<[]>('pause');
export const resumeSignal = defineSignal<[]>('resume');
export const finalizeSignal = defineSignal<[]>('finalize');

/** From the transfer activity, only on edges (caught up, fell behind, copy done, stopped, error): per-tick progress goes in its heartbeat details. */
export const transferEdgeSignal = defineSignal<[TransferEdgeEvent]>('transferEdge');
/** From the cut-over activity, before the first step that can let Unew serve: the durable point of no return. */
export const pointOfNoReturnSignal = defineSignal<[{ attempt: number; at: number; unewPosition?: string }]>('pointOfNoReturn');
/** From the rollback activity, before the first step that can let Uold serve again: the rollback's own point of no return. */
export const rollbackPointOfNoReturnSignal = defineSignal<[{ attempt: number; at: number }]>('rollbackPointOfNoReturn');

export const statusQuery = defineQuery<UpgradeStatus>('status');
/** Read by the transfer activity to pick up pause/resume and throttle changes, and stop. */
export const transferControlsQuery = defineQuery<TransferControls>('transferControls');

/**
 * What Temporal's web UI shows under each name in its "Send a Signal", "Send
 * an Update" and "Queries" lists (the handlers' descriptions). Imago's own
 * signals and query are listed there too: they say not to use them.
 */
export const DESCRIPTIONS = {
  approve: 'Approve the switchover; only while awaiting approval. Input (optional): {"by": "your name", "note": "…"}.',
  abort: 'Abort before termination begins: Unew destroyed, Uold untouched. Input: {"reason": "…", "by": "your name"} or a bare "reason".',
  pause: 'Pause the data copy (while data is transferred). No input.',
  resume: 'Resume a paused copy. No input.',
  finalize: 'End the post-switchover window now. No input.',
  setThrottle: 'Change the copy while it runs. Input: any of {"chunkSize": 500, "maxThreadsRunning": 25, "maxLagMs": 2000, "niceRatio": 0.5}.',
  rollback: 'Return every client to Uold during the post-switchover window (plans with postSwitchover.rollback; refused otherwise, with the reason). Input: {"reason": "…"}.',
  cutoverCheck: "The cut-over's dry run: every check and its figure, nobody held (testing or awaiting approval). No input.",
  transferEdge: "Imago's own, from the transfer activity: do not send. A hand-made one is refused and recorded in status.signals.",
  pointOfNoReturn: "Imago's own, from the cut-over activity: do not send. A hand-made one is refused and recorded in status.signals.",
  rollbackPointOfNoReturn: "Imago's own, from the rollback activity: do not send. A hand-made one is refused and recorded in status.signals.",
  status: 'The whole state: phase, timings, transfer, tests, compare, gate, cut-overs, signals (accepted or refused), last error.',
  transferControls: "Imago's own, read by the transfer activity: pause, stop and throttle settings.",
} as const;

/** A signal cannot answer: its description says where its outcome shows. */
export const SIGNAL_NOTE = ' Accepted or refused (with why), it is recorded in status.signals.';
/** An update answers: refused, it says why and changes nothing. */
export const UPDATE_NOTE = ' Answers; refused, it says why and changes nothing.';
