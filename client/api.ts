/**
 * ImagoClient: the typed library behind the CLI, for CI scripts and tools.
 *
 *   const imago = await ImagoClient.connect({ address: 'temporal:7233' });
 *   const { workflowId } = await imago.start(loadPlanFile('plan.yaml'));
 *   const result = await imago.watch(workflowId, (s) => console.log(s.phase));
 *   process.exit(result.exitCode);
 *
 * Every operation names its upgrade by workflow id (`imago-<plan name>`; the
 * bare plan name is accepted too). Errors are registry errors: an unknown id
 * is CLIENT_NOT_FOUND; an operation the workflow's validator refuses is
 * IMAGO_WRONG_PHASE (or the code the workflow gave), and changed nothing.
 */
import { Client, Connection, WorkflowExecutionAlreadyStartedError, WorkflowNotFoundError, WorkflowUpdateFailedError, type WorkflowHandle } from '@temporalio/client';
import type { SearchAttributePair } from '@temporalio/common';
import { ImagoFromVersion, ImagoOutcome, ImagoPhase, ImagoSystem, ImagoToVersion } from '../workflows/search-attributes';
import { ERRORS, imagoError, isImagoError, type ErrorCode } from '../lib/errors';
import type { UpgradePlan } from '../plan/types';
import { liveStatus } from './live-status';
import { abortUpdate, approveUpdate, cutoverCheckUpdate, finalizeUpdate, pauseUpdate, resumeUpdate, rollbackUpdate, setThrottleUpdate, statusQuery } from '../workflows/messages';
import { EXIT_CODES, TASK_QUEUE, WORKFLOW_TYPE, type CutoverCheckReport, type Phase, type TransferControls, type UpgradeInput, type UpgradeStatus } from '../workflows/status';
import { connect, resolveSettings, workflowUrl, type ConnectionFlags, type ConnectionSettings } from './connection';

const SEARCH_KEYS = { phase: ImagoPhase, system: ImagoSystem, from: ImagoFromVersion, to: ImagoToVersion, outcome: ImagoOutcome };

export type Outcome = Exclude<keyof typeof EXIT_CODES, 'usage'>;

export interface UpgradeResult {
  workflowId: string;
  outcome: Outcome;
  exitCode: number;
  /** The last status the workflow answered with (null if it could not be queried). */
  status: UpgradeStatus | null;
  /** The failure message of a failed workflow run. */
  error: string | null;
}

export interface UpgradeSummary {
  workflowId: string;
  runId: string;
  system?: string;
  from?: string;
  to?: string;
  phase?: string;
  outcome?: string;
  /** Temporal's execution status: RUNNING, COMPLETED, FAILED, TIMED_OUT, TERMINATED, CANCELLED... */
  executionStatus: string;
  startTime: string;
  closeTime: string | null;
  url: string;
}

export interface StartOptions {
  /** Temporal's execution timeout for the whole upgrade (ms); ends as 'timed-out'. */
  executionTimeoutMs?: number;
  taskQueue?: string;
}

export interface WatchOptions {
  intervalMs?: number;
  /** Stop watching (the upgrade goes on); watch then resolves with null. */
  signal?: AbortSignal;
  /** Call onStatus only when the status differs from the previous one (default true). */
  onlyChanges?: boolean;
}

export type ThrottleChange = Partial<Pick<TransferControls, 'chunkSize' | 'maxThreadsRunning' | 'maxLagMs'>>;

/** `imago-<plan name>`: one live upgrade per plan name. A bare plan name is accepted. */
export function upgradeWorkflowId(idOrName: string): string {
  return idOrName.startsWith('imago-') ? idOrName : `imago-${idOrName}`;
}

const sleep = (ms: number, signal?: AbortSignal) => new Promise<void>((resolve) => {
  const t = setTimeout(resolve, ms);
  signal?.addEventListener('abort', () => { clearTimeout(t); resolve(); }, { once: true });
});

export class ImagoClient {
  private constructor(
    readonly client: Client,
    readonly settings: Pick<ConnectionSettings, 'uiUrl' | 'namespace'>,
    private readonly owned?: Connection,
  ) {}

  /** From an existing Temporal client (its namespace is used); the caller keeps ownership of the connection. */
  static fromClient(client: Client, opts: { uiUrl?: string } = {}): ImagoClient {
    const ui = resolveSettings({ uiUrl: opts.uiUrl }, {}).uiUrl;
    return new ImagoClient(client, { uiUrl: ui, namespace: client.options.namespace });
  }

  /** Connects with flags > env > config file > defaults (see client/connection.ts); close() when done. */
  static async connect(flags: ConnectionFlags = {}, env: NodeJS.ProcessEnv = process.env): Promise<ImagoClient> {
    const settings = resolveSettings(flags, env);
    const { client, connection } = await connect(settings);
    return new ImagoClient(client, settings, connection);
  }

