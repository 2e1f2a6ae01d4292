/**
 * The upgrade workflow's messages, defined once and shared by the workflow,
 * the activities and the client. Updates carry validators: an update that is
 * invalid in the current phase is rejected with the reason and changes nothing.
 */
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import type { UpgradeStatus, TransferProgressSnapshot, TransferControls } from './status';

/** Operator approval of the switchover (testing → termination). Valid only while awaiting approval. */
export const approveUpdate = defineUpdate<string, [{ by?: string; note?: string }]>('approve');
/** Abort before the point of no return: Unew is destroyed, Uold untouched. */
export const abortUpdate = defineUpdate<string, [{ reason: string }]>('abort');
/** Pause / resume the data copy (Uold's load is the reason, usually). */
export const pauseUpdate = defineUpdate<string, []>('pause');
export const resumeUpdate = defineUpdate<string, []>('resume');
/** Change the copy chunk size and throttle thresholds while running. */
export const setThrottleUpdate = defineUpdate<TransferControls, [Partial<Pick<TransferControls, 'chunkSize' | 'maxThreadsRunning' | 'maxLagMs'>>]>('setThrottle');
/** End the post-switchover window now: Uold's resources are released per policy. */
export const finalizeUpdate = defineUpdate<string, []>('finalize');
/** Return traffic to Uold during the post-switchover window (needs reverse replication, not built yet: see docs/upgrade-driver.md). */
export const rollbackUpdate = defineUpdate<string, [{ reason: string }]>('rollback');

/** Sent by the transfer activity every few seconds. */
export const transferProgressSignal = defineSignal<[TransferProgressSnapshot]>('transferProgress');

export const statusQuery = defineQuery<UpgradeStatus>('status');
/** Read by the transfer activity to pick up pause/resume and throttle changes. */
export const transferControlsQuery = defineQuery<TransferControls>('transferControls');
