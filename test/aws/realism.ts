/**
 * The realism layer: a small HTTP proxy in front of moto_server that adds
 * documented AWS behaviours moto does not have. The provider's tests and the
 * whole AWS upgrade talk to this proxy (their `unew.aws.endpoint`), never to
 * moto directly; test fixtures that stand for the user (creating the VPC,
 * the load balancer) and for EC2's own machinery (the instance simulator)
 * talk to moto directly.
 *
 * Test code only: every behaviour here is fault injection or simulation,
 * and product code knows nothing of it. Each behaviour, with the AWS page
 * that states it:
 *
 * 1. unused: a target group that no listener or rule uses reports every
 *    target `unused` (Target.NotInUse).
 *    https://docs.aws.amazon.com/elasticloadbalancing/latest/APIReference/API_TargetHealth.html
 * 2. initial: a newly registered target (or one whose group just came into
 *    use) is `initial` (Elb.InitialHealthChecking) until it passed the
 *    healthy threshold of health checks: interval × healthy threshold.
 *    https://docs.aws.amazon.com/elasticloadbalancing/latest/application/target-group-health-checks.html
 *    After that, healthy or unhealthy as `healthOf` finds the target (the
 *    simulated instance's app), else moto's answer.
 * 3. ClientToken idempotency: RunInstances repeated with the same token and
 *    parameters returns the same reservation, for at least 24 hours after
 *    the instances terminated; other parameters → IdempotentParameterMismatch.
 *    https://docs.aws.amazon.com/ec2/latest/devguide/ec2-api-idempotency.html
 * 4. Eventual consistency: the first describe naming an instance that
 *    RunInstances just returned answers InvalidInstanceID.NotFound; the first
 *    RegisterTargets naming it answers InvalidTarget.
 *    https://docs.aws.amazon.com/ec2/latest/devguide/eventual-consistency.html
 * 5. Throttling: occasional RequestLimitExceeded (EC2, HTTP 503) and
 *    Throttling (ELB, HTTP 400), at a seeded rate, and once for each
 *    action named in `throttleFirst`.
 *    https://docs.aws.amazon.com/ec2/latest/devguide/ec2-api-throttling.html
 *    https://docs.aws.amazon.com/elasticloadbalancing/latest/APIReference/CommonErrors.html
 * 6. Protocols: ModifyListener / ModifyRule / CreateRule whose forward
 *    names a target group of another protocol family than the listener's
 *    (HTTP group on a TCP listener) is rejected: IncompatibleProtocols.
 *    https://docs.aws.amazon.com/elasticloadbalancing/latest/APIReference/API_ModifyListener.html
 * 7. OIDC client secret: DescribeRules / DescribeListeners never return an
 *    authenticate-oidc action's ClientSecret, and a Modify must then set
 *    UseExistingClientSecret (or give the secret).
 *    https://docs.aws.amazon.com/elasticloadbalancing/latest/APIReference/API_AuthenticateOidcActionConfig.html
 * 8. ResourceInUse: DeleteTargetGroup of a group a listener or rule uses
 *    answers ResourceInUse (documented); `releaseLagMs` keeps answering so
 *    for a moment after the last use ended (observed, not documented).
 *    https://docs.aws.amazon.com/elasticloadbalancing/latest/APIReference/API_DeleteTargetGroup.html
 */
import * as crypto from 'node:crypto';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { DescribeInstancesCommand, EC2Client } from '@aws-sdk/client-ec2';
import {
  DescribeListenersCommand, DescribeLoadBalancersCommand, DescribeRulesCommand, DescribeTargetGroupsCommand,
  ElasticLoadBalancingV2Client, type TargetGroup,
} from '@aws-sdk/client-elastic-load-balancing-v2';
import { seededRandom } from '../../lib/seeded-random';

export interface RealismOptions {
  /** Probability that one EC2 or ELB call is throttled (seeded). Default 0. */
  throttleRate?: number;
  /** These actions are throttled once each, at their first call (a deterministic share of the throttling). */
  throttleFirst?: string[];
  seed?: number;
  /** Multiplies the health-check timing (interval × healthy threshold), so tests wait less. Default 1. */
  timeScale?: number;
  /** Behaviour 4 on (default true). */
  eventualConsistency?: boolean;
  /** Behaviour 8: how long a group stays "in use" after its last listener or rule let go. Default 0. */
  releaseLagMs?: number;
  /** Behaviour 2: the load balancer's health check of one target once `initial` is over; undefined keeps moto's answer. */
  healthOf?: (instanceId: string, check: { path: string; matcher: string }) => Promise<boolean | undefined>;
  /** Called after each call is answered. */
  onCall?: (c: ProxiedCall) => void | Promise<void>;
  /** Called once moto has made a change and before the caller hears of it (tests inject a crash here, e.g. kill the worker mid-swap). */
  beforeReply?: (c: ProxiedCall) => void | Promise<void>;
}

