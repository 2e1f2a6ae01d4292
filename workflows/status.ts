/** The shapes the workflow reports: status (query), progress (signal in), controls (query out). Types only. */

export type Phase =
  | 'bootstrapping' | 'data-transfer' | 'testing' | 'awaiting-approval' | 'termination'
  | 'switchover' | 'post-switchover' | 'rolling-back' | 'completed' | 'aborting' | 'aborted' | 'failed' | 'rolled-back';

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
  /** What the operator should know about the transfer (absent in snapshots taken before it existed). */
  warnings?: string[];
}

export interface TransferControls {
  paused: boolean;
  chunkSize: number;
  maxThreadsRunning: number;
  /** After each chunk the copy rests this many times the chunk's time (absent in upgrades started before it existed). */
  niceRatio?: number;
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
  /**
   * How the attempt went: 'fresh' (hold → … → release), 'forward' (an earlier
   * attempt had passed the point of no return: this one only finished the
   * switch), 'restored' (failed before the point of no return: every
   * interceptor back on Uold, released), 'refused' (the dry-run check failed:
   * nobody was held).
   */
  mode: 'fresh' | 'forward' | 'restored' | 'refused';
  /** This attempt recorded the point of no return (or found it recorded). */
  pointOfNoReturn: boolean;
  holdMs: number;
  drainMs: number;
  flushMs: number;
  verifyMs: number;
  /** The smoke test's GET on the target, inside the hold (0 in reports made before it was counted apart from verifyMs). */
  smokeMs?: number;
  switchMs: number;
  /** Recording the point of no return with the workflow (a signal), inside the hold. */
  recordMs: number;
  /** The provider-level switch (e.g. the load balancer's Modify calls), inside the hold. */
  providerMs: number;
  releaseMs: number;
  totalMs: number;
  uoldPosition: string;
  changedRowsVerified: number;
  error?: string;
}

/** One check of the cut-over's dry run, with the figure it measured. */
export interface CutoverCheck {
  step: string;
  name: string;
  ok: boolean;
  /** The measured figure (ms) where the check measures one. */
  ms?: number;
  detail: string;
}

export interface CutoverCheckReport {
  ok: boolean;
  at: number;
  checks: CutoverCheck[];
  /** Uold position up to which the rows changed since the full verification were verified (the live attempt starts there). */
  verifiedPosition: string | null;
}

/** An operator message that arrived as a signal (which cannot answer): what became of it. */
export interface SignalRecord {
  name: string;
  at: number;
  accepted: boolean;
  /** Why it was refused; a refused signal changes nothing. */
  reason?: string;
  by?: string;
}

/** What the transfer activity reports to the workflow, only when something changes (not per tick: history stays bounded). */
export type TransferEdge = 'started' | 'copy-done' | 'caught-up' | 'fell-behind' | 'stopped' | 'error';

export interface TransferEdgeEvent {
  edge: TransferEdge;
  /** The activity attempt that sent it (a restart after a worker crash is attempt > 1). */
  attempt: number;
  snapshot: TransferProgressSnapshot;
  /** For 'error': the registry code and the message. */
  error?: { code: string; message: string };
}

/** Rollback after the switchover (plans with postSwitchover.rollback): the reverse replication, the rules, the rollback's cut-over. */
export interface RollbackStatus {
  /** Whether `imago rollback` is accepted now, and why not otherwise. */
  available: boolean;
  why: string | null;
  /** Unew's position at the point of no return: the reverse replication starts after it. */
  startPosition: string | null;
  /** The reverse replication as last seen (applied Unew position in Uold, lag, transactions behind). */
  reverse: { running: boolean; appliedPosition: string | null; lagMs: number | null; behind: number | null; at: number; error?: string } | null;
  /** The automatic rollback's last evaluation. */
  rules: { at: number; baselineP99Ms: number | null; results: Array<{ name: string; ok: boolean; detail: string }> } | null;
  /** The rollback asked for: by whom (an operator, or 'auto-rollback' with the failed rule), why, when. */
  requested: { reason: string; by: string; at: number; automatic: boolean } | null;
  /** Each attempt of the cut-over back to Uold. */
  cutovers: CutoverReport[];
  pointOfNoReturnPassed: boolean;
  /** After a rollback: Unew kept for inspection or destroyed (postSwitchover.rollback.onRolledBack). */
  unew: 'kept' | 'destroyed' | null;
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
  /** The compare engine's report, merged across the interceptors (compare/report.ts mergeReports). */
  compare: import('../compare/report-schema').CompareReport | null;
  verification: { differences: number; checked: number; examples: unknown[]; position: string } | null;
  gate: GateResult | null;
  approval: { policy: 'auto' | 'manual'; approved: boolean; by?: string; at?: number } ;
  cutovers: CutoverReport[];
  /** The last dry run of the cut-over (run before every attempt, and by `imago cutover check`). */
  cutoverCheck: CutoverCheckReport | null;
  pointOfNoReturnPassed: boolean;
  /** When and in which cut-over attempt the point of no return was recorded (before the first step that can let Unew serve). */
  pointOfNoReturn: { at: number; attempt: number; unewPosition?: string } | null;
  /** Only for plans with postSwitchover.rollback (absent in older runs). */
  rollback?: RollbackStatus | null;
  /** Operator messages received as signals, accepted or refused (bounded: the last 50). */
  signals: SignalRecord[];
  /** The transfer's last failure, while it is retried (cleared when it runs again). */
  transferError: { code: string; message: string; attempt: number; at: number } | null;
  /** What finalize did with Uold's fleet (kept, or deregistered and terminated by the provider). */
  uoldRetirement: { kept: boolean; detail: string } | null;
  /** Runs of this upgrade so far: 1 + the number of continue-as-new. */
  runs: number;
  /** Each continue-as-new: when, where the next run picked up, and the history length it left behind (the last 50). */
  continuations: Array<{ at: number; resumeAt: 'data-transfer' | 'testing' | 'awaiting-approval'; historyLength: number }>;
  /**
   * The sandbox of shadow writes during testing (docs/sandbox.md): where it
   * answered, the position of Uold's change stream its clone reflects, and
   * when it was removed; `none` says why there was none. Absent in statuses
   * of older runs.
   */
  sandbox?: { appUrl: string; position: string; createdAt: number; cloneMs: number; startMs: number; destroyedAt: number | null } | { none: string } | null;
  lastError: string | null;
  preflight: import('../activities/preflight/report').PreflightReport | null;
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
  /** Set only by continue-as-new: what the previous run of this upgrade carries over. */
  carried?: CarriedState;
}

/** Where a continued run picks up: the phase it was waiting in (never termination or later). */
export type ResumePoint = 'data-transfer' | 'testing' | 'awaiting-approval';

/** The state one run of the upgrade hands to the next (continue-as-new), so the upgrade's lifetime is unbounded. */
export interface CarriedState {
  status: UpgradeStatus;
  handle: import('../providers/provider').UnewHandle;
  resumeAt: ResumePoint;
  approved: boolean;
  /** When the approval wait began (ms since epoch): the timeout counts from there, across runs. */
  approvalWaitStartedAt: number | null;
  /** Cut-over attempts made so far. */
  attempts: number;
  /** The compare window's generation: a new one starts a fresh comparer at the interceptors. */
  compareEpoch: number;
}
/** Process exit codes of `imago upgrade start --wait` and `imago watch`. */
export const EXIT_CODES = { completed: 0, usage: 1, aborted: 2, failed: 3, 'rolled-back': 4, 'timed-out': 5 } as const;
