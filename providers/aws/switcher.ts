/**
 * The provider-level switchover: the listener's default action and the
 * plan's named rules forward from Uold's target group to Unew's (and back for
 * rollback). It is called while every ingress interceptor holds, so no
 * request is served by Uold after Unew has served one.
 *
 * Only single-target `forward` actions are written. Weighted forwarding
 * (ForwardConfig with two groups) would serve Uold and Unew side by side:
 * a mixed state, and writes accepted by Uold after Unew took over would be
 * lost. See docs/aws-provider.md.
 *
 * moto's ModifyListener accepts any action without checking it, and real AWS
 * only checks it at call time: so every ARN is validated here first (exists,
 * same VPC as the load balancer, rule belongs to the listener), and the
 * result is read back after each change.
 */
import {
  DescribeListenersCommand, DescribeLoadBalancersCommand, DescribeRulesCommand, DescribeTargetGroupsCommand,
  ModifyListenerCommand, ModifyRuleCommand, type Action,
} from '@aws-sdk/client-elastic-load-balancing-v2';
import { imagoError } from '../../lib/errors';
import { errorName, withAwsRetry, type RetryOptions } from './classify';
import type { AwsClients } from './clients';

export interface Route {
  listenerArn: string;
  ruleArns: string[];
  uoldTargetGroupArn: string;
  unewTargetGroupArn?: string;
}

/** One Modify call of a prepared switch (serialisable). */
export interface ForwardChange { kind: 'listener' | 'rule'; arn: string; where: string; actions: Action[] }

/** One place that forwards traffic: the listener's default action or a rule. */
interface Forwarder { where: string; arn: string; kind: 'listener' | 'rule'; actions: Action[] }

/** The single target group a forward action sends to; throws on weighted forwarding, which Imago never creates and will not rewrite. */
export function forwardTarget(actions: Action[], where: string): string | undefined {
  const fwd = actions.find((a) => a.Type === 'forward');
  if (!fwd) return undefined;
  const groups = fwd.ForwardConfig?.TargetGroups?.map((g) => g.TargetGroupArn!) ?? [];
  const all = [...new Set([...(fwd.TargetGroupArn ? [fwd.TargetGroupArn] : []), ...groups])];
  if (all.length > 1) throw imagoError('PROVIDER_AWS_CONFLICT', `${where} forwards to ${all.length} target groups (weighted); Imago switches only single-target forwards: point it at Uold's target group alone`);
  return all[0];
}

function retarget(actions: Action[], tg: string): Action[] {
  // Keep authenticate/other actions and their order; replace only the forward.
  return actions.map((a) => a.Type === 'forward' ? { Type: 'forward', Order: a.Order, TargetGroupArn: tg } : a);
}

export class Switcher {
  constructor(private readonly c: AwsClients, private readonly retry: RetryOptions = {}) {}

  /** Problems with the route, each with its plan path; empty when the listener, rules and groups exist and belong together. */
  async inspect(route: Route, expectVpcId?: string): Promise<string[]> {
    const problems: string[] = [];
    const listener = await this.listener(route.listenerArn);
    if (!listener) return [`unew.aws.listenerArn: listener ${route.listenerArn} does not exist`];
    const lbs = await withAwsRetry('DescribeLoadBalancers', () => this.c.elb.send(new DescribeLoadBalancersCommand({ LoadBalancerArns: [listener.LoadBalancerArn!] })), this.retry);
    const vpcId = lbs.LoadBalancers?.[0]?.VpcId;
    if (expectVpcId && vpcId !== expectVpcId) problems.push(`unew.aws.listenerArn: its load balancer is in ${vpcId}, the subnets in ${expectVpcId}`);
    const rules = await this.rulesOf(route.listenerArn);
    route.ruleArns.forEach((r, i) => { if (!rules.some((x) => x.RuleArn === r)) problems.push(`unew.aws.ruleArns[${i}]: rule ${r} is not a rule of the listener`); });
    const groups: Array<[string, string | undefined]> = [['unew.aws.uoldTargetGroupArn', route.uoldTargetGroupArn], ['Unew target group', route.unewTargetGroupArn]];
    for (const [path, arn] of groups) {
      if (!arn) continue;
      const tg = await this.targetGroup(arn);
      if (!tg) problems.push(`${path}: target group ${arn} does not exist`);
      else if (tg.VpcId !== vpcId) problems.push(`${path}: target group ${arn} is in ${tg.VpcId}, the load balancer in ${vpcId}`);
    }
    if (problems.length) return problems;
    for (const f of await this.forwarders(route)) {
      try {
        const tg = forwardTarget(f.actions, f.where);
        if (tg !== route.uoldTargetGroupArn && tg !== route.unewTargetGroupArn) problems.push(`${f.where}: forwards to ${tg ?? 'no target group'}, expected Uold's ${route.uoldTargetGroupArn}`);
      } catch (err) { problems.push((err as Error).message); }
    }
    return problems;
  }

