/**
 * ImagoClient: the typed library behind the CLI, for CI scripts, tools, the
 * demo, the benchmarks and the tests. `start` is the one way to start an
 * upgrade: typed by the workflow function, it sets the search attributes and
 * the user metadata the web UI shows.
 *
 *   const imago = await ImagoClient.connect({ address: 'temporal:7233' });
 *   const { workflowId } = await imago.start(loadPlanFile('plan.yaml'));
 *   const result = await imago.watch(workflowId, (s) => console.log(s.phase));
 *   process.exit(result.exitCode);
 *
 * Every operation names its upgrade by workflow id: any id (`imago-<plan
 * name>` by default, or the one given to start), and the bare plan name is
 * accepted too. Errors are registry errors: an unknown id is
 * CLIENT_NOT_FOUND; an operation the workflow's validator refuses is
 * IMAGO_WRONG_PHASE (or the code the workflow gave), and changed nothing.
 */
import {
  Client, Connection, ServiceError, WorkflowExecutionAlreadyStartedError, WorkflowNotFoundError, WorkflowUpdateFailedError,
  type WorkflowExecutionDescription, type WorkflowHandle, type WorkflowHandleWithFirstExecutionRunId,
} from '@temporalio/client';
import type { SearchAttributePair } from '@temporalio/common';
import { ImagoFromVersion, ImagoOutcome, ImagoPhase, ImagoSystem, ImagoToVersion } from '../workflows/search-attributes';
import { ERRORS, imagoError, isImagoError, type ErrorCode } from '../lib/errors';
import type { UpgradePlan } from '../plan/types';
import { upgradeWorkflow } from '../workflows';
import { abortUpdate, approveUpdate, cutoverCheckUpdate, finalizeUpdate, pauseUpdate, resumeUpdate, rollbackUpdate, setThrottleUpdate, statusQuery } from '../workflows/messages';
import { EXIT_CODES, TASK_QUEUE, type CutoverCheckReport, type Phase, type TransferControls, type UpgradeInput, type UpgradeStatus } from '../workflows/status';
import { connect, devServerUiUrl, resolveSettings, workflowUrl, type ConnectionFlags, type SettingSource } from './connection';
import { liveStatus } from './live-status';
import { upgradeMetadata } from './metadata';
import { missingSearchAttributes, serverUiUrl, type Services } from './server-setup';

const SEARCH_KEYS = { phase: ImagoPhase, system: ImagoSystem, from: ImagoFromVersion, to: ImagoToVersion, outcome: ImagoOutcome };

/** gRPC's status code NOT_FOUND, as raw service calls report it. */
const GRPC_NOT_FOUND = 5;

/** The workflow's type name, as Temporal records it: the function's name. */
export const UPGRADE_WORKFLOW_TYPE = upgradeWorkflow.name;
export type UpgradeWorkflow = typeof upgradeWorkflow;
export type UpgradeHandle = WorkflowHandle<UpgradeWorkflow>;

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
  /** The user metadata set at start (describe only; the list does not carry it). */
  staticSummary?: string;
  staticDetails?: string;
}

export interface StartOptions {
  /** The workflow id (and upgrade id); default `imago-<plan name>`. */
  workflowId?: string;
  /** Temporal's execution timeout for the whole upgrade (ms); ends as 'timed-out'. */
  executionTimeoutMs?: number;
  taskQueue?: string;
}

export interface StartedUpgrade {
  workflowId: string;
  runId: string;
  url: string;
  /** The typed handle: result() resolves with the final UpgradeStatus. */
  handle: WorkflowHandleWithFirstExecutionRunId<UpgradeWorkflow>;
}

/** Where the client's web UI links point, and where that URL came from. */
export interface UiSettings { uiUrl: string; namespace: string; address: string; uiUrlSource: SettingSource }

export interface WatchOptions {
  intervalMs?: number;
  /** Stop watching (the upgrade goes on); watch then resolves with null. */
  signal?: AbortSignal;
  /** Call onStatus only when the status differs from the previous one (default true). */
  onlyChanges?: boolean;
}

export type ThrottleChange = Partial<Pick<TransferControls, 'chunkSize' | 'maxThreadsRunning' | 'maxLagMs' | 'niceRatio'>>;

