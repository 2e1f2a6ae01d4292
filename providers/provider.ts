/**
 * The provider interface: how the upgrade driver creates and destroys the
 * parallel universe Unew, and switches traffic at the provider's level.
 * `local` (providers/local) runs Unew as processes on loopback with its own
 * MariaDB instance; `aws` (providers/aws) runs it on EC2 behind an ELBv2
 * target group. The workflow sees only this interface, so it runs unchanged
 * with either.
 *
 * Every method is idempotent and keyed by upgradeId: Temporal may retry any
 * of them, and after a crash `destroy` must find what was created (by its
 * records or tags) so nothing leaks.
 */
export interface UnewDatabase {
  /** Admin URL for the data transfer (writes into Unew only). Resolved in activities; never put into workflow history. */
  adminUrlRef: string;
  /** Where Unew's database listens (host:port), for status and reports. */
  endpoint: string;
  database: string;
  /** The account Unew's application connects as (checked by the grants check), when the provider knows it. */
  appUser?: string;
  /**
   * TLS of the admin connections, as references, when the provider made the
   * certificates (local: a CA per universe); otherwise the plan's unew.tls applies.
   */
  tls?: { caRef?: string; certRef?: string; keyRef?: string; verifyIdentity?: boolean };
}

export interface UnewHandle {
  upgradeId: string;
  provider: string;
  /** Base URLs at which Unew's application answers (one per front-end). */
  appUrls: string[];
  db: UnewDatabase;
  /** Opaque, serialisable provider state (ids, ports, pids, ARNs) for later calls. */
  state: Record<string, unknown>;
}

/** Who a universe belongs to: the upgrade's workflow, for garbage collection. */
export interface UniverseOwner { namespace: string; taskQueue: string; workflowId: string }

export interface ProvisionRequest {
  upgradeId: string;
  /** The plan's `unew` section (provider-specific settings live under it). */
  unew: Record<string, unknown>;
  /** Recorded with the universe (state file, tags), so `imago gc` and the worker's sweep can find its workflow. */
  owner?: UniverseOwner;
  /** The plan file's folder: the application starts there (default: the worker's current folder). */
  planDir?: string;
}

/** One check of a provider-level switch, made before any interceptor holds (dry run and prepare). */
export interface SwitchCheck { name: string; ok: boolean; detail: string }

/**
 * A provider-level switch computed before the hold: every describe and check
 * is done here, so inside the hold only `changes` are applied (each one a
 * single provider call, e.g. an ELBv2 ModifyRule or ModifyListener).
 * Serialisable: it travels in heartbeat details.
 */
export interface PreparedSwitch {
  to: 'unew' | 'uold';
  checks: SwitchCheck[];
  /** Provider-specific, serialisable changes, applied in order. Empty: nothing to change (local, or already there). */
  changes: unknown[];
}

/** Where the provider routes live traffic now. 'none': no provider-level routing (local); 'partial': a switch stopped half-way. */
export type TrafficState = 'none' | 'uold' | 'unew' | 'partial';

/** A universe a provider finds by its own records or tags, for garbage collection. */
export interface UniverseRecord {
  upgradeId: string;
  /** What it holds (processes, folders, instances, volumes), for the operator. */
  detail: string;
  /** Marked as (possibly) serving clients by a cut-over: never garbage. */
  serving: boolean;
  owner?: UniverseOwner;
  /** True when it serves live traffic now, as the provider reads it (AWS: a listener forwards to its group): `destroy` refuses it. */
  inUse?: boolean;
}

/**
 * A disposable sandbox for shadow writes during testing: a clone of Unew's
 * database taken at a known position, and a second instance of the new
 * version bound to that clone only. Mirrored writes go there, never into
 * Unew (which must stay exactly convert(Uold)); it is discarded at the end
 * of testing. See docs/sandbox.md.
 */
export interface SandboxHandle {
  upgradeId: string;
  /** Where the sandbox's application answers: never one of Unew's appUrls. */
  appUrl: string;
  /** Where the clone's database listens (host:port), for the status. */
  dbEndpoint: string;
  /** The position of Uold's change stream the cloned data reflects (the transfer's applied position, read in the clone); '' when the clone has none. */
  position: string;
  /** When it was made; how long the clone and the application's start took, ms. */
  createdAt: number;
  cloneMs: number;
  startMs: number;
}

/** What `retireUold` did with Uold's fleet at finalize. */
export interface UoldRetirement {
  /** True when the plan keeps Uold (postSwitchover.keepUold): nothing was deregistered or terminated. */
  kept: boolean;
  /** For the status and the operator: what was deregistered, terminated or kept. */
  detail: string;
}

