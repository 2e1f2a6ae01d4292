/** The activities' signatures, shared by the workflow (types only) and activities/index.ts. */
import type { UpgradePlan } from '../plan/types';
import type { UnewHandle } from '../providers/provider';
import type { CutoverReport, TestResult, TransferProgressSnapshot, UpgradeStatus } from '../workflows/status';
import type { PreflightReport } from './preflight';

export interface CompareSummary {
  pass: boolean;
  reasons: string[];
  samples: number;
  /** The compare engines' reports, one per interceptor (bounded). */
  report: unknown;
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
  runTransfer(args: { workflowId: string; handle: UnewHandle; plan: UpgradePlan }): Promise<TransferProgressSnapshot | null>;
  runPlanTests(handle: UnewHandle, plan: UpgradePlan): Promise<TestResult[]>;
  /** Unew's application account: what it holds against unew.grants (a test result in the gate). */
  checkGrants(handle: UnewHandle, plan: UpgradePlan): Promise<TestResult>;
  startMirror(handle: UnewHandle, plan: UpgradePlan): Promise<void>;
  compareVerdict(plan: UpgradePlan): Promise<CompareSummary>;
  stopMirror(plan: UpgradePlan): Promise<void>;
  verifyData(handle: UnewHandle, plan: UpgradePlan): Promise<VerificationSummary>;
  /** Termination (hold, drain, flush, verify the last window, smoke test) and switchover, bounded by the hold timeout. */
  cutOver(args: { attempt: number; handle: UnewHandle; plan: UpgradePlan; verifiedPosition: string | null }): Promise<CutoverReport>;
  collectIngressTimeline(plan: UpgradePlan, sinceMs: number): Promise<UpgradeStatus['series']['ingress']>;
  destroyUnew(upgradeId: string, plan: UpgradePlan): Promise<void>;
}
