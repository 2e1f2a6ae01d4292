/**
 * The `aws` provider: Unew's front ends are EC2 instances behind their own
 * ELBv2 target group, Unew's database is one the user prepared (e.g. RDS,
 * named by reference in the plan), and the provider-level switch moves every
 * listener and rule of the load balancer from Uold's target group to Unew's.
 * Every method is idempotent and keyed by upgradeId; handles carry ids and
 * ARNs only, never secrets. Topology, IAM policy and what is retried:
 * docs/aws-provider.md.
 *
 * Registered on every worker by default; region and credentials come from
 * the plan's `unew.aws.region` and the worker's SDK configuration.
 */
import * as crypto from 'node:crypto';
import { imagoError } from '../../lib/errors';
import { resolveSecret } from '../../lib/secrets';
import type { Provider, ProvisionRequest, SwitchCheck, TrafficState, UnewHandle, UniverseOwner, UniverseRecord, UoldRetirement } from '../provider';
import { CreateTagsCommand, DeleteTagsCommand } from '@aws-sdk/client-ec2';
import { call, type ConsistencyOptions } from './classify';
import { ClientPool, type AwsClients, type Where } from './clients';
import { inspectAws, type PreflightResult } from './inspector';
import { listUniverses } from './inventory';
import { validateAwsPlan, type AwsPlan } from './plan-schema';
import { TAG_SERVING } from './naming';
import { ProbeRules } from './probe-rule';
import { appUrlOf, Provisioner, type FleetInstance } from './provisioner';
import { retireUold } from './retire';
import { Switcher, type Route } from './switcher';
import { TargetGroups } from './target-group';
import { loadBalancersOf, teardownUnew } from './teardown';
import { describeForwarders, type ForwardChange } from './topology';
import { bootScript } from './user-data';

export interface AwsProviderDeps {
  /** Poll interval while waiting for instances and targets (default 2 s). */
  pollMs?: number;
  /** Bounds of the eventual-consistency waits (tests shorten the poll). */
  consistency?: Partial<ConsistencyOptions>;
}

/** Serialisable provider state kept in the handle (and so in workflow history): ids and ARNs only. */
export interface AwsState {
  region?: string; endpoint?: string; vpcId: string;
  loadBalancerArns: string[]; probeListenerArn: string; protocol: string;
  uoldTargetGroupArn: string; targetGroupArn?: string; instanceIds: string[];
  /** Drawn once per provisioning: part of every RunInstances ClientToken (naming.ts). */
  launchNonce: string;
  /** The upgrade's workflow, tagged on everything created (for `imago gc`). */
  owner?: UniverseOwner;
  healthPath: string; matcher: string; appPort: number; targetsHealthyMs: number;
}

export interface AwsProvider extends Provider {
  /** Validates unew.aws and checks every named AWS resource and the topology, creating nothing. Also the first step of provisionDatabase. */
  preflight(req: ProvisionRequest): Promise<PreflightResult>;
  /** Prepare, apply and read back in one call (tools and tests; the cut-over prepares before its hold). */
  switchTraffic(handle: UnewHandle, to: 'unew' | 'uold'): Promise<SwitchCheck[]>;
  /** Stops the pooled SDK clients (worker shutdown, tests). */
  close(): void;
}

export function matches(status: number, matcher: string): boolean {
  return matcher.split(',').some((m) => {
    const [lo, hi] = m.split('-').map(Number);
    return hi === undefined ? status === lo : status >= lo && status <= hi;
  });
}

async function probe(url: string, matcher: string): Promise<string | undefined> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(5_000) });
    await res.arrayBuffer();
    return matches(res.status, matcher) ? undefined : `${url} answered ${res.status}`;
  } catch (err) { return `${url}: ${(err as Error).message}`; }
}

const sleep = (ms: number, signal?: AbortSignal) => new Promise<void>((resolve) => {
  const t = setTimeout(resolve, ms);
  signal?.addEventListener('abort', () => { clearTimeout(t); resolve(); }, { once: true });
});