export interface Provider {
  readonly name: string;
  /** Create Unew's database (empty, with the new schema applied by the caller) and its resources. */
  provisionDatabase(req: ProvisionRequest): Promise<UnewHandle>;
  /** Install and start the new version against Unew's database only (isolation). */
  startApplication(handle: UnewHandle, req: ProvisionRequest): Promise<UnewHandle>;
  /**
   * Resolves when every front-end of Unew answers its health check; throws
   * IMAGO_HEALTH_FAILED at the timeout, stops early when signal aborts.
   * `timeoutMs` is the plan's unew.app.startTimeoutMs; a provider whose
   * section sets its own budget for the whole wait uses that instead (AWS:
   * unew.aws.timeouts.targetsHealthyMs, which includes the load balancer's
   * health checks).
   */
  waitHealthy(handle: UnewHandle, timeoutMs: number, healthPath?: string, signal?: AbortSignal): Promise<void>;
  /** Describes and checks what a provider-level switch to `to` would change; changes nothing. Called before any hold, and by the cut-over's dry run. */
  prepareSwitch(handle: UnewHandle, to: 'unew' | 'uold'): Promise<PreparedSwitch>;
  /**
   * Applies a prepared switch: only the provider calls that change routing,
   * so the hold stays short (no describe, no credential lookup: prepareSwitch
   * readied the clients). Idempotent, and it completes a switch that an
   * earlier attempt left half-way. It applies the changes it is given
   * without judging `prepared.checks`: before the point of no return the
   * caller must not call it when a check failed; after it, completing
   * forward is the only safe direction. Once the first change is applied,
   * Unew may serve directly (a load balancer in front): the cut-over records
   * its point of no return before calling it.
   */
  applySwitch(handle: UnewHandle, prepared: PreparedSwitch): Promise<void>;
  /**
   * Reads back, after the release, what applySwitch changed: one check per
   * change (ok when it forwards where it should). Once a switch to Unew is
   * read back complete, the provider also removes what only served the wait
   * before it (AWS: the probe rule). Empty when nothing was changed.
   */
  verifySwitch(handle: UnewHandle, prepared: PreparedSwitch): Promise<SwitchCheck[]>;
  /** Reads where traffic goes now, for the cut-over's reconcile after a crash. */
  trafficState(handle: UnewHandle): Promise<TrafficState>;
  /**
   * At finalize, after the post-switchover window: with keepUold false,
   * deregisters and terminates Uold's fleet at the provider's level (AWS:
   * the targets of Uold's target group, as CodeDeploy blue/green does);
   * with keepUold true, leaves it. Either way it removes the provider's own
   * leftovers of the switch. Refuses unless traffic is all on Unew. Local:
   * nothing to do (Uold is the user's, behind the interceptors).
   */
  retireUold(handle: UnewHandle, unew: Record<string, unknown>, opts: { keepUold: boolean }): Promise<UoldRetirement>;
  /**
   * Checks, on the worker, that it can run a universe with these settings
   * (the provider's plan section, and on AWS a region and credentials);
   * throws with the plan path. Called by the worker's plan validation,
   * before anything is created.
   */
  validateWorker(unew: Record<string, unknown>): Promise<void>;
  /**
   * Marks the universe as one that may serve clients (true: before a cut-over
   * attempt holds anyone; false: when the attempt put everyone back on Uold).
   * Garbage collection never destroys a marked universe: keeping garbage is a
   * cost, destroying a live system is a loss.
   */
  markServing(handle: UnewHandle, serving: boolean): Promise<void>;
  /**
   * Makes the sandbox of shadow writes (SandboxHandle): clones Unew's
   * database as it is now (the caller has flushed Unew to Uold's position
   * first), starts a second instance of the new version on the clone, and
   * waits for its health check. Idempotent: a sandbox that is up is
   * returned as it is. A provider that cannot make one throws
   * SANDBOX_UNSUPPORTED (aws, for now).
   */
  createSandbox(handle: UnewHandle, req: ProvisionRequest): Promise<SandboxHandle>;
  /** Stops the sandbox and removes its data; leaves Unew as it is. Idempotent; works from the id alone. `destroy` removes it too. */
  destroySandbox(upgradeId: string, unew: Record<string, unknown>): Promise<void>;
  /** Remove everything created for upgradeId (the sandbox included). Idempotent; works from the id alone after a crash. */
  destroy(upgradeId: string, unew: Record<string, unknown>): Promise<void>;
  /** Every universe this provider finds for the plan's settings (folders, tags), whatever the state of its workflow: the input of `imago gc`. */
  listUniverses(unew: Record<string, unknown>): Promise<UniverseRecord[]>;
}
