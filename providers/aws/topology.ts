/**
 * The routes of the load balancer(s) in front of Uold, and the decisions
 * made on them: which listener default actions and rules forward to Uold's
 * (or Unew's) target group, which of them Imago can switch, and what each
 * Modify call must carry.
 *
 * Every forwarder that points at Uold's group is covered, whether the plan
 * names it or not: other listeners (80 and 443), rules of any listener,
 * rules with an authenticate-oidc / authenticate-cognito action (kept, in
 * order, before the forward). Refused, with the reason, before anything is
 * created: weighted forwards that involve Uold's or Unew's group (they would
 * serve both versions side by side: a mixed state) and listeners of a
 * Network or Gateway Load Balancer (no rules, so no probe rule, and their
 * TCP/UDP listeners cannot take an HTTP group).
 *
 * The pure functions are unit-tested; `describeForwarders` is the only I/O.
 */
import {
  DescribeListenersCommand, DescribeLoadBalancersCommand, DescribeRulesCommand, type Action, type Listener, type Rule,
} from '@aws-sdk/client-elastic-load-balancing-v2';
import { call, lookup } from './classify';
import type { AwsClients } from './clients';
import { PROBE_HEADER } from './naming';

export interface Forwarder {
  kind: 'listener' | 'rule';
  /** The listener's ARN (kind listener) or the rule's. */
  arn: string;
  listenerArn: string;
  loadBalancerArn: string;
  /** application | network | gateway */
  loadBalancerType: string;
  /** The listener's protocol and port. */
  protocol: string;
  port?: number;
  /** For people: "listener HTTP:80 default action", "rule 10 of listener HTTP:80". */
  where: string;
  actions: Action[];
  /** Imago's own never-matching probe rule (it forwards to Unew's group before the swap). */
  probe: boolean;
}

/** One Modify call of a prepared switch (serialisable, no secret: an OIDC client secret is never read back). */
export interface ForwardChange { kind: 'listener' | 'rule'; arn: string; listenerArn: string; where: string; actions: Action[] }

export type Side = 'uold' | 'unew';

/** Every target group a forward action can send to. */
export function forwardTargets(actions: Action[]): string[] {
  const out = new Set<string>();
  for (const a of actions) {
    if (a.Type !== 'forward') continue;
    if (a.TargetGroupArn) out.add(a.TargetGroupArn);
    for (const g of a.ForwardConfig?.TargetGroups ?? []) if (g.TargetGroupArn) out.add(g.TargetGroupArn);
  }
  return [...out];
}

export function isProbeRule(rule: Pick<Rule, 'Conditions'>): boolean {
  return (rule.Conditions ?? []).some((c) => c.Field === 'http-header' && c.HttpHeaderConfig?.HttpHeaderName?.toLowerCase() === PROBE_HEADER.toLowerCase());
}

/** Where a forwarder sends traffic, relative to Uold's and Unew's groups, and why Imago would refuse to switch it. */
export function classifyForwarder(f: Forwarder, uold: string, unew: string | undefined): { points: Side | 'other' | 'none'; problem?: string } {
  const tgs = forwardTargets(f.actions);
  const ours = tgs.filter((t) => t === uold || (unew !== undefined && t === unew));
  if (!tgs.length) return { points: 'none' };
  if (!ours.length) return { points: 'other' };
  if (tgs.length > 1) {
    return { points: 'other', problem: `${f.where}: forwards to ${tgs.length} target groups (weighted) including ${ours.includes(uold) ? "Uold's" : "Unew's"}: both versions would serve side by side; point it at Uold's target group alone` };
  }
  if (f.loadBalancerType !== 'application') {
    return { points: 'other', problem: `${f.where}: a ${f.loadBalancerType} load balancer's ${f.protocol} listener forwards to Uold's group: Imago switches Application Load Balancers only (no rules to run Unew's health checks before the swap, and a TCP/UDP listener takes no HTTP group); put an Application Load Balancer in front of Uold's group` };
  }
  return { points: ours[0] === uold ? 'uold' : 'unew' };
}

/** The same actions with the forward sent to `tg`; every other action and the order kept. */
export function retarget(actions: Action[], tg: string): Action[] {
  return actions.map((a): Action => {
    if (a.Type === 'forward') {
      const out: Action = { Type: 'forward', ...(a.Order !== undefined ? { Order: a.Order } : {}) };
      if (a.TargetGroupArn || !a.ForwardConfig) out.TargetGroupArn = tg;
      if (a.ForwardConfig) {
        const weight = a.ForwardConfig.TargetGroups?.[0]?.Weight;
        out.ForwardConfig = { ...a.ForwardConfig, TargetGroups: [{ TargetGroupArn: tg, ...(weight !== undefined ? { Weight: weight } : {}) }] };
      }
      return out;
    }
    if (a.Type === 'authenticate-oidc' && a.AuthenticateOidcConfig) {
      // AWS never returns the client secret; a Modify keeps the existing one when told so.
      const { ClientSecret: _secret, ...cfg } = a.AuthenticateOidcConfig;
      return { ...a, AuthenticateOidcConfig: { ...cfg, UseExistingClientSecret: true } };
    }
    return a;
  });
}

