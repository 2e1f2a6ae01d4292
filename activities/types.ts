/** The activities' signatures, shared by the workflow (types only) and activities/index.ts. */
import type { UpgradePlan } from '../plan/types';
import type { SandboxHandle, UnewHandle, UoldRetirement } from '../providers/provider';
import type { CutoverArgs } from './cutover';
import type { RollbackArgs } from './cutover/rollback';
import type { ReverseArgs, WindowReport } from './rollback';
import type { ReverseProgress } from '../transfer/reverse';
import type { CutoverCheckReport, CutoverReport, TestResult, UpgradeStatus } from '../workflows/status';
import type { PreflightReport } from './preflight';
import type { TransferResult } from './transfer-runner';
import type { CompareReport } from '../compare/report-schema';

export interface CompareSummary {
  pass: boolean;
  reasons: string[];
  /** The failing rules, across every interceptor: only 'no-traffic'/'min-samples' means "not enough evidence yet". */
  failures: Array<{ rule: 'no-traffic' | 'min-samples' | 'regression' | 'server-error' | 'latency' | 'no-engine'; endpoint: string | null; reason: string }>;
  samples: number;
  /**
   * Whether Unew was being kept up to date when the verdict was read: it
   * reached Uold's position of that moment within transfer.maxLagMs. Pairs
   * mirrored while Unew was not fed (the transfer down after a worker crash)
   * compare old data with new, so such a window is discarded, not judged.
   */
  unewFresh: boolean;
  freshness: string;
  /** The compare engines' reports, merged across the interceptors. */
  report: CompareReport | null;
}

export interface VerificationSummary {
  differences: number;
  checked: number;
  examples: unknown[];
  /** Uold position of the compare: the termination's fast check covers what changed after it. */
  position: string;
}

export interface UpgradeActivities {
  validatePlanOnWorker(plan: UpgradePlan): Promise<void>;
  preflight(plan: UpgradePlan): Promise<PreflightReport>;
  provisionUnew(upgradeId: string, plan: UpgradePlan): Promise<UnewHandle>;
  installSchema(handle: UnewHandle, plan: UpgradePlan): Promise<{ statements: number }>;
  startUnewApp(handle: UnewHandle, plan: UpgradePlan): Promise<UnewHandle>;
  waitUnewHealthy(handle: UnewHandle, plan: UpgradePlan): Promise<void>;
  /** Copies, then follows Uold until the workflow's controls say stop. Signals progress to the workflow. */
  runTransfer(args: { workflowId: string; handle: UnewHandle; plan: UpgradePlan }): Promise<TransferResult>;
  runPlanTests(handle: UnewHandle, plan: UpgradePlan): Promise<TestResult[]>;
  /** Unew's application account: what it holds against unew.grants (a test result in the gate). */
  checkGrants(handle: UnewHandle, plan: UpgradePlan): Promise<TestResult>;
  /** Mirrors reads to Unew and, given a sandbox, writes into it; a new `epoch` starts a fresh comparer (a new compare window). */
  startMirror(handle: UnewHandle, plan: UpgradePlan, epoch?: number, sandbox?: SandboxHandle | null): Promise<void>;
  /** The sandbox of shadow writes, or null when plan.sandbox says none (or 'auto' on a provider without one). */
  createSandbox(handle: UnewHandle, plan: UpgradePlan): Promise<SandboxHandle | null>;
  /** plan.loadTest: recorded live requests replayed against Unew (reads) and the sandbox (writes) at a multiple of Uold's peak rate; a test of the gate. */
  runLoadTest(handle: UnewHandle, plan: UpgradePlan, sandbox: SandboxHandle | null): Promise<TestResult>;
  /** Stops copying writes at every interceptor, then removes the sandbox (processes and data). Idempotent. */
  destroySandbox(upgradeId: string, plan: UpgradePlan): Promise<void>;
  compareVerdict(plan: UpgradePlan, handle?: UnewHandle): Promise<CompareSummary>;
  stopMirror(plan: UpgradePlan): Promise<void>;
  verifyData(handle: UnewHandle, plan: UpgradePlan): Promise<VerificationSummary>;
  /** Termination (hold, drain, flush, verify the last window, smoke test) and switchover, bounded by the hold timeout. */
  cutOver(args: CutoverArgs): Promise<CutoverReport>;
  /** The cut-over's dry run: every check with its figure, nobody held. */
  checkCutover(args: Omit<CutoverArgs, 'pointOfNoReturn'>): Promise<CutoverCheckReport>;
  collectIngressTimeline(plan: UpgradePlan, sinceMs: number): Promise<UpgradeStatus['series']['ingress']>;
  /** At finalize: Uold's fleet retired by the provider, or kept, per postSwitchover.keepUold. */
  retireUold(handle: UnewHandle, plan: UpgradePlan): Promise<UoldRetirement>;
  destroyUnew(upgradeId: string, plan: UpgradePlan): Promise<void>;
  /** Rollback: the reverse replication Unew -> Uold from the point of no return, until cancelled. */
  runReverse(args: ReverseArgs): Promise<ReverseProgress>;
  /** Rollback: the reverse's lag and the automatic rollback's rules, once. */
  watchWindow(args: { handle: UnewHandle; plan: UpgradePlan; baselineP99Ms: number | null }): Promise<WindowReport>;
  /** Rollback: the cut-over back to Uold (the same driver and steps, universes swapped). */
  rollBack(args: RollbackArgs): Promise<CutoverReport>;
  /** Rollback: the reverse's state removed from Uold. */
  finishRollback(handle: UnewHandle, plan: UpgradePlan): Promise<{ reverseStateDropped: boolean }>;
}