  async close(): Promise<void> { await this.owned?.close(); }

  url(id: string): string { return workflowUrl(this.settings, upgradeWorkflowId(id)); }

  /** Starts the upgrade workflow for an already validated plan (plan/load.ts). */
  async start(plan: UpgradePlan, opts: StartOptions = {}): Promise<{ workflowId: string; runId: string; url: string }> {
    const workflowId = upgradeWorkflowId(plan.name);
    const input: UpgradeInput = { upgradeId: workflowId, plan };
    // Set at start so `imago list` finds the upgrade before the workflow's first upsert.
    const attrs: SearchAttributePair[] = [
      { key: SEARCH_KEYS.system, value: plan.system },
      { key: SEARCH_KEYS.from, value: plan.from.version },
      { key: SEARCH_KEYS.to, value: plan.to.version },
      { key: SEARCH_KEYS.phase, value: 'bootstrapping' },
      { key: SEARCH_KEYS.outcome, value: 'running' },
    ];
    try {
      const handle = await this.client.workflow.start(WORKFLOW_TYPE, {
        taskQueue: opts.taskQueue ?? TASK_QUEUE, workflowId, args: [input], typedSearchAttributes: attrs,
        workflowExecutionTimeout: opts.executionTimeoutMs,
      });
      return { workflowId, runId: handle.firstExecutionRunId, url: this.url(workflowId) };
    } catch (err) {
      if (err instanceof WorkflowExecutionAlreadyStartedError) throw imagoError('CLIENT_ALREADY_RUNNING', `${workflowId} (plan '${plan.name}') is running: ${this.url(workflowId)}`, err);
      throw err;
    }
  }

  /** The workflow's status query. Works on a closed upgrade too, as long as a worker is running. */
  async status(id: string): Promise<UpgradeStatus> {
    const handle = this.handle(id);
    try { return await liveStatus(this.client, handle); } catch (err) {
      throw this.translate(err, handle.workflowId, 'status');
    }
  }

  async describe(id: string): Promise<UpgradeSummary> {
    const handle = this.handle(id);
    try { return this.summary(await handle.describe()); } catch (err) { throw this.translate(err, handle.workflowId, 'describe'); }
  }

  approve(id: string, by?: string, note?: string): Promise<string> { return this.update(id, 'approve', (h) => h.executeUpdate(approveUpdate, { args: [{ by, note }] })); }
  abort(id: string, reason: string): Promise<string> { return this.update(id, 'abort', (h) => h.executeUpdate(abortUpdate, { args: [{ reason }] })); }
  pause(id: string): Promise<string> { return this.update(id, 'pause', (h) => h.executeUpdate(pauseUpdate, { args: [] })); }
  resume(id: string): Promise<string> { return this.update(id, 'resume', (h) => h.executeUpdate(resumeUpdate, { args: [] })); }
  finalize(id: string): Promise<string> { return this.update(id, 'finalize', (h) => h.executeUpdate(finalizeUpdate, { args: [] })); }
  /** The cut-over's dry run now, on the worker: every check with its figure; nobody is held. */
  cutoverCheck(id: string): Promise<CutoverCheckReport> { return this.update(id, 'cutover check', (h) => h.executeUpdate(cutoverCheckUpdate, { args: [] })); }
  rollback(id: string, reason: string): Promise<string> { return this.update(id, 'rollback', (h) => h.executeUpdate(rollbackUpdate, { args: [{ reason }] })); }
  setThrottle(id: string, change: ThrottleChange): Promise<TransferControls> {
    return this.update(id, 'setThrottle', (h) => h.executeUpdate(setThrottleUpdate, { args: [change] }));
  }

  /** Upgrades by phase and outcome, newest first, from the visibility store (search attributes). */
  async list(filter: { phase?: Phase | string; outcome?: string; system?: string; limit?: number } = {}): Promise<UpgradeSummary[]> {
    const clauses = [`WorkflowType = '${WORKFLOW_TYPE}'`];
    const quote = (v: string) => `'${v.replace(/['\\]/g, '')}'`;
    if (filter.phase) clauses.push(`ImagoPhase = ${quote(filter.phase)}`);
    if (filter.outcome) clauses.push(`ImagoOutcome = ${quote(filter.outcome)}`);
    if (filter.system) clauses.push(`ImagoSystem = ${quote(filter.system)}`);
    const out: UpgradeSummary[] = [];
    for await (const info of this.client.workflow.list({ query: clauses.join(' AND ') })) {
      out.push(this.summary(info));
      if (out.length >= (filter.limit ?? 100)) break;
    }
    return out;
  }

  /** Waits for the upgrade to end: its outcome and the process exit code (EXIT_CODES). */
  async waitResult(id: string): Promise<UpgradeResult> {
    const handle = this.handle(id);
    let error: string | null = null;
    try { await handle.result(); } catch (err) {
      if (err instanceof WorkflowNotFoundError) throw this.translate(err, handle.workflowId, 'wait');
      error = ((err as any).cause?.message ?? (err as Error).message) as string;
    }
    return this.closedResult(handle, error);
  }

