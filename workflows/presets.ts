import { ActivityCancellationType, type ActivityOptions } from '@temporalio/workflow';

/**
 * Named timeout and retry presets for the upgrade's activities. Errors whose
 * type is a non-retryable Imago code (validation, consistency) are never
 * retried: activities/index.ts (toFailure) marks them so.
 */
export const presets = {
  /** Quick calls: status, control API, small queries. */
  short: { startToCloseTimeout: '30 seconds', retry: { initialInterval: '500 ms', maximumInterval: '5 seconds', maximumAttempts: 5 } },
  /**
   * Creating or destroying a universe: processes, databases, cloud resources. Each call heartbeats
   * every 5 s (activities/context.ts withHeartbeat), so a dead worker is noticed in 20 s, not minutes.
   */
  provision: { startToCloseTimeout: '10 minutes', heartbeatTimeout: '20 seconds', retry: { initialInterval: '2 seconds', maximumInterval: '30 seconds', maximumAttempts: 5 } },
  /**
   * Waiting for Unew's health check: heartbeats (the SDK sends one every ~8 s at this timeout),
   * so an abort's cancellation reaches it quickly, and it has stopped before compensation runs.
   */
  health: { startToCloseTimeout: '1 hour', heartbeatTimeout: '10 seconds', cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED, retry: { initialInterval: '2 seconds', maximumInterval: '30 seconds', maximumAttempts: 5 } },
  /**
   * Copy and follow: runs for as long as the upgrade, resumes from Unew's state after a retry.
   * A database that does not answer is retried inside the activity, each failure reported in the
   * status with its code, for transfer.unreachableRetryMs per incident; then, by transfer.onUnreachable, it
   * fails for good (non-retryable) or keeps waiting. Temporal's retries are left for worker crashes, which may
   * happen any number of times over an upgrade that runs for days.
   */
  // Cancellation waits for the activity to stop, so nothing writes to Unew after compensation destroys it.
  transfer: { startToCloseTimeout: '30 days', heartbeatTimeout: '20 seconds', cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED, retry: { initialInterval: '1 second', maximumInterval: '10 seconds' } },
  /**
   * The reverse replication of a rollback-ready window: like the transfer, but stopped by
   * cancellation, which reaches an activity only with a heartbeat, and the SDK throttles
   * heartbeats to 80 % of the timeout: a short timeout makes the stop take seconds, not 16.
   */
  reverse: { startToCloseTimeout: '30 days', heartbeatTimeout: '3 seconds', cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED, retry: { initialInterval: '1 second', maximumInterval: '10 seconds' } },
  /** Plan tests and verification: long, heartbeating (every 5 s, the load test every 1 s), retried once (a failing test is a verdict, not a fault). */
  testing: { startToCloseTimeout: '2 hours', heartbeatTimeout: '20 seconds', retry: { initialInterval: '1 second', maximumAttempts: 2 } },
} satisfies Record<string, ActivityOptions>;

/**
 * The cut-over. It heartbeats every second, so a dead worker is noticed
 * within the heartbeat timeout and a second attempt never overlaps a live
 * first one. Its attempts are not limited: an attempt that fails before the
 * point of no return restores Uold and *returns* (switched: false); only a
 * failure past it throws, and then the only way is forward, again and again
 * until every client is on Unew.
 */
export function cutoverPreset(holdTimeoutMs: number): ActivityOptions {
  return {
    // The pre-hold verification may wait up to 30 s for Unew, plus the hold, plus forward completion.
    startToCloseTimeout: holdTimeoutMs + 5 * 60_000,
    heartbeatTimeout: '10 seconds',
    retry: { initialInterval: '1 second', maximumInterval: '10 seconds' },
  };
}
