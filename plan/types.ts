/** The upgrade plan, as validated by plan/schema.ts. Types only: the workflow imports these. */

/** A secret is never in the plan: only a reference to it, resolved inside activities on the worker. */
export type SecretRef = string; // 'env:NAME' | 'file:/path'

export interface IngressRef { controlUrl: string; tokenRef: SecretRef }

export interface PlanTest {
  name: string;
  /** argv; '{unewUrl}' is replaced by Unew's base URL. Run with cwd = the plan's folder. */
  command: string[];
  timeoutMs: number;
}

export interface UpgradePlan {
  version: 1;
  name: string;
  system: string;
  from: { version: string };
  to: { version: string };
  uold: {
    ingress: IngressRef[];
    db: { urlRef: SecretRef; database: string };
  };
  unew: {
    provider: 'local' | 'aws';
    database: string;
    schemaFile: string;
    conversion: string;
    app: { command: string[]; healthPath: string; env: Record<string, string>; startTimeoutMs: number };
    local?: { baseDir?: string };
    aws?: Record<string, unknown>;
    /** Optional only for plans validated before the grants check existed (in-flight workflows). */
    grants?: { enabled: boolean; privileges: string[]; tables: Record<string, string[]> };
  };
  transfer: { chunkSize: number; parallelTables: number; maxThreadsRunning: number; maxLagMs: number };
  tests: PlanTest[];
  mirror: { percent: number; methods: string[]; minDurationMs: number; maxDurationMs: number };
  compare: Record<string, unknown>;
  verify: { enabled: boolean; chunkSize: number; niceRatio?: number };
  switchover: { maxLagMsToBegin: number; holdTimeoutMs: number; drainTimeoutMs: number; flushTimeoutMs: number; maxAttempts: number; smokePath: string };
  approval: { policy: 'auto' | 'manual'; timeoutMs: number; onTimeout: 'abort' | 'proceed' };
  postSwitchover: { windowMs: number; finalize: 'auto' | 'manual'; keepUold: boolean };
}
