/**
 * The provider-level switchover: every listener default action and rule
 * that forwards to Uold's target group is pointed at Unew's.
 *
 * Split in three so the clients' pause stays short:
 *   - prepare (before anyone is held): every describe and check; the result
 *     is the list of Modify calls, serialisable (it travels in heartbeat
 *     details), with no secret in it;
 *   - apply (inside the hold): only those Modify calls. No describe, no
 *     credential lookup (the pooled client's credentials were resolved by
 *     prepare). Listeners are modified in parallel, each listener's rules
 *     before its default action. Idempotent: a call already made is made
 *     again harmlessly, so a retry completes a switch stopped half-way;
 *   - readBack (after the release): describes what apply changed and says
 *     whether each one forwards where it should.
 *
 * With a load balancer in front, Unew serves directly from the first Modify
 * call on: the cut-over records its point of no return before apply, and
 * never switches back afterwards (forward only).
 */
import { DescribeListenersCommand, DescribeRulesCommand, ModifyListenerCommand, ModifyRuleCommand } from '@aws-sdk/client-elastic-load-balancing-v2';
import type { PreparedSwitch, SwitchCheck } from '../provider';
import { classifyAwsError, lookup } from './classify';
import type { AwsClients } from './clients';
import { TargetGroups } from './target-group';
import { describeForwarders, forwardTargets, planChanges, trafficOf, type ForwardChange, type Forwarder, type Side } from './topology';

export interface Route {
  loadBalancerArns: string[];
  uoldTargetGroupArn: string;
  unewTargetGroupArn: string;
}

/**
 * Pauses between tries of one Modify call inside the hold, when AWS throttles
 * or fails transiently: short and few (under a second in all), instead of
 * the SDK's backoff (a throttled call waits 0.5 s and more there, and its
 * adaptive rate limiter then slows the other calls too), because every
 * client is waiting. Past them the error goes up and the cut-over, past its
 * point of no return, completes forward.
 */
export const IN_HOLD_RETRY_MS = [20, 40, 80, 160, 320];

export async function modifyNow<T>(what: string, send: () => Promise<T>, sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))): Promise<T> {
  for (let i = 0; ; i++) {
    try { return await send(); } catch (err) {
      const e = classifyAwsError(err, what);
      if (e.code !== 'PROVIDER_AWS_TRANSIENT' || i >= IN_HOLD_RETRY_MS.length) throw e;
      await sleep(IN_HOLD_RETRY_MS[i]);
    }
  }
}

/** Groups changes by listener: rules first (planChanges' order), listeners independent of each other. */
export function byListener(changes: ForwardChange[]): ForwardChange[][] {
  const m = new Map<string, ForwardChange[]>();
  for (const ch of changes) m.set(ch.listenerArn, [...m.get(ch.listenerArn) ?? [], ch]);
  return [...m.values()];
}

export class Switcher {
  constructor(private readonly c: AwsClients) {}

  async forwarders(route: Route): Promise<Forwarder[]> {
    return describeForwarders(this.c, route.loadBalancerArns);
  }

  /** Describes and checks what a switch to `to` changes; changes nothing. */
  async prepare(route: Route, to: Side): Promise<PreparedSwitch> {
    const checks: SwitchCheck[] = [];
    const forwarders = await this.forwarders(route);
    const plan = planChanges(forwarders, route.uoldTargetGroupArn, route.unewTargetGroupArn, to);
    checks.push(plan.problems.length
      ? { name: 'routes', ok: false, detail: plan.problems.join('; ') }
      : { name: 'routes', ok: true, detail: `${plan.covered} listener default action(s) and rule(s) forward to Uold's or Unew's group; ${plan.changes.length} to change: ${plan.changes.map((ch) => ch.where).join('; ') || 'none'}` });
    if (to === 'unew') {
      // Switching to targets the load balancer does not find healthy would be an outage.
      const health = await new TargetGroups(this.c).health(route.unewTargetGroupArn);
      const bad = [...health].filter(([, h]) => h.state !== 'healthy').map(([id, h]) => `${id}=${h.state}${h.reason ? ` (${h.reason})` : ''}`);
      checks.push(!health.size
        ? { name: 'unew-targets-healthy', ok: false, detail: "Unew's target group has no registered target" }
        : bad.length
          ? { name: 'unew-targets-healthy', ok: false, detail: `the load balancer does not find every Unew target healthy: ${bad.join(', ')}` }
          : { name: 'unew-targets-healthy', ok: true, detail: `${health.size} Unew target(s) healthy as the load balancer sees them` });
    }
    return { to, checks, changes: plan.changes };
  }

  /** Only the Modify calls: no describe. Returns how many calls it made. */
  async apply(changes: ForwardChange[]): Promise<number> {
    let calls = 0;
    const results = await Promise.allSettled(byListener(changes).map(async (group) => {
      for (const ch of group) {
        calls++;
        if (ch.kind === 'rule') await modifyNow(`ModifyRule ${ch.where}`, () => this.c.elbSwitch.send(new ModifyRuleCommand({ RuleArn: ch.arn, Actions: ch.actions })));
        else await modifyNow(`ModifyListener ${ch.where}`, () => this.c.elbSwitch.send(new ModifyListenerCommand({ ListenerArn: ch.arn, DefaultActions: ch.actions })));
      }
    }));
    const failed = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    // The first failure is thrown with its classification (retryable or not); the others are named in it.
    if (failed.length) {
      const first = failed[0].reason as Error;
      if (failed.length > 1) first.message += ` (and ${failed.length - 1} other listener(s) failed: ${failed.slice(1).map((f) => (f.reason as Error).message).join('; ')})`;
      throw first;
    }
    return calls;
  }

  /** After the release: each change read back; ok when it forwards to the group it was pointed at. */
  async readBack(prepared: PreparedSwitch): Promise<SwitchCheck[]> {
    const changes = prepared.changes as ForwardChange[];
    const out: SwitchCheck[] = [];
    for (const ch of changes) {
      const want = forwardTargets(ch.actions);
      const actions = ch.kind === 'rule'
        ? (await lookup(`DescribeRules ${ch.arn}`, ['RuleNotFound'], () => this.c.elb.send(new DescribeRulesCommand({ RuleArns: [ch.arn] }))))?.Rules?.[0]?.Actions
        : (await lookup(`DescribeListeners ${ch.arn}`, ['ListenerNotFound'], () => this.c.elb.send(new DescribeListenersCommand({ ListenerArns: [ch.arn] }))))?.Listeners?.[0]?.DefaultActions;
      const have = actions ? forwardTargets(actions) : [];
      const ok = have.length === want.length && have.every((t) => want.includes(t));
      out.push({ name: `read-back ${ch.kind}`, ok, detail: ok ? `${ch.where} forwards to ${want.join(', ')}` : `${ch.where} forwards to ${have.join(', ') || (actions ? 'no target group' : 'nothing: it is gone')}, expected ${want.join(', ')}` });
    }
    return out;
  }

  /** Where live traffic goes now. */
  async state(route: Route): Promise<'uold' | 'unew' | 'partial' | undefined> {
    return trafficOf(await this.forwarders(route), route.uoldTargetGroupArn, route.unewTargetGroupArn);
  }

  /** The live forwarders (not the probe rule) that send traffic to `tgArn`. */
  async usersOf(route: Pick<Route, 'loadBalancerArns'>, tgArn: string): Promise<string[]> {
    return (await describeForwarders(this.c, route.loadBalancerArns)).filter((f) => !f.probe && forwardTargets(f.actions).includes(tgArn)).map((f) => f.where);
  }
}

