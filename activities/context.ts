/** What activities resolve on the worker from the plan: secrets, clients, the conversion, ids. Never returned to the workflow. */
import * as crypto from 'node:crypto';
import * as path from 'node:path';
import type { UpgradePlan } from '../plan/types';
import type { UnewHandle } from '../providers/provider';
import type { ConversionModule } from '../transfer/conversion';
import { IngressControlClient } from '../interceptors/ingress';
import type { ControlClientTls } from '../interceptors/ingress/control-client';
import { withDbTls, type DbEndpoint } from '../lib/db-tls';
import { resolveSecret } from '../lib/secrets';
import { imagoError } from '../lib/errors';
import { Context } from '@temporalio/activity';

/** Uold's database URL for the replication account, with its TLS (uold.db.tls) as parameters: every connection opened from it uses it. */
export function uoldDbUrl(plan: UpgradePlan): string {
  return withDbTls(resolveSecret(plan.uold.db.urlRef, '/uold/db/urlRef'), plan.uold.db.tls);
}

/** Unew's admin URL, with its TLS: the provider's when it made the certificates (handle.db.tls), else the plan's unew.tls. */
export function unewAdminUrl(handle: UnewHandle, plan: UpgradePlan): string {
  return withDbTls(resolveSecret(handle.db.adminUrlRef, `Unew ${handle.upgradeId} admin URL`), handle.db.tls ?? plan.unew.tls);
}

/** Uold's database as the replication account reaches it, named for messages. */
export function uoldDb(plan: UpgradePlan): DbEndpoint {
  return { url: uoldDbUrl(plan), link: "Uold's database (replication account, uold.db)", tlsPath: '/uold/db/tls' };
}

/** Unew's database as the admin account reaches it, named for messages. */
export function unewAdminDb(handle: UnewHandle, plan: UpgradePlan): DbEndpoint {
  return { url: unewAdminUrl(handle, plan), link: "Unew's database (admin account)", tlsPath: handle.db.tls ? `Unew's TLS (made by the ${handle.provider} provider)` : '/unew/tls' };
}

/** The client side of an interceptor's HTTPS control API: the plan's references, resolved on the worker. */
export function controlTlsOf(ing: UpgradePlan['uold']['ingress'][number], i: number): ControlClientTls | undefined {
  const t = ing.tls;
  if (!t) return undefined;
  const at = `/uold/ingress/${i}/tls`;
  return {
    ...(t.caRef ? { ca: resolveSecret(t.caRef, `${at}/caRef`) } : {}),
    ...(t.certRef && t.keyRef ? { cert: resolveSecret(t.certRef, `${at}/certRef`), key: resolveSecret(t.keyRef, `${at}/keyRef`) } : {}),
    ...(t.serverName ? { serverName: t.serverName } : {}),
  };
}

/** The account that may write to Uold: the reverse replication's, used from the point of no return only; with Uold's TLS (uold.db.tls). */
export function uoldWriterUrl(plan: UpgradePlan): string {
  return withDbTls(resolveSecret(plan.postSwitchover.rollback?.uoldWriterUrlRef ?? '', '/postSwitchover/rollback/uoldWriterUrlRef'), plan.uold.db.tls);
}

/**
 * Control clients of the plan's interceptors. The call timeout is at most half
 * the hold: during a cut-over, an interceptor that does not answer must not
 * outlast the hold it is part of.
 */
export function ingressClients(plan: UpgradePlan): IngressControlClient[] {
  const timeoutMs = Math.min(10_000, Math.max(1_000, Math.floor(plan.switchover.holdTimeoutMs / 2)));
  return ingressEndpoints(plan).map((e) => new IngressControlClient(e.controlUrl, e.token, timeoutMs, e.tls));
}

/** The plan's interceptors with their token and TLS resolved on the worker: for control clients and the transfer's throttle. */
export function ingressEndpoints(plan: UpgradePlan): Array<{ controlUrl: string; token: string; tls?: ControlClientTls }> {
  return plan.uold.ingress.map((ing, i) => {
    const tls = controlTlsOf(ing, i);
    return { controlUrl: ing.controlUrl, token: resolveSecret(ing.tokenRef, `/uold/ingress/${i}/tokenRef`), ...(tls ? { tls } : {}) };
  });
}

export function loadConversion(plan: UpgradePlan): ConversionModule {
  const file = path.resolve(plan.unew.conversion);
  let mod: { default?: ConversionModule } & Partial<ConversionModule>;
  try { mod = require(file); } catch (err) {
    throw imagoError('TRANSFER_CONVERSION_FAILED', `/unew/conversion: cannot load ${file}: ${(err as Error).message}`);
  }
  const conv = (mod.default ?? mod) as ConversionModule;
  if (!conv || !Array.isArray(conv.tables)) throw imagoError('TRANSFER_CONVERSION_FAILED', `/unew/conversion: ${file} does not export a ConversionModule (default export with 'tables')`);
  return conv;
}

/**
 * Stable binlog-reader server ids per upgrade and role: a retried activity
 * reuses its id (MariaDB drops the older connection with that id), and two
 * readers of one upgrade never collide.
 */
export function readerServerId(upgradeId: string, role: 'transfer' | 'verify' | 'cutover' | 'reverse'): number {
  const h = crypto.createHash('sha256').update(upgradeId).digest().readUInt32BE(0);
  return 100_000 + (h % 1_000_000) * 4 + { transfer: 0, verify: 1, cutover: 2, reverse: 3 }[role];
}

/** The plan's folder: tests and the application start there. */
export function planDir(plan: UpgradePlan): string {
  return plan.planDir;
}

/**
 * Runs a long provider call with a heartbeat every few seconds, and hands it
 * the activity's cancellation as an AbortSignal. Without the heartbeat a
 * provisioning step longer than the preset's heartbeat timeout would be
 * declared lost, and a cancellation (an operator's abort) would not reach
 * the activity until it ended by itself. Outside an activity (unit tests)
 * it simply runs fn.
 */
export async function withHeartbeat<T>(what: string | (() => string), fn: (signal?: AbortSignal) => Promise<T>): Promise<T> {
  let ctx: Context | undefined;
  try { ctx = Context.current(); } catch { return fn(); }
  const detail = typeof what === 'string' ? () => what : what;
  const beat = setInterval(() => ctx!.heartbeat(detail()), 5_000);
  try {
    ctx.heartbeat(detail());
    return await fn(ctx.cancellationSignal);
  } finally {
    clearInterval(beat);
  }
}