export function createAwsProvider(deps: AwsProviderDeps = {}): AwsProvider {
  const pollMs = deps.pollMs ?? 2_000;
  const consistency = deps.consistency ?? {};
  const pool = new ClientPool();
  const stateOf = (h: UnewHandle) => h.state as unknown as AwsState;
  const whereOf = (x: { region?: string; endpoint?: string }): Where => ({ ...(x.region ? { region: x.region } : {}), ...(x.endpoint ? { endpoint: x.endpoint } : {}) });

  /** The route as of now: the load balancers recorded at provisioning plus any that took up Uold's or Unew's group since. */
  async function routeOf(c: AwsClients, s: AwsState): Promise<Route> {
    if (!s.targetGroupArn) throw imagoError('PROVIDER_AWS_CONFLICT', "Unew's target group is not known: provision Unew (startApplication) before switching");
    const now = await loadBalancersOf(c, s.uoldTargetGroupArn, s.targetGroupArn);
    return { loadBalancerArns: [...new Set([...s.loadBalancerArns, ...now])], uoldTargetGroupArn: s.uoldTargetGroupArn, unewTargetGroupArn: s.targetGroupArn };
  }

  async function preflight(req: ProvisionRequest): Promise<PreflightResult> {
    const plan = validateAwsPlan(req.unew);
    // The worker's own secret must resolve now, so a missing one fails before anything is created; the value is dropped.
    resolveSecret(plan.database.adminUrlRef, 'unew.aws.database.adminUrlRef');
    const c = await pool.warm(whereOf(plan));
    return inspectAws(c, plan);
  }

  /** Every instance's app URL from the plan's template; waits (bounded) for variables not there yet, e.g. a tag set at boot. */
  async function appUrls(p: Provisioner, fleet: FleetInstance[], plan: AwsPlan, deadline: number): Promise<string[]> {
    for (let current = fleet; ;) {
      const resolved = current.map((i) => ({ i, ...appUrlOf(plan.appUrl, i, plan.appPort) }));
      const missing = resolved.filter((r) => !r.url);
      if (!missing.length) return resolved.map((r) => r.url!);
      if (Date.now() >= deadline) {
        throw imagoError('PROVIDER_AWS_TIMEOUT', `unew.aws.appUrl ${plan.appUrl}: ${missing.map((m) => `${m.i.instanceId} has no ${m.missing.join(', ')}`).join('; ')} within unew.aws.timeouts.instancesRunningMs`);
      }
      await sleep(pollMs);
      current = (await p.byIds(fleet.map((i) => i.instanceId))) ?? current;
    }
  }

  const provider: AwsProvider = {
    name: 'aws',
    preflight,

    async validateWorker(unew) {
      const plan = validateAwsPlan(unew);
      await pool.warm(whereOf(plan));
    },

    async provisionDatabase(req) {
      const plan = validateAwsPlan(req.unew);
      const pre = await preflight(req);
      const state: AwsState = {
        ...whereOf(plan), vpcId: pre.vpcId, loadBalancerArns: pre.loadBalancerArns, probeListenerArn: pre.probeListenerArn, protocol: pre.protocol,
        uoldTargetGroupArn: plan.uoldTargetGroupArn, instanceIds: [], launchNonce: crypto.randomBytes(8).toString('hex'), ...(req.owner ? { owner: req.owner } : {}),
        healthPath: plan.healthCheck.path, matcher: plan.healthCheck.matcher, appPort: plan.appPort, targetsHealthyMs: plan.timeouts.targetsHealthyMs,
      };
      return {
        upgradeId: req.upgradeId, provider: 'aws', appUrls: [],
        // The user prepared this database; Imago only writes into it through the data transfer.
        db: { adminUrlRef: plan.database.adminUrlRef, endpoint: plan.database.endpoint, database: plan.database.database, ...(plan.database.appUser ? { appUser: plan.database.appUser } : {}) },
        state: { ...state },
      };
    },

    async startApplication(handle, req) {
      const plan = validateAwsPlan(req.unew);
      if (!plan.app) throw imagoError('PROVIDER_AWS_INVALID', 'unew.app.command: is required to start the new version');
      const s = stateOf(handle);
      const c = await pool.warm(whereOf(plan));
      const deadline = Date.now() + plan.timeouts.instancesRunningMs;
      const userData = bootScript({
        upgradeId: handle.upgradeId, region: c.region, workDir: plan.workDir, command: plan.app.command, env: plan.app.env,
        secretEnv: plan.secretEnv, ...(plan.bootScript ? { bootScript: plan.bootScript } : {}),
      });
      const provisioner = new Provisioner(c, pollMs, consistency);
      const fleet = await provisioner.provision(handle.upgradeId, s.launchNonce, plan, userData, s.owner);
      const tgs = new TargetGroups(c, consistency);
      const tgArn = await tgs.ensure(handle.upgradeId, plan, s.vpcId, s.protocol, s.owner);
      await tgs.register(tgArn, fleet.map((i) => i.instanceId));
      // Unew's group in use by a rule no client matches: the load balancer health-checks it from now on.
      await new ProbeRules(c).ensure(handle.upgradeId, s.probeListenerArn, tgArn, s.owner);
      const urls = await appUrls(provisioner, fleet, plan, deadline);
      const state: AwsState = { ...s, instanceIds: fleet.map((i) => i.instanceId), targetGroupArn: tgArn };
      return { ...handle, appUrls: urls, state: { ...state } };
    },

    async waitHealthy(handle, _startTimeoutMs, _healthPath, signal) {
      const s = stateOf(handle);
      if (!s.targetGroupArn) throw imagoError('PROVIDER_AWS_CONFLICT', 'waitHealthy before startApplication: no target group in the handle');
      const c = pool.get(whereOf(s));
      const tgs = new TargetGroups(c);
      const deadline = Date.now() + s.targetsHealthyMs;
      for (;;) {
        signal?.throwIfAborted();
        const health = await tgs.health(s.targetGroupArn);
        const badTargets = s.instanceIds.filter((id) => health.get(id)?.state !== 'healthy').map((id) => {
          const h = health.get(id);
          return h ? `${id}=${h.state}${h.reason ? ` (${h.reason}${h.description ? `: ${h.description}` : ''})` : ''}` : `${id}=not registered`;
        });
        const answers = await Promise.all(handle.appUrls.map((u) => probe(new URL(s.healthPath, u).toString(), s.matcher)));
        const badUrls = answers.filter((a): a is string => !!a);
        if (!badTargets.length && !badUrls.length) return;
        if (Date.now() >= deadline) {
          const unused = badTargets.some((b) => b.includes('unused')) ? " ('unused': no listener or rule uses Unew's group, or the instance's zone is not enabled on the load balancer)" : '';
          throw imagoError('IMAGO_HEALTH_FAILED', `after ${s.targetsHealthyMs} ms (unew.aws.timeouts.targetsHealthyMs): the load balancer reports ${badTargets.join(', ') || 'every target healthy'}${unused}; from the worker: ${badUrls.join(', ') || `every app URL answers ${s.matcher}`}`);
        }
        await sleep(pollMs, signal);
      }
    },

    async prepareSwitch(handle, to) {
      const s = stateOf(handle);
      let c: AwsClients;
      try { c = await pool.warm(whereOf(s)); } catch (err) {
        return { to, checks: [{ name: 'credentials', ok: false, detail: (err as Error).message }], changes: [] };
      }
      const prepared = await new Switcher(c).prepare(await routeOf(c, s), to);
      return { ...prepared, checks: [{ name: 'credentials', ok: true, detail: `region ${c.region}; credentials resolved before the hold` }, ...prepared.checks] };
    },

    async applySwitch(handle, prepared) {
      // Inside the hold: the pooled client (credentials resolved by prepareSwitch) and only the Modify calls.
      await new Switcher(pool.get(whereOf(stateOf(handle)))).apply(prepared.changes as ForwardChange[]);
    },

    async verifySwitch(handle, prepared) {
      const s = stateOf(handle);
      const c = pool.get(whereOf(s));
      const checks = await new Switcher(c).readBack(prepared);
      if (prepared.to === 'unew' && checks.every((x) => x.ok) && (await provider.trafficState(handle)) === 'unew') {
        // The swap is complete: the listener itself now uses Unew's group, the probe rule's job is done.
        const listeners = [...new Set((await describeForwarders(c, (await routeOf(c, s)).loadBalancerArns)).map((f) => f.listenerArn))];
        const removed = await new ProbeRules(c).remove(listeners, handle.upgradeId);
        checks.push({ name: 'probe-rule', ok: true, detail: removed.length ? `removed the probe rule ${removed.join(', ')}` : 'no probe rule left' });
      }
      return checks;
    },

    async trafficState(handle): Promise<TrafficState> {
      const s = stateOf(handle);
      const c = pool.get(whereOf(s));
      const state = await new Switcher(c).state(await routeOf(c, s));
      if (!state) throw imagoError('PROVIDER_AWS_CONFLICT', `no listener or rule forwards to Uold's group ${s.uoldTargetGroupArn} or Unew's ${s.targetGroupArn}: the routes were changed outside Imago`);
      return state;
    },

    async switchTraffic(handle, to) {
      const prepared = await provider.prepareSwitch(handle, to);
      const bad = prepared.checks.filter((x) => !x.ok);
      if (bad.length) throw imagoError('PROVIDER_AWS_INVALID', bad.map((x) => `${x.name}: ${x.detail}`).join('; '));
      await provider.applySwitch(handle, prepared);
      const back = await provider.verifySwitch(handle, prepared);
      const wrong = back.filter((x) => !x.ok);
      if (wrong.length) throw imagoError('PROVIDER_AWS_CONFLICT', wrong.map((x) => x.detail).join('; '));
      return back;
    },

    async markServing(handle, serving) {
      // A tag on Unew's instances: `imago gc` never destroys a universe that carries it. Called before
      // any hold (never inside it): its calls are not the swap's.
      const s = stateOf(handle);
      if (!s.instanceIds.length) return;
      const c = await pool.warm(whereOf(s));
      if (serving) await call('CreateTags (serving)', () => c.ec2.send(new CreateTagsCommand({ Resources: s.instanceIds, Tags: [{ Key: TAG_SERVING, Value: 'true' }] })));
      else await call('DeleteTags (serving)', () => c.ec2.send(new DeleteTagsCommand({ Resources: s.instanceIds, Tags: [{ Key: TAG_SERVING }] })));
    },

    async retireUold(handle, unew, opts): Promise<UoldRetirement> {
      const plan = validateAwsPlan(unew);
      const s = stateOf(handle);
      const c = await pool.warm(whereOf(plan));
      const r = await retireUold(c, handle.upgradeId, await routeOf(c, s), s.instanceIds, opts.keepUold);
      return { kept: r.kept, detail: r.detail };
    },

    // No sandbox on AWS yet (docs/sandbox.md): its equivalent — an instance
    // of the new version on a snapshot of Unew's database — is not built.
    async createSandbox() {
      throw imagoError('SANDBOX_UNSUPPORTED', "the aws provider has no sandbox for shadow writes yet: set sandbox.enabled to 'auto' or false in the plan (reads are still mirrored to Unew and compared)");
    },

    async destroySandbox() { /* nothing was ever made */ },

    async destroy(upgradeId, unew) {
      const plan = validateAwsPlan(unew);
      await teardownUnew(await pool.warm(whereOf(plan)), upgradeId, plan, { pollMs });
    },

    async listUniverses(unew): Promise<UniverseRecord[]> {
      const plan = validateAwsPlan(unew);
      return listUniverses(await pool.warm(whereOf(plan)), plan.uoldTargetGroupArn);
    },

    close() { pool.destroy(); },
  };
  return provider;
}