  /** The Modify calls that would point the listener's default action and each named rule at `to`; describes only, changes nothing. */
  async prepare(route: Route, to: 'unew' | 'uold'): Promise<{ problems: string[]; changes: ForwardChange[] }> {
    if (!route.unewTargetGroupArn) return { problems: ["Unew's target group is not known: provision Unew before switching"], changes: [] };
    const problems = await this.inspect(route);
    if (problems.length) return { problems, changes: [] };
    const target = to === 'unew' ? route.unewTargetGroupArn : route.uoldTargetGroupArn;
    // Rules first, default action last: rules take precedence, so the
    // catch-all moves only after every specific path has moved.
    const changes = (await this.forwarders(route)).reverse()
      .filter((f) => forwardTarget(f.actions, f.where) !== target)
      .map((f) => ({ kind: f.kind, arn: f.arn, where: f.where, actions: retarget(f.actions, target) }));
    return { problems, changes };
  }

  /** Applies prepared changes: only Modify calls. Idempotent (a change already made is made again, harmlessly). */
  async apply(changes: ForwardChange[]): Promise<void> {
    for (const f of changes) {
      if (f.kind === 'rule') await withAwsRetry(`ModifyRule ${f.arn}`, () => this.c.elb.send(new ModifyRuleCommand({ RuleArn: f.arn, Actions: f.actions })), this.retry);
      else await withAwsRetry(`ModifyListener ${f.arn}`, () => this.c.elb.send(new ModifyListenerCommand({ ListenerArn: f.arn, DefaultActions: f.actions })), this.retry);
    }
  }

  /** Points the listener's default action and each named rule at Unew's or Uold's group. Idempotent; reads the result back. */
  async switchTo(route: Route, to: 'unew' | 'uold'): Promise<void> {
    const { problems, changes } = await this.prepare(route, to);
    if (problems.length) throw imagoError('PROVIDER_AWS_INVALID', problems.join('; '));
    await this.apply(changes);
    const target = to === 'unew' ? route.unewTargetGroupArn : route.uoldTargetGroupArn;
    const wrong = (await this.forwarders(route)).filter((f) => forwardTarget(f.actions, f.where) !== target);
    if (wrong.length) throw imagoError('PROVIDER_AWS_CONFLICT', `after the switch to ${to}, ${wrong.map((f) => f.where).join(', ')} still forward elsewhere`);
  }

  /** Where the default action and the named rules forward now. */
  async state(route: Route): Promise<'uold' | 'unew' | 'partial'> {
    const targets = (await this.forwarders(route)).map((f) => forwardTarget(f.actions, f.where));
    if (targets.every((t) => t === route.uoldTargetGroupArn)) return 'uold';
    if (route.unewTargetGroupArn && targets.every((t) => t === route.unewTargetGroupArn)) return 'unew';
    return 'partial';
  }

  /** Which of the listener's default action and named rules forward to `tgArn` now (empty if the listener is gone). */
  async forwardingTo(route: Route, tgArn: string): Promise<string[]> {
    if (!(await this.listener(route.listenerArn))) return [];
    const known = new Set((await this.rulesOf(route.listenerArn)).map((r) => r.RuleArn));
    const live = { ...route, ruleArns: route.ruleArns.filter((r) => known.has(r)) };
    return (await this.forwarders(live)).filter((f) => f.actions.some((a) => a.TargetGroupArn === tgArn || a.ForwardConfig?.TargetGroups?.some((g) => g.TargetGroupArn === tgArn))).map((f) => f.where);
  }

  private async forwarders(route: Route): Promise<Forwarder[]> {
    const l = await this.listener(route.listenerArn);
    if (!l) throw imagoError('PROVIDER_AWS_INVALID', `unew.aws.listenerArn: listener ${route.listenerArn} does not exist`);
    const out: Forwarder[] = [{ where: `listener ${route.listenerArn} default action`, arn: route.listenerArn, kind: 'listener', actions: l.DefaultActions ?? [] }];
    const rules = await this.rulesOf(route.listenerArn);
    for (const arn of route.ruleArns) {
      const r = rules.find((x) => x.RuleArn === arn);
      if (r) out.push({ where: `rule ${arn}`, arn, kind: 'rule', actions: r.Actions ?? [] });
    }
    return out;
  }

  private async listener(arn: string) {
    return withAwsRetry(`DescribeListeners ${arn}`, async () => {
      try { return (await this.c.elb.send(new DescribeListenersCommand({ ListenerArns: [arn] }))).Listeners?.[0]; } catch (err) {
        if (errorName(err) === 'ListenerNotFound') return undefined;
        throw err;
      }
    }, this.retry);
  }

  private async rulesOf(listenerArn: string) {
    const res = await withAwsRetry(`DescribeRules ${listenerArn}`, () => this.c.elb.send(new DescribeRulesCommand({ ListenerArn: listenerArn })), this.retry);
    return res.Rules ?? [];
  }

  private async targetGroup(arn: string) {
    return withAwsRetry(`DescribeTargetGroups ${arn}`, async () => {
      try { return (await this.c.elb.send(new DescribeTargetGroupsCommand({ TargetGroupArns: [arn] }))).TargetGroups?.[0]; } catch (err) {
        if (errorName(err) === 'TargetGroupNotFound') return undefined;
        throw err;
      }
    }, this.retry);
  }
}
