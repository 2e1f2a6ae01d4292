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

export interface ProvisionRequest {
  upgradeId: string;
  /** The plan's `unew` section (provider-specific settings live under it). */
  unew: Record<string, unknown>;
}

export interface Provider {
  readonly name: string;
  /** Create Unew's database (empty, with the new schema applied by the caller) and its resources. */
  provisionDatabase(req: ProvisionRequest): Promise<UnewHandle>;
  /** Install and start the new version against Unew's database only (isolation). */
  startApplication(handle: UnewHandle, req: ProvisionRequest): Promise<UnewHandle>;
  /** Resolves when every front-end of Unew answers its health check; throws IMAGO_HEALTH_FAILED at the timeout, stops early when signal aborts. */
  waitHealthy(handle: UnewHandle, timeoutMs: number, healthPath?: string, signal?: AbortSignal): Promise<void>;
  /** Provider-level traffic switch (e.g. an ELBv2 listener), called while every interceptor holds. No-op for local. */
  switchTraffic(handle: UnewHandle, to: 'unew' | 'uold'): Promise<void>;
  /** Remove everything created for upgradeId. Idempotent; works from the id alone after a crash. */
  destroy(upgradeId: string, unew: Record<string, unknown>): Promise<void>;
}
