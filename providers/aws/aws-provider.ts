/**
 * The `aws` provider: Unew's front ends are EC2 instances behind their own
 * ELBv2 target group, Unew's database is one the user prepared (e.g. RDS,
 * named by reference in the plan), and the provider-level switch moves the
 * listener from Uold's target group to Unew's. Every method is idempotent
 * and keyed by upgradeId; handles carry ids and ARNs only, never secrets.
 */
import { imagoError } from '../../lib/errors';
import { resolveSecret } from '../../lib/secrets';
import type { Provider, ProvisionRequest, UnewHandle } from '../provider';
import type { RetryOptions } from './classify';
import { createAwsClients, destroyClients, type AwsClientOptions, type AwsClients } from './clients';
import { inspectAws } from './inspector';
import { validateAwsPlan, type AwsPlan } from './plan-schema';
import { Provisioner, type FleetInstance } from './provisioner';
import { Switcher, type ForwardChange } from './switcher';
import { CreateTagsCommand, DeleteTagsCommand } from '@aws-sdk/client-ec2';
import { withAwsRetry } from './classify';
import { TAG_SERVING } from './naming';
import { TargetGroups } from './target-group';
import { teardownUnew } from './teardown';

export interface AwsProviderDeps {
  /** Credentials (tests) and SDK attempts; default: the SDK's default credential chain. */
  client?: AwsClientOptions;
  /**
   * Base URL at which one instance's application answers, for health checks
   * and mirrored traffic. Default: http://<private IP>:<appPort> (the worker
   * must be inside the VPC). Tests map instances to loopback servers: moto's
   * addresses are invented and must never receive traffic.
   */
  appUrlFor?: (instance: FleetInstance, plan: AwsPlan) => string | Promise<string>;
  /** Answers true when `url` (an app URL + health path) is healthy. Default: GET with the plan's matcher. */
  probe?: (url: string, matcher: string) => Promise<boolean>;
  resolveSecret?: (ref: string) => Promise<string>;
  retry?: RetryOptions;
  /** Poll interval while waiting for instances and targets. */
  pollMs?: number;
}

/** Serialisable provider state kept in the handle (and so in workflow history): ids and ARNs only. */
export interface AwsState {
  region?: string; endpoint?: string; vpcId: string; instanceIds: string[]; targetGroupArn?: string;
  listenerArn: string; ruleArns: string[]; uoldTargetGroupArn: string; healthPath: string; matcher: string;
}

export interface AwsProvider extends Provider {
  /** Validates unew.aws and checks every named AWS resource, creating nothing. Also the first step of provisionDatabase. */
  preflight(req: ProvisionRequest): Promise<{ vpcId: string }>;
  /** Prepare and apply in one call (tests and tools; the cut-over prepares before its hold). */
  switchTraffic(handle: UnewHandle, to: 'unew' | 'uold'): Promise<void>;
}

export function matches(status: number, matcher: string): boolean {
  return matcher.split(',').some((m) => {
    const [lo, hi] = m.split('-').map(Number);
    return hi === undefined ? status === lo : status >= lo && status <= hi;
  });
}

async function defaultProbe(url: string, matcher: string): Promise<boolean> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(5_000) });
    await res.arrayBuffer();
    return matches(res.status, matcher);
  } catch { return false; }
}

