/** The shapes the workflow reports: status (query), progress (signal in), controls (query out). Types only. */

export type Phase =
  | 'bootstrapping' | 'data-transfer' | 'testing' | 'awaiting-approval' | 'termination'
  | 'switchover' | 'post-switchover' | 'completed' | 'aborting' | 'aborted' | 'failed' | 'rolled-back';

export interface TableProgressSnapshot {
  table: string;
  copied: number;
  total: number;
  done: boolean;
}

export interface TransferProgressSnapshot {
  at: number;
  phase: 'preflight' | 'copy' | 'following' | 'stopped';
  tables: TableProgressSnapshot[];
  copiedRows: number;
  totalRows: number;
  percent: number;
  rowsPerSec: number;
  etaSec: number | null;
  appliedPosition: string;
  lagMs: number | null;
  lagEvents: number | null;
  throttleReason: string | null;
  paused: boolean;
}

export interface TransferControls {
  paused: boolean;
  chunkSize: number;
  maxThreadsRunning: number;
  maxLagMs: number;
  /** Set when the workflow wants the transfer activity to stop. */
  stop: boolean;
}

export interface TestResult {
  name: string;
  passed: boolean;
  durationMs: number;
  exitCode: number | null;
  output: string;
}

export interface GateResult {
  pass: boolean;
  reasons: string[];
  tests: { passed: number; failed: number };
  compare: { pass: boolean; reasons: string[]; samples: number } | null;
  verification: { differences: number; checked: number } | null;
}

export interface CutoverReport {
  attempt: number;
  switched: boolean;
  holdMs: number;
  drainMs: number;
  flushMs: number;
  verifyMs: number;
  switchMs: number;
  releaseMs: number;
  totalMs: number;
  uoldPosition: string;
  changedRowsVerified: number;
  error?: string;
}

export interface UpgradeStatus {
  upgradeId: string;
  system: string;
  from: string;
  to: string;
  provider: string;
  phase: Phase;
  phaseStartedAt: number;
  /** Start and end (ms since epoch) of each phase reached. */
  timings: Array<{ phase: Phase; startedAt: number; endedAt?: number }>;
  unew: { appUrls: string[]; dbEndpoint: string } | null;
  transfer: TransferProgressSnapshot | null;
  controls: TransferControls;
  tests: TestResult[];
  compare: unknown | null;
  verification: { differences: number; checked: number; examples: unknown[]; position: string } | null;
  gate: GateResult | null;
  approval: { policy: 'auto' | 'manual'; approved: boolean; by?: string; at?: number } ;
  cutovers: CutoverReport[];
  pointOfNoReturnPassed: boolean;
  lastError: string | null;
  preflight: unknown | null;
  abortReason: string | null;
  outcome: 'running' | 'completed' | 'aborted' | 'failed' | 'rolled-back';
  /** Bounded time series for reports (at most ~600 points each). */
  series: {
    transfer: Array<{ at: number; percent: number; copiedRows: number; rowsPerSec: number; lagMs: number | null }>;
    /** The ingress interceptors' client-visible timeline around the cut-over (100 ms buckets). */
    ingress: Array<{ at: number; count: number; errors: number; meanMs: number; maxMs: number }>;
  };
}

export const TASK_QUEUE = 'imago';
export const WORKFLOW_TYPE = 'upgradeWorkflow';
export interface UpgradeInput {
  upgradeId: string;
  plan: import('../plan/types').UpgradePlan;
}
/** Process exit codes of `imago upgrade start --wait` and `imago watch`. */
export const EXIT_CODES = { completed: 0, usage: 1, aborted: 2, failed: 3, 'rolled-back': 4, 'timed-out': 5 } as const;