export interface ProxiedCall { at: number; service: string; action: string; status: number; injected?: string }

export interface RealismStats {
  throttled: number; notFound: number; invalidTarget: number; tokenReplays: number; tokenMismatches: number;
  unused: number; initial: number; incompatible: number; secretsHidden: number; inUse: number;
}

const FAMILY: Record<string, string> = { HTTP: 'http', HTTPS: 'http', TCP: 'l4', TLS: 'l4', UDP: 'l4', TCP_UDP: 'l4', GENEVE: 'geneve' };

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

function errorBody(service: string, code: string, message: string): string {
  const id = crypto.randomUUID();
  if (service === 'ec2') return `<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error><Code>${code}</Code><Message>${esc(message)}</Message></Error></Errors><RequestID>${id}</RequestID></Response>`;
  return `<ErrorResponse xmlns="http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/"><Error><Type>Sender</Type><Code>${code}</Code><Message>${esc(message)}</Message></Error><RequestId>${id}</RequestId></ErrorResponse>`;
}

export class RealismProxy {
  readonly calls: ProxiedCall[] = [];
  stats: RealismStats = RealismProxy.zero();
  private server?: http.Server;
  private elb!: ElasticLoadBalancingV2Client;
  private ec2!: EC2Client;
  private rng: () => number;
  private tokens = new Map<string, { key: string; body: string }>();
  private throttledOnce = new Set<string>();
  private protocols = new Map<string, string>();
  private inUseUpdate: Promise<void> = Promise.resolve();
  private freshDescribe = new Set<string>();
  private freshRegister = new Set<string>();
  private registeredAt = new Map<string, number>();
  private inUseSince = new Map<string, number>();
  private releasedAt = new Map<string, number>();
  port = 0;

  constructor(private readonly motoEndpoint: string, readonly opts: RealismOptions = {}) {
    this.rng = seededRandom(opts.seed ?? 42);
  }

  static zero(): RealismStats {
    return { throttled: 0, notFound: 0, invalidTarget: 0, tokenReplays: 0, tokenMismatches: 0, unused: 0, initial: 0, incompatible: 0, secretsHidden: 0, inUse: 0 };
  }

  get endpoint(): string { return `http://127.0.0.1:${this.port}`; }

  async start(): Promise<this> {
    const direct = { endpoint: this.motoEndpoint, region: 'us-east-1', credentials: { accessKeyId: 'realism', secretAccessKey: 'realism' } };
    this.elb = new ElasticLoadBalancingV2Client(direct);
    this.ec2 = new EC2Client(direct);
    this.server = http.createServer((req, res) => { this.handle(req, res).catch((err) => { res.writeHead(500); res.end(String(err)); }); });
    await new Promise<void>((r) => this.server!.listen(0, '127.0.0.1', r));
    this.port = (this.server.address() as AddressInfo).port;
    return this;
  }

  /** Changes options without forgetting anything. */
  configure(opts: Partial<RealismOptions>): void {
    Object.assign(this.opts, opts);
  }

  /** Forgets every token, timestamp and counter (after moto's own reset). */
  reset(opts: Partial<RealismOptions> = {}): void {
    Object.assign(this.opts, opts);
    this.rng = seededRandom(this.opts.seed ?? 42);
    this.tokens.clear(); this.throttledOnce.clear(); this.protocols.clear(); this.freshDescribe.clear(); this.freshRegister.clear();
    this.registeredAt.clear(); this.inUseSince.clear(); this.releasedAt.clear();
    this.calls.length = 0;
    this.stats = RealismProxy.zero();
    delete this.opts.beforeReply; delete this.opts.onCall;
  }

  async stop(): Promise<void> {
    this.elb?.destroy();
    this.ec2?.destroy();
    if (this.server) await new Promise((r) => this.server!.close(r));
  }

  /** Calls of one action (or all) seen since the last reset. */
  count(action?: string): number {
    return this.calls.filter((c) => !action || c.action === action).length;
  }