export function createAwsProvider(deps: AwsProviderDeps = {}): AwsProvider {
  const retry = deps.retry ?? {};
  const pollMs = deps.pollMs ?? 2_000;
  const resolve = deps.resolveSecret ?? (async (ref: string) => resolveSecret(ref, 'unew.aws.database'));
  const probe = deps.probe ?? defaultProbe;
  const appUrlFor = deps.appUrlFor ?? ((i: FleetInstance, p: AwsPlan) => `http://${i.privateIp}:${p.appPort}`);

  async function withClients<T>(where: { region?: string; endpoint?: string }, fn: (c: AwsClients) => Promise<T>): Promise<T> {
    const c = createAwsClients(where, deps.client);
    try { return await fn(c); } finally { destroyClients(c); }
  }
  const stateOf = (h: UnewHandle) => h.state as unknown as AwsState;
  const routeOf = (s: AwsState) => ({ listenerArn: s.listenerArn, ruleArns: s.ruleArns, uoldTargetGroupArn: s.uoldTargetGroupArn, unewTargetGroupArn: s.targetGroupArn });

  async function preflight(req: ProvisionRequest): Promise<{ vpcId: string }> {
    const plan = validateAwsPlan(req.unew);
    // Resolve both references now, so a missing secret fails before anything is created; the values are dropped.
    await resolve(plan.database.adminUrlRef);
    await resolve(plan.database.appUrlRef);
    return withClients(plan, (c) => inspectAws(c, plan, retry));
  }

  return {
    name: 'aws',
    preflight,

    async provisionDatabase(req) {
      const plan = validateAwsPlan(req.unew);
      const { vpcId } = await preflight(req);
      const state: AwsState = {
        ...(plan.region ? { region: plan.region } : {}), ...(plan.endpoint ? { endpoint: plan.endpoint } : {}),
        vpcId, instanceIds: [], listenerArn: plan.listenerArn, ruleArns: [...plan.ruleArns],
        uoldTargetGroupArn: plan.uoldTargetGroupArn, healthPath: plan.healthCheck.path, matcher: plan.healthCheck.matcher,
      };
      // Only the user name is kept (for the grants check); the URL's password is dropped here.
      const appUser = decodeURIComponent(new URL(await resolve(plan.database.appUrlRef)).username) || undefined;
      return {
        upgradeId: req.upgradeId, provider: 'aws', appUrls: [],
        // The user prepared this database; Imago only writes into it through the data transfer.
        db: { adminUrlRef: plan.database.adminUrlRef, endpoint: plan.database.endpoint, database: plan.database.database, ...(appUser ? { appUser } : {}) },
        state: { ...state },
      };
    },

    async startApplication(handle, req) {
      const plan = validateAwsPlan(req.unew);
      const dbUrl = await resolve(plan.database.appUrlRef);
      return withClients(plan, async (c) => {
        const fleet = await new Provisioner(c, retry, pollMs).provision(handle.upgradeId, plan, dbUrl);
        const tgs = new TargetGroups(c, retry);
        const tgArn = await tgs.ensure(handle.upgradeId, plan, stateOf(handle).vpcId);
        await tgs.register(tgArn, fleet.map((i) => i.instanceId));
        const appUrls = await Promise.all(fleet.map((i) => appUrlFor(i, plan)));
        const state: AwsState = { ...stateOf(handle), instanceIds: fleet.map((i) => i.instanceId), targetGroupArn: tgArn };
        return { ...handle, appUrls, state: { ...state } };
      });
    },

    async waitHealthy(handle, timeoutMs, _healthPath, signal) {
      const s = stateOf(handle);
      if (!s.targetGroupArn) throw imagoError('PROVIDER_AWS_CONFLICT', 'waitHealthy before startApplication: no target group in the handle');
      await withClients(s, async (c) => {
        const tgs = new TargetGroups(c, retry);
        const deadline = Date.now() + timeoutMs;
        for (;;) {
          signal?.throwIfAborted();
          const health = await tgs.health(s.targetGroupArn!);
          const badTargets = s.instanceIds.filter((id) => health.get(id) !== 'healthy').map((id) => `${id}=${health.get(id) ?? 'unregistered'}`);
          const urls = handle.appUrls.map((u) => new URL(s.healthPath, u).toString());
          const answers = await Promise.all(urls.map((u) => probe(u, s.matcher)));
          const badUrls = urls.filter((_, i) => !answers[i]);
          if (!badTargets.length && !badUrls.length) return;
          if (Date.now() >= deadline) {
            throw imagoError('IMAGO_HEALTH_FAILED', `after ${timeoutMs} ms: target group ${s.targetGroupArn} reports ${badTargets.join(', ') || 'all healthy'}; not answering ${s.matcher} at ${badUrls.join(', ') || '(none)'}`);
          }
          await new Promise((r) => setTimeout(r, pollMs));
        }
      });
    },

    async prepareSwitch(handle, to) {
      const s = stateOf(handle);
      const { problems, changes } = await withClients(s, (c) => new Switcher(c, retry).prepare(routeOf(s), to));
      return { to, checks: problems.length ? problems.map((p) => ({ name: 'route', ok: false, detail: p })) : [{ name: 'route', ok: true, detail: `${changes.length} change(s) to point at ${to}` }], changes };
    },

    async applySwitch(handle, prepared) {
      const s = stateOf(handle);
      const bad = prepared.checks.filter((c) => !c.ok);
      if (bad.length) throw imagoError('PROVIDER_AWS_INVALID', bad.map((c) => c.detail).join('; '));
      await withClients(s, (c) => new Switcher(c, retry).apply(prepared.changes as ForwardChange[]));
    },

    async trafficState(handle) {
      const s = stateOf(handle);
      return withClients(s, (c) => new Switcher(c, retry).state(routeOf(s)));
    },

    async markServing(handle, serving) {
      // A tag on Unew's instances: `imago gc` never destroys a universe that carries it.
      const s = stateOf(handle);
      if (!s.instanceIds.length) return;
      await withClients(s, async (c) => {
        if (serving) await withAwsRetry('CreateTags', () => c.ec2.send(new CreateTagsCommand({ Resources: s.instanceIds, Tags: [{ Key: TAG_SERVING, Value: 'true' }] })), retry);
        else await withAwsRetry('DeleteTags', () => c.ec2.send(new DeleteTagsCommand({ Resources: s.instanceIds, Tags: [{ Key: TAG_SERVING }] })), retry);
      });
    },

    async listUniverses() {
      // Listing by tag is not built yet for AWS: `imago gc` reports that it cannot list this provider.
      throw imagoError('PROVIDER_AWS_UNEXPECTED', 'listing universes by tag is not available for the aws provider yet');
    },

    /** Prepare and apply in one call (tests and tools; the cut-over prepares before its hold). */
    async switchTraffic(handle: UnewHandle, to: 'unew' | 'uold') {
      const s = stateOf(handle);
      await withClients(s, (c) => new Switcher(c, retry).switchTo(routeOf(s), to));
    },

    async destroy(upgradeId, unew) {
      const plan = validateAwsPlan(unew);
      await withClients(plan, (c) => teardownUnew(c, upgradeId, plan, retry));
    },
  };
}
