/**
 * The cut-over as verb-named steps behind one interface. Two implementations:
 * the live one (activities/cutover/live-steps.ts) holds clients and switches
 * traffic; the dry-run twin (activities/cutover/dry-run.ts) performs every
 * check and measures every figure without holding anyone. The driver
 * (activities/cutover/driver.ts) runs the same script on either, so what the
 * dry run checks is what the live run will do.
 *
 *   prepare → hold → waitDrained → readFinalPosition → flush → verifyWindow
 *   → smokeTest → switchInterceptors
 *   ── POINT OF NO RETURN: recordPointOfNoReturn ──
 *   → commitInterceptors → switchProvider → release
 *
 * Before the point of no return every step can be undone by `restore` (every
 * interceptor back on Uold, released): nothing was served by Unew. The
 * interceptors' switch comes before it because an uncommitted switch is still
 * undone by each interceptor's own hard timeout. The interceptors' commit and
 * the provider's switch (a load balancer in front) come after it: from the
 * first of them Unew may serve, so every later path only moves forward. The
 * commit comes first: once a load balancer may send clients to Unew, no
 * interceptor may go back to Uold at its hard timeout.
 */
import type { UpgradePlan } from '../../plan/types';
import type { IngressControlClient } from '../../interceptors/ingress';
import type { Provider, UnewHandle } from '../../providers/provider';
import type { ConversionModule } from '../../transfer/conversion';
import type { CutoverCheck } from '../../workflows/status';

export interface CutoverSteps {
  /** Before anyone is held: Unew registered at every interceptor, the provider's switch prepared, most of the window verified. */
  prepare(): Promise<void>;
  hold(): Promise<void>;
  waitDrained(): Promise<void>;
  /** Quiescent now: nothing reaches Uold, so its position is final. */
  readFinalPosition(): Promise<string>;
  flush(position: string): Promise<void>;
  /** The rows changed since the last verification, compared in Unew. */
  verifyWindow(): Promise<void>;
  smokeTest(): Promise<void>;
  switchInterceptors(): Promise<void>;
  recordPointOfNoReturn(): Promise<void>;
  switchProvider(): Promise<void>;
  commitInterceptors(): Promise<void>;
  release(): Promise<void>;
  /** Before the point of no return only: every interceptor back to its old target, released. Returns the problems met. */
  restore(): Promise<string[]>;
}

export type StepName = Exclude<keyof CutoverSteps, 'restore'>;

/**
 * Where a cut-over moves the clients: to Unew (the upgrade), or back to Uold
 * (a rollback after the switchover: the same steps with the universes
 * swapped, the source being Unew and the target Uold).
 */
export interface CutoverDirection {
  /** The provider's side (prepareSwitch). */
  side: 'unew' | 'uold';
  /** The interceptors' name for the target. */
  upstream: string;
  /** The target's application (registered at the interceptors when missing; the smoke test's host). */
  appUrl: string;
  /** The target's database: the flush waits on its applied position, the verification compares it. */
  database: string;
}

/** What the steps work on. Built on the worker; secrets are resolved here and never leave it. */
export interface CutoverContext {
  workflowId: string;
  attempt: number;
  plan: UpgradePlan;
  handle: UnewHandle;
  clients: IngressControlClient[];
  provider: Provider;
  sourceUrl: string;
  targetUrl: string;
  /** Where the clients go, and the source's database (Uold's, or Unew's for a rollback). */
  to: CutoverDirection;
  sourceDatabase: string;
  /** The conversion from the source's rows to the target's, for the verification (the reverse for a rollback). */
  conversion(): ConversionModule;
  /** Uold position up to which the rows changed since the full verification are verified (null: verification off or not run). */
  verifiedPosition: string | null;
  /** The transfer's lag the workflow last heard of (ms), for the dry run. */
  reportedLagMs: number | null;
  /**
   * Records the point of no return durably with the workflow (a signal the
   * server has persisted when it returns). `late`: found passed by a later
   * attempt, after clients may have been served by the target.
   */
  recordPointOfNoReturn(opts?: { late?: boolean }): Promise<void>;
  /** Keeps the activity alive in Temporal's eyes, with where it is. */
  beat(stage: string): void;
  /** The activity's cancellation (a newer attempt took over, or the workflow went away). */
  cancelled: AbortSignal;
}

/** Where a test wraps the steps or the control clients to inject faults (test code only; production passes nothing). */
export interface CutoverHooks {
  wrapSteps?(steps: CutoverSteps, ctx: CutoverContext, kind: 'live' | 'dry-run' | 'rollback'): CutoverSteps;
  wrapClient?(client: IngressControlClient, index: number, ctx: { workflowId: string; attempt: number }): IngressControlClient;
}

/** Checks the dry run collects (the live steps throw instead). */
export type CheckSink = (c: CutoverCheck) => void;

/** Keep at least this share of the hold ahead when switching, so no hard timeout can fire between switch and commit. */
export const SWITCH_MARGIN = 0.25;

/** The interceptors' name for Unew's upstream. */
export const UNEW_UPSTREAM = 'unew';