/** The default workflow id of a plan: `imago-<plan name>`, one live upgrade per plan name. */
export function defaultWorkflowId(planName: string): string { return `imago-${planName}`; }

/** The ids an operation's argument may name: the id itself, then (for a bare plan name) `imago-<name>`. */
export function candidateIds(idOrName: string): string[] {
  return idOrName.startsWith('imago-') ? [idOrName] : [idOrName, defaultWorkflowId(idOrName)];
}

/** Sleeps ms or until signal aborts; removes its listener either way (a poll loop adds one per turn). */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise<void>((resolve) => {
    if (signal?.aborted) { resolve(); return; }
    const done = () => { clearTimeout(t); signal?.removeEventListener('abort', done); resolve(); };
    const t = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}

export class ImagoClient {
  /** Argument → workflow id, once resolved (ids never change meaning within a client's life). */
  private readonly resolved = new Map<string, string>();
  /** The server's record of the UI's URL, looked up once (see ui()). */
  private uiLookup: Promise<void> | null;

  private constructor(
    readonly client: Client,
    private current: UiSettings,
    private readonly owned?: Connection,
    uiKnown = false,
  ) {
    this.uiLookup = uiKnown || current.uiUrlSource !== 'derived' ? Promise.resolve() : null;
  }

  /** Where links point: settled once any operation has run (start, status, list...). */
  get settings(): UiSettings { return this.current; }

  /**
   * From an existing Temporal client (its namespace is used); the caller keeps
   * ownership of the connection. The UI URL: opts.uiUrl, else the one recorded
   * on the namespace (looked up with the first operation), else the dev
   * server's convention.
   */
  static fromClient(client: Client, opts: { uiUrl?: string; address?: string } = {}): ImagoClient {
    // A Client built on something else than a Connection does not say its address: the caller may.
    const address = client.connection instanceof Connection ? client.connection.options.address : (opts.address ?? '127.0.0.1:7233');
    const given = opts.uiUrl?.replace(/\/+$/, '');
    return new ImagoClient(client, { address, namespace: client.options.namespace, uiUrl: given ?? devServerUiUrl(address), uiUrlSource: given ? 'flag' : 'derived' });
  }

  /** Connects with flags > env > config file > server > defaults (see client/connection.ts); close() when done. */
  static async connect(flags: ConnectionFlags = {}, env: NodeJS.ProcessEnv = process.env): Promise<ImagoClient> {
    const s = resolveSettings(flags, env);
    const { client, connection } = await connect(s);
    try {
      const ui = await ImagoClient.uiSettings(connection, { address: s.address, namespace: s.namespace, uiUrl: s.uiUrl, uiUrlSource: s.sources.uiUrl });
      return new ImagoClient(client, ui, connection, true);
    } catch (err) {
      await connection.close();
      throw err;
    }
  }

  /** The server's record, when nothing on this side set the URL; a namespace that does not exist is said so. */
  private static async uiSettings(connection: Services, s: UiSettings): Promise<UiSettings> {
    if (s.uiUrlSource !== 'derived') return s;
    const recorded = await serverUiUrl(connection, s.namespace).catch((err) => {
      if ((err as { code?: number }).code === GRPC_NOT_FOUND) {
        throw imagoError('CLIENT_CONFIG_INVALID', `namespace '${s.namespace}' does not exist on ${s.address}`, err);
      }
      throw imagoError('CLIENT_UNREACHABLE', `${s.address}: describing namespace '${s.namespace}': ${(err as Error).message}`, err);
    });
    return recorded ? { ...s, uiUrl: recorded.replace(/\/+$/, ''), uiUrlSource: 'server' } : s;
  }

  /** Settles the UI's URL once for a client made by fromClient (a failed lookup keeps the derived URL). */
  private async ui(): Promise<void> {
    this.uiLookup ??= ImagoClient.uiSettings(this.client.connection, this.current).then((ui) => { this.current = ui; }, () => undefined);
    await this.uiLookup;
  }

  async close(): Promise<void> { await this.owned?.close(); }

  /** The web UI page of a workflow id (as given: resolve() first for a bare plan name). */
  url(workflowId: string): string { return workflowUrl(this.settings, workflowId); }

  /**
   * Starts the upgrade workflow for an already validated plan (plan/load.ts):
   * the only way Imago starts one. Sets the search attributes (so `imago list`
   * finds it before the workflow's first upsert) and the web UI's summary.
   */
  async start(plan: UpgradePlan, opts: StartOptions = {}): Promise<StartedUpgrade> {
    await this.ui();
    const workflowId = opts.workflowId ?? defaultWorkflowId(plan.name);
    const input: UpgradeInput = { upgradeId: workflowId, plan };
    const attrs: SearchAttributePair[] = [
      { key: SEARCH_KEYS.system, value: plan.system },
      { key: SEARCH_KEYS.from, value: plan.from.version },
      { key: SEARCH_KEYS.to, value: plan.to.version },
      { key: SEARCH_KEYS.phase, value: 'bootstrapping' },
      { key: SEARCH_KEYS.outcome, value: 'running' },
    ];
    try {
      const handle = await this.client.workflow.start(upgradeWorkflow, {
        taskQueue: opts.taskQueue ?? TASK_QUEUE, workflowId, args: [input], typedSearchAttributes: attrs,
        workflowExecutionTimeout: opts.executionTimeoutMs, ...upgradeMetadata(plan, workflowId),
      });
      this.resolved.set(workflowId, workflowId);
      return { workflowId, runId: handle.firstExecutionRunId, url: this.url(workflowId), handle };
    } catch (err) {
      if (err instanceof WorkflowExecutionAlreadyStartedError) throw imagoError('CLIENT_ALREADY_RUNNING', `${workflowId} (plan '${plan.name}') is running: ${this.url(workflowId)}`, err);
      throw await this.explainServiceError(err, 'start');
    }
  }

  /**
   * The workflow id an argument names: the id as given when such an upgrade
   * exists (any id: the library's, the demo's), else `imago-<argument>` (a
   * bare plan name). CLIENT_NOT_FOUND when neither exists or the workflow is
   * not an upgrade.
   */
  async resolve(idOrName: string): Promise<string> {
    const known = this.resolved.get(idOrName);
    if (known) return known;
    const { workflowId } = await this.find(idOrName);
    return workflowId;
  }

  /** The typed handle of an upgrade (resolved as resolve() does). */
  async handle(idOrName: string): Promise<UpgradeHandle> {
    return this.client.workflow.getHandle<UpgradeWorkflow>(await this.resolve(idOrName));
  }

  /** The workflow's status query. Works on a closed upgrade too, as long as a worker is running. */
  async status(id: string): Promise<UpgradeStatus> {
    const handle = await this.handle(id);
    try { return await liveStatus(this.client, handle); } catch (err) {
      throw this.translate(err, handle.workflowId, 'status');
    }
  }

  async describe(id: string): Promise<UpgradeSummary> {
    const { description } = await this.find(id);
    const [staticSummary, staticDetails] = await Promise.all([description.staticSummary(), description.staticDetails()]);
    return { ...this.summary(description), staticSummary, staticDetails };
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
    const clauses = [`WorkflowType = '${UPGRADE_WORKFLOW_TYPE}'`];
    const quote = (v: string) => `'${v.replace(/['\\]/g, '')}'`;
    if (filter.phase) clauses.push(`ImagoPhase = ${quote(filter.phase)}`);
    if (filter.outcome) clauses.push(`ImagoOutcome = ${quote(filter.outcome)}`);
    if (filter.system) clauses.push(`ImagoSystem = ${quote(filter.system)}`);
    await this.ui();
    const out: UpgradeSummary[] = [];
    try {
      for await (const info of this.client.workflow.list({ query: clauses.join(' AND ') })) {
        out.push(this.summary(info));
        if (out.length >= (filter.limit ?? 100)) break;
      }
    } catch (err) {
      throw await this.explainServiceError(err, 'list');
    }
    return out;
  }

  /** Waits for the upgrade to end: its outcome and the process exit code (EXIT_CODES). */
  async waitResult(id: string): Promise<UpgradeResult> {
    const handle = await this.handle(id);
    let error: string | null = null;
    try { await handle.result(); } catch (err) {
      if (err instanceof WorkflowNotFoundError) throw this.translate(err, handle.workflowId, 'wait');
      error = ((err as { cause?: Error }).cause?.message ?? (err as Error).message);
    }
    return this.closedResult(handle, error);
  }

  /**
   * Polls the status until the upgrade ends, calling onStatus with each new
   * status; resolves with the result (or null when opts.signal stopped it).
   */
  async watch(id: string, onStatus: (s: UpgradeStatus) => void, opts: WatchOptions = {}): Promise<UpgradeResult | null> {
    const handle = await this.handle(id);
    let last = '';
    while (!opts.signal?.aborted) {
      let desc;
      try { desc = await handle.describe(); } catch (err) { throw this.translate(err, handle.workflowId, 'watch'); }
      const status = await this.status(handle.workflowId).catch((err) => {
        // No worker answered: keep watching a running upgrade; a closed one ends below anyway.
        if (isImagoError(err, 'CLIENT_STATUS_UNAVAILABLE')) return null;
        throw err;
      });
      const key = JSON.stringify(status);
      if (status && (key !== last || opts.onlyChanges === false)) { last = key; onStatus(status); }
      if (desc.status.name !== 'RUNNING') return this.waitResult(handle.workflowId);
      await sleep(opts.intervalMs ?? 1_000, opts.signal);
    }
    return null;
  }

  private async find(idOrName: string): Promise<{ workflowId: string; description: WorkflowExecutionDescription }> {
    await this.ui();
    const candidates = candidateIds(idOrName);
    for (const workflowId of candidates) {
      let description: WorkflowExecutionDescription;
      try { description = await this.client.workflow.getHandle(workflowId).describe(); } catch (err) {
        if (err instanceof WorkflowNotFoundError) continue;
        throw this.translate(err, workflowId, 'describe');
      }
      if (description.type !== UPGRADE_WORKFLOW_TYPE) {
        throw imagoError('CLIENT_NOT_FOUND', `${workflowId} is a '${description.type}' workflow, not an Imago upgrade (namespace '${this.settings.namespace}')`);
      }
      this.resolved.set(idOrName, workflowId);
      return { workflowId, description };
    }
    throw imagoError('CLIENT_NOT_FOUND', `${candidates.join(' or ')} in namespace '${this.settings.namespace}'`);
  }

  private async closedResult(handle: UpgradeHandle, error: string | null): Promise<UpgradeResult> {
    const desc = await handle.describe();
    const status = await handle.query(statusQuery).catch(() => null);
    const outcome = outcomeOf(desc.status.name, status);
    return { workflowId: handle.workflowId, outcome, exitCode: EXIT_CODES[outcome], status, error };
  }

  private async update<T>(id: string, name: string, call: (h: UpgradeHandle) => Promise<T>): Promise<T> {
    const handle = await this.handle(id);
    try { return await call(handle); } catch (err) {
      if (err instanceof WorkflowNotFoundError) {
        // The id exists (resolved above) but the run is closed: say so instead of "not found".
        const desc = await handle.describe().catch(() => null);
        if (desc) throw imagoError('IMAGO_WRONG_PHASE', `${name} on ${handle.workflowId}: the upgrade has ended (${desc.status.name.toLowerCase()}); nothing was changed`, err);
      }
      throw this.translate(err, handle.workflowId, name);
    }
  }

  /** A server refusal caused by missing search attributes becomes an error that names the fix. */
  private async explainServiceError(err: unknown, op: string): Promise<Error> {
    if (!(err instanceof ServiceError)) return err as Error;
    const missing = await missingSearchAttributes(this.client.connection, this.settings.namespace).catch(() => []);
    if (missing.length === 0) return err;
    const { address, namespace } = this.settings;
    return imagoError('CLIENT_SEARCH_ATTRIBUTES_MISSING',
      `${op}: namespace '${namespace}' at ${address} has no ${missing.join(', ')}; run: imago server setup --address ${address} --namespace ${namespace}`, err);
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

  private summary(info: { workflowId: string; runId: string; status: { name: string }; startTime: Date; closeTime?: Date; typedSearchAttributes: { get: (k: never) => unknown } }): UpgradeSummary {
    const get = (k: (typeof SEARCH_KEYS)[keyof typeof SEARCH_KEYS]) => info.typedSearchAttributes.get(k as never) as string | undefined;
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