  // --- the proxy ----------------------------------------------------------

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const body = Buffer.concat(chunks).toString('utf8');
    const service = /Credential=[^/]+\/[^/]+\/[^/]+\/([^/]+)\//.exec(String(req.headers.authorization ?? ''))?.[1] ?? 'unknown';
    const target = String(req.headers['x-amz-target'] ?? '');
    const form = target ? new URLSearchParams() : new URLSearchParams(body);
    const action = target ? target.split('.').pop()! : form.get('Action') ?? '?';
    const call: ProxiedCall = { at: Date.now(), service, action, status: 0 };
    const reply = async (status: number, text: string, injected?: string) => {
      call.status = status;
      if (injected) call.injected = injected;
      this.calls.push(call);
      await this.opts.beforeReply?.(call);
      res.writeHead(status, { 'content-type': target ? 'application/x-amz-json-1.1' : 'text/xml' });
      res.end(text);
      await this.opts.onCall?.(call);
    };
    const refuse = (status: number, code: string, message: string) => reply(status, errorBody(service, code, message), code);

    // 5. Throttling, before anything else happens.
    const first = (this.opts.throttleFirst ?? []).includes(action) && !this.throttledOnce.has(action);
    if (first) this.throttledOnce.add(action);
    if ((service === 'ec2' || service === 'elasticloadbalancing') && (first || this.rng() < (this.opts.throttleRate ?? 0))) {
      this.stats.throttled++;
      return service === 'ec2' ? refuse(503, 'RequestLimitExceeded', 'Request limit exceeded.') : refuse(400, 'Throttling', 'Rate exceeded');
    }
    if (service === 'ec2') {
      const injected = this.beforeEc2(action, form);
      if (injected) return refuse(400, injected.code, injected.message);
      if (action === 'RunInstances') {
        const token = form.get('ClientToken');
        const key = [...form.entries()].filter(([k]) => k !== 'ClientToken').sort(([a], [b]) => a.localeCompare(b)).map(([k, v]) => `${k}=${v}`).join('&');
        const known = token ? this.tokens.get(token) : undefined;
        if (known && known.key !== key) { this.stats.tokenMismatches++; return refuse(400, 'IdempotentParameterMismatch', 'The client token you have provided is associated with a resource that has been created with different parameters.'); }
        if (known) { this.stats.tokenReplays++; return reply(200, await this.withCurrentStates(known.body), 'ClientTokenReplay'); }
        const out = await this.forward(req, body);
        if (out.status === 200) {
          const ids = [...out.text.matchAll(/<instanceId>(i-[0-9a-f]+)<\/instanceId>/g)].map((m) => m[1]);
          for (const id of ids) { if (this.opts.eventualConsistency !== false) { this.freshDescribe.add(id); this.freshRegister.add(id); } }
          if (token) this.tokens.set(token, { key, body: out.text });
        }
        return reply(out.status, out.text);
      }
    }
    if (service === 'elasticloadbalancing') {
      const injected = await this.beforeElb(action, form);
      if (injected) return refuse(400, injected.code, injected.message);
    }
    const out = await this.forward(req, body);
    let text = out.text;
    if (service === 'elasticloadbalancing' && out.status === 200) text = await this.afterElb(action, form, text);
    return reply(out.status, text);
  }

  /** A replayed RunInstances answer: the same reservation, each instance with its state now (the only thing AWS lets vary). */
  private async withCurrentStates(body: string): Promise<string> {
    const ids = [...body.matchAll(/<instanceId>(i-[0-9a-f]+)<\/instanceId>/g)].map((m) => m[1]);
    const now = (await this.ec2.send(new DescribeInstancesCommand({ InstanceIds: ids }))).Reservations?.flatMap((r) => r.Instances ?? []) ?? [];
    let out = body;
    for (const i of now) {
      const at = out.indexOf(`<instanceId>${i.InstanceId}</instanceId>`);
      const start = out.indexOf('<instanceState>', at);
      const end = out.indexOf('</instanceState>', start);
      if (at < 0 || start < 0 || end < 0) continue;
      out = `${out.slice(0, start)}<instanceState><code>${i.State?.Code ?? 0}</code><name>${i.State?.Name}</name>${out.slice(end)}`;
    }
    return out;
  }

  private forward(req: http.IncomingMessage, body: string): Promise<{ status: number; text: string }> {
    return new Promise((resolve, reject) => {
      const u = new URL(this.motoEndpoint);
      const headers = { ...req.headers, host: u.host, 'content-length': String(Buffer.byteLength(body)) };
      const r = http.request({ host: u.hostname, port: u.port, method: req.method, path: req.url, headers }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 500, text: Buffer.concat(chunks).toString('utf8') }));
      });
      r.on('error', reject);
      r.end(body);
    });
  }

  private listParam(form: URLSearchParams, re: RegExp): string[] {
    return [...form.entries()].filter(([k]) => re.test(k)).map(([, v]) => v);
  }

  /** 4: the first describe naming a just-launched instance does not find it yet. */
  private beforeEc2(action: string, form: URLSearchParams): { code: string; message: string } | undefined {
    if (!/^Describe(Instances|InstanceAttribute|InstanceStatus)$/.test(action)) return undefined;
    const ids = this.listParam(form, /^InstanceId(\.\d+)?$/).filter((id) => this.freshDescribe.has(id));
    if (!ids.length) return undefined;
    for (const id of ids) this.freshDescribe.delete(id);
    this.stats.notFound++;
    return { code: 'InvalidInstanceID.NotFound', message: `The instance ID '${ids.join(', ')}' does not exist` };
  }

  private async beforeElb(action: string, form: URLSearchParams): Promise<{ code: string; message: string } | undefined> {
    if (action === 'RegisterTargets') {
      const ids = this.listParam(form, /^Targets\.member\.\d+\.Id$/);
      const fresh = ids.filter((id) => this.freshRegister.has(id));
      for (const id of fresh) this.freshRegister.delete(id);
      if (fresh.length) { this.stats.invalidTarget++; return { code: 'InvalidTarget', message: `The following targets are not in a running state and cannot be registered: '${fresh.join(', ')}'` }; }
    }
    if (action === 'ModifyListener' || action === 'ModifyRule' || action === 'CreateRule') {
      const listenerArn = action === 'ModifyRule'
        ? form.get('RuleArn')!.replace(':listener-rule/', ':listener/').replace(/\/[^/]+$/, '')
        : form.get('ListenerArn')!;
      // Protocols never change once created: cached, so the check costs moto nothing after the first look.
      const protocol = form.get('Protocol') ?? await this.protocolOf(listenerArn, async () => (await this.elb.send(new DescribeListenersCommand({ ListenerArns: [listenerArn] })).catch(() => undefined))?.Listeners?.[0]?.Protocol);
      const tgArns = [...new Set(this.listParam(form, /TargetGroupArn$/))];
      if (protocol && tgArns.length) {
        const groups = await Promise.all(tgArns.map(async (arn) => ({ arn, protocol: await this.protocolOf(arn, async () => (await this.elb.send(new DescribeTargetGroupsCommand({ TargetGroupArns: [arn] })).catch(() => undefined))?.TargetGroups?.[0]?.Protocol) })));
        const bad = groups.filter((g) => g.protocol && FAMILY[g.protocol] !== FAMILY[protocol]);
        if (bad.length) { this.stats.incompatible++; return { code: 'IncompatibleProtocols', message: `The protocol of target group ${bad.map((g) => `${g.arn.split('/')[1]} (${g.protocol})`).join(', ')} is not valid with a ${protocol} listener` }; }
      }
      // 7: an OIDC action modified without its secret must say to keep the existing one.
      for (const [k, v] of form.entries()) {
        const m = /^(.*\.)Type$/.exec(k);
        if (!m || v !== 'authenticate-oidc' || action === 'CreateRule') continue;
        const cfg = `${m[1]}AuthenticateOidcConfig.`;
        if (!form.get(`${cfg}ClientSecret`) && form.get(`${cfg}UseExistingClientSecret`) !== 'true') {
          return { code: 'ValidationError', message: 'ClientSecret is required for an authenticate-oidc action unless UseExistingClientSecret is true' };
        }
      }
    }
    if (action === 'DeleteTargetGroup') {
      await this.inUseUpdate;
      const arn = form.get('TargetGroupArn')!;
      const released = this.releasedAt.get(arn);
      if (released !== undefined && Date.now() - released < (this.opts.releaseLagMs ?? 0)) {
        this.stats.inUse++;
        return { code: 'ResourceInUse', message: `Target group '${arn}' is currently in use by a listener or a rule` };
      }
    }
    return undefined;
  }

  private async protocolOf(arn: string, look: () => Promise<string | undefined>): Promise<string | undefined> {
    if (!this.protocols.has(arn)) { const p = await look(); if (p) this.protocols.set(arn, p); return p; }
    return this.protocols.get(arn);
  }

  private async afterElb(action: string, form: URLSearchParams, text: string): Promise<string> {
    const now = Date.now();
    if (action === 'RegisterTargets') {
      const tg = form.get('TargetGroupArn')!;
      for (const id of this.listParam(form, /^Targets\.member\.\d+\.Id$/)) this.registeredAt.set(`${tg}|${id}`, now);
    }
    // After a change of routes, which groups are in use is worked out in the background (it takes
    // several calls to moto): the caller's answer does not wait for it; the next health or delete does.
    if (/^(Create|Modify|Delete)(Rule|Listener)$/.test(action)) this.inUseUpdate = this.inUseUpdate.then(() => this.recomputeInUse(now)).then(() => undefined, () => undefined);
    if (action === 'DeleteTargetGroup' || action === 'DescribeTargetHealth') await this.inUseUpdate;
    if (action === 'DescribeRules' || action === 'DescribeListeners') {
      const hidden = text.replace(/<ClientSecret>[^<]*<\/ClientSecret>/g, '');
      if (hidden !== text) this.stats.secretsHidden++;
      return hidden;
    }
    if (action === 'DescribeTargetHealth') return this.rewriteHealth(form.get('TargetGroupArn')!, text, now);
    return text;
  }

  private async groupsInUse(): Promise<Set<string>> {
    const used = new Set<string>();
    const lbs = (await this.elb.send(new DescribeLoadBalancersCommand({}))).LoadBalancers ?? [];
    for (const lb of lbs) {
      for (const l of (await this.elb.send(new DescribeListenersCommand({ LoadBalancerArn: lb.LoadBalancerArn }))).Listeners ?? []) {
        const actions = [...l.DefaultActions ?? []];
        if ((lb.Type ?? 'application') === 'application') for (const r of (await this.elb.send(new DescribeRulesCommand({ ListenerArn: l.ListenerArn }))).Rules ?? []) actions.push(...r.Actions ?? []);
        for (const a of actions) {
          if (a.TargetGroupArn) used.add(a.TargetGroupArn);
          for (const g of a.ForwardConfig?.TargetGroups ?? []) if (g.TargetGroupArn) used.add(g.TargetGroupArn);
        }
      }
    }
    return used;
  }

  private async recomputeInUse(now: number): Promise<Set<string>> {
    const used = await this.groupsInUse();
    for (const tg of used) if (!this.inUseSince.has(tg)) { this.inUseSince.set(tg, now); this.releasedAt.delete(tg); }
    // The lag counts from when the release is seen (a loaded moto may take a while to tell).
    for (const tg of [...this.inUseSince.keys()]) if (!used.has(tg)) { this.inUseSince.delete(tg); this.releasedAt.set(tg, Date.now()); }
    return used;
  }

  /** 1 and 2: the load balancer's view of its targets. */
  private async rewriteHealth(tgArn: string, text: string, now: number): Promise<string> {
    const used = await this.recomputeInUse(now);
    const group: TargetGroup | undefined = (await this.elb.send(new DescribeTargetGroupsCommand({ TargetGroupArns: [tgArn] })).catch(() => undefined))?.TargetGroups?.[0];
    const warmupMs = ((group?.HealthCheckIntervalSeconds ?? 30) * (group?.HealthyThresholdCount ?? 5)) * 1000 * (this.opts.timeScale ?? 1);
    const members = [...text.matchAll(/<member>([\s\S]*?)<\/member>/g)].map((m) => m[1]);
    const out: string[] = [];
    for (const m of members) {
      const id = /<Id>([^<]+)<\/Id>/.exec(m)?.[1] ?? '';
      let state = /<State>([^<]+)<\/State>/.exec(m)?.[1] ?? 'healthy';
      let reason = '';
      let description = '';
      if (!used.has(tgArn)) {
        this.stats.unused++;
        state = 'unused'; reason = 'Target.NotInUse'; description = 'Target group is not configured to receive traffic from the load balancer';
      } else {
        if (!this.registeredAt.has(`${tgArn}|${id}`)) this.registeredAt.set(`${tgArn}|${id}`, now);
        const since = Math.max(this.registeredAt.get(`${tgArn}|${id}`)!, this.inUseSince.get(tgArn) ?? now);
        if (now - since < warmupMs) {
          this.stats.initial++;
          state = 'initial'; reason = 'Elb.InitialHealthChecking'; description = 'Initial health checks in progress';
        } else if (this.opts.healthOf) {
          const ok = await this.opts.healthOf(id, { path: group?.HealthCheckPath ?? '/', matcher: group?.Matcher?.HttpCode ?? '200' });
          if (ok === false) { state = 'unhealthy'; reason = 'Target.FailedHealthChecks'; description = 'Health checks failed'; } else if (ok === true) state = 'healthy';
        }
      }
      const th = `<TargetHealth><State>${state}</State>${reason ? `<Reason>${reason}</Reason><Description>${esc(description)}</Description>` : ''}</TargetHealth>`;
      out.push(`<member>${m.replace(/<TargetHealth>[\s\S]*?<\/TargetHealth>/, th)}</member>`);
    }
    return text.replace(/<TargetHealthDescriptions>[\s\S]*<\/TargetHealthDescriptions>/, `<TargetHealthDescriptions>${out.join('')}</TargetHealthDescriptions>`);
  }
}