/**
 * The Modify calls that point every forwarder now on the other side at
 * `to`'s group, and the problems that forbid the switch. Rules before their
 * listener's default action: the catch-all moves last.
 */
export function planChanges(forwarders: Forwarder[], uold: string, unew: string, to: Side): { changes: ForwardChange[]; problems: string[]; covered: number } {
  const target = to === 'unew' ? unew : uold;
  const problems: string[] = [];
  const changes: ForwardChange[] = [];
  let covered = 0;
  const ordered = [...forwarders.filter((f) => f.kind === 'rule'), ...forwarders.filter((f) => f.kind === 'listener')];
  for (const f of ordered) {
    if (f.probe) continue;
    const c = classifyForwarder(f, uold, unew);
    if (c.problem) { problems.push(c.problem); continue; }
    if (c.points !== 'uold' && c.points !== 'unew') continue;
    covered++;
    if (c.points !== to) changes.push({ kind: f.kind, arn: f.arn, listenerArn: f.listenerArn, where: f.where, actions: retarget(f.actions, target) });
  }
  if (!covered && !problems.length) problems.push(`no listener or rule forwards to Uold's target group ${uold} or to Unew's ${unew}: the routes were changed outside Imago`);
  return { changes, problems, covered };
}

/** Where live traffic goes: every covered forwarder on one side, or a switch stopped half-way; undefined when none is covered. */
export function trafficOf(forwarders: Forwarder[], uold: string, unew: string | undefined): 'uold' | 'unew' | 'partial' | undefined {
  const sides = new Set<string>();
  for (const f of forwarders) {
    if (f.probe) continue;
    const c = classifyForwarder(f, uold, unew);
    if (c.points === 'uold' || c.points === 'unew') sides.add(c.points);
    else if (c.problem && forwardTargets(f.actions).some((t) => t === uold || t === unew)) sides.add('partial');
  }
  if (!sides.size) return undefined;
  return sides.size === 1 ? [...sides][0] as 'uold' | 'unew' | 'partial' : 'partial';
}

function describeListener(l: Listener): string {
  return `listener ${l.Protocol}:${l.Port} (${l.ListenerArn})`;
}

function describeRule(r: Rule, l: Listener): string {
  const cond = (r.Conditions ?? []).map((c) => c.Values?.join('|') ?? c.PathPatternConfig?.Values?.join('|') ?? c.HostHeaderConfig?.Values?.join('|') ?? c.Field).join(' & ');
  return `rule ${r.Priority}${cond ? ` [${cond}]` : ''} (${r.RuleArn}) of listener ${l.Protocol}:${l.Port}`;
}

/** Every listener default action and rule of the given load balancers: the describes of a prepare or a preflight. */
export async function describeForwarders(c: AwsClients, loadBalancerArns: string[]): Promise<Forwarder[]> {
  if (!loadBalancerArns.length) return [];
  const out: Forwarder[] = [];
  for (const lbArn of [...new Set(loadBalancerArns)]) {
    // A load balancer deleted since the plan was checked has no routes left.
    const lb = (await lookup(`DescribeLoadBalancers ${lbArn}`, ['LoadBalancerNotFound'], () => c.elb.send(new DescribeLoadBalancersCommand({ LoadBalancerArns: [lbArn] }))))?.LoadBalancers?.[0];
    if (!lb) continue;
    const type = lb.Type ?? 'application';
    const listeners: Listener[] = [];
    let Marker: string | undefined;
    do {
      const res = await call(`DescribeListeners ${lb.LoadBalancerArn}`, () => c.elb.send(new DescribeListenersCommand({ LoadBalancerArn: lb.LoadBalancerArn, Marker })));
      listeners.push(...res.Listeners ?? []);
      Marker = res.NextMarker;
    } while (Marker);
    for (const l of listeners) {
      const base = { listenerArn: l.ListenerArn!, loadBalancerArn: lb.LoadBalancerArn!, loadBalancerType: type, protocol: l.Protocol ?? '?', port: l.Port };
      out.push({ ...base, kind: 'listener', arn: l.ListenerArn!, where: `${describeListener(l)} default action`, actions: l.DefaultActions ?? [], probe: false });
      if (type !== 'application') continue;
      let RuleMarker: string | undefined;
      do {
        const res = await call(`DescribeRules ${l.ListenerArn}`, () => c.elb.send(new DescribeRulesCommand({ ListenerArn: l.ListenerArn, Marker: RuleMarker })));
        for (const r of res.Rules ?? []) {
          if (r.IsDefault) continue;
          out.push({ ...base, kind: 'rule', arn: r.RuleArn!, where: describeRule(r, l), actions: r.Actions ?? [], probe: isProbeRule(r) });
        }
        RuleMarker = res.NextMarker;
      } while (RuleMarker);
    }
  }
  return out;
}