  /**
   * Polls the status until the upgrade ends, calling onStatus with each new
   * status; resolves with the result (or null when opts.signal stopped it).
   */
  async watch(id: string, onStatus: (s: UpgradeStatus) => void, opts: WatchOptions = {}): Promise<UpgradeResult | null> {
    const handle = this.handle(id);
    let last = '';
    while (!opts.signal?.aborted) {
      let desc;
      try { desc = await handle.describe(); } catch (err) { throw this.translate(err, handle.workflowId, 'watch'); }
      const status = await this.status(id).catch((err) => {
        // No worker answered: keep watching a running upgrade; a closed one ends below anyway.
        if (isImagoError(err, 'CLIENT_STATUS_UNAVAILABLE')) return null;
        throw err;
      });
      const key = JSON.stringify(status);
      if (status && (key !== last || opts.onlyChanges === false)) { last = key; onStatus(status); }
      if (desc.status.name !== 'RUNNING') return this.waitResult(id);
      await sleep(opts.intervalMs ?? 1_000, opts.signal);
    }
    return null;
  }

  private handle(id: string): WorkflowHandle { return this.client.workflow.getHandle(upgradeWorkflowId(id)); }

  private async closedResult(handle: WorkflowHandle, error: string | null): Promise<UpgradeResult> {
    const desc = await handle.describe();
    const status = await handle.query(statusQuery).catch(() => null);
    const outcome = outcomeOf(desc.status.name, status);
    return { workflowId: handle.workflowId, outcome, exitCode: EXIT_CODES[outcome], status, error };
  }

  private async update<T>(id: string, name: string, call: (h: WorkflowHandle) => Promise<T>): Promise<T> {
    const handle = this.handle(id);
    try { return await call(handle); } catch (err) {
      if (err instanceof WorkflowNotFoundError) {
        // The id may exist but be closed: say so instead of "not found".
        const desc = await handle.describe().catch(() => null);
        if (desc) throw imagoError('IMAGO_WRONG_PHASE', `${name} on ${handle.workflowId}: the upgrade has ended (${desc.status.name.toLowerCase()}); nothing was changed`, err);
      }
      throw this.translate(err, handle.workflowId, name);
    }
  }

  private translate(err: unknown, workflowId: string, op: string): Error {
    if (isImagoError(err)) return err;
    if (err instanceof WorkflowNotFoundError) return imagoError('CLIENT_NOT_FOUND', `${workflowId} (${op}) in namespace '${this.settings.namespace}'`, err);
    if (err instanceof WorkflowUpdateFailedError) {
      // The workflow's validator (or handler) refused: its failure's type is the registry code (workflows/rules.ts).
      const cause = err.cause as (Error & { type?: string }) | undefined;
      const reason = String(cause?.message ?? err.message);
      const code = cause?.type && cause.type in ERRORS ? (cause.type as ErrorCode) : 'IMAGO_WRONG_PHASE';
      return imagoError(code, `${op} on ${workflowId}: ${reason}; nothing was changed`, err);
    }
    if (op === 'status' && /query|deadline|timed? ?out|no poller|worker/i.test(String((err as Error)?.message))) {
      return imagoError('CLIENT_STATUS_UNAVAILABLE', `${workflowId}: ${(err as Error).message}`, err);
    }
    return err as Error;
  }

  private summary(info: { workflowId: string; runId: string; status: { name: string }; startTime: Date; closeTime?: Date; typedSearchAttributes: { get: (k: any) => unknown } }): UpgradeSummary {
    const get = (k: (typeof SEARCH_KEYS)[keyof typeof SEARCH_KEYS]) => info.typedSearchAttributes.get(k) as string | undefined;
    return {
      workflowId: info.workflowId, runId: info.runId,
      system: get(SEARCH_KEYS.system), from: get(SEARCH_KEYS.from), to: get(SEARCH_KEYS.to),
      phase: get(SEARCH_KEYS.phase), outcome: get(SEARCH_KEYS.outcome),
      executionStatus: info.status.name, startTime: info.startTime.toISOString(), closeTime: info.closeTime?.toISOString() ?? null,
      url: this.url(info.workflowId),
    };
  }
}

/** The outcome of a closed run: the workflow's own word when it has one, else Temporal's close status. */
export function outcomeOf(executionStatus: string, status: UpgradeStatus | null): Outcome {
  if (executionStatus === 'TIMED_OUT') return 'timed-out';
  const own = status?.outcome;
  if (own && own !== 'running') return own;
  if (executionStatus === 'COMPLETED') return 'completed';
  if (executionStatus === 'CANCELLED') return 'aborted';
  return 'failed';
}
