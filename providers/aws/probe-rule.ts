/**
 * The probe rule: how Unew's target group gets real load-balancer health
 * checks before the swap. An ELB runs health checks only for a target group
 * that a listener or rule uses; until then it reports every target `unused`
 * (Target.NotInUse). So Imago attaches Unew's group to one of the load
 * balancer's listeners through a rule that never matches a client's request:
 * its conditions are a host name in the reserved `.invalid` domain and a
 * header carrying a value derived from the upgrade id, which no client
 * sends. The rule gets the lowest precedence free on the listener (the
 * highest priority number), so it cannot shadow any rule either.
 *
 * It is tagged with the upgrade id: teardown and `listUniverses` find it by
 * tag; it is removed once the swap is read back complete, by teardown, and
 * by retireUold.
 */
import { CreateRuleCommand, DeleteRuleCommand, DescribeRulesCommand, type Rule } from '@aws-sdk/client-elastic-load-balancing-v2';
import { imagoError } from '../../lib/errors';
import { call, lookup } from './classify';
import type { AwsClients } from './clients';
import { PROBE_HEADER, PROBE_HOST, probeValue, ROLE_PROBE, TAG_ROLE, TAG_UPGRADE, tags, type Owner } from './naming';
import { TargetGroups } from './target-group';
import { isProbeRule } from './topology';

/** ALB rule priorities run from 1 to 50000. */
const MAX_PRIORITY = 50_000;

/** The highest priority number not taken (lowest precedence), or undefined when all are. */
export function freePriority(taken: number[]): number | undefined {
  const used = new Set(taken);
  for (let p = MAX_PRIORITY; p >= 1; p--) if (!used.has(p)) return p;
  return undefined;
}

export class ProbeRules {
  constructor(private readonly c: AwsClients) {}

  private async rules(listenerArn: string): Promise<Rule[]> {
    const out: Rule[] = [];
    let Marker: string | undefined;
    do {
      const res = await lookup(`DescribeRules ${listenerArn}`, ['ListenerNotFound'], () => this.c.elb.send(new DescribeRulesCommand({ ListenerArn: listenerArn, Marker })));
      if (!res) return out;
      out.push(...res.Rules ?? []);
      Marker = res.NextMarker;
    } while (Marker);
    return out;
  }

  /** The probe rule of this upgrade on the listener, creating it once. Returns its ARN. */
  async ensure(upgradeId: string, listenerArn: string, unewTargetGroupArn: string, owner?: Owner): Promise<string> {
    const value = probeValue(upgradeId);
    for (let attempt = 0; ; attempt++) {
      const rules = await this.rules(listenerArn);
      const mine = rules.find((r) => isProbeRule(r) && r.Conditions?.some((c) => c.HttpHeaderConfig?.Values?.includes(value)));
      if (mine) return mine.RuleArn!;
      const priority = freePriority(rules.filter((r) => !r.IsDefault).map((r) => Number(r.Priority)));
      if (priority === undefined) throw imagoError('PROVIDER_AWS_QUOTA', `listener ${listenerArn} has no free rule priority for Imago's probe rule`);
      try {
        const res = await this.c.elb.send(new CreateRuleCommand({
          ListenerArn: listenerArn, Priority: priority,
          Conditions: [
            { Field: 'host-header', HostHeaderConfig: { Values: [PROBE_HOST] } },
            { Field: 'http-header', HttpHeaderConfig: { HttpHeaderName: PROBE_HEADER, Values: [value] } },
          ],
          Actions: [{ Type: 'forward', TargetGroupArn: unewTargetGroupArn }],
          Tags: tags(upgradeId, ROLE_PROBE, [], owner),
        }));
        return res.Rules![0].RuleArn!;
      } catch (err) {
        // Someone took that priority between our describe and our create: look again.
        if ((err as { name?: string }).name === 'PriorityInUse' && attempt < 5) continue;
        return call(`CreateRule (probe) on ${listenerArn}`, () => Promise.reject(err));
      }
    }
  }

  /** Probe rules on these listeners, with their owner (the upgrade id tag). */
  async find(listenerArns: string[], upgradeId?: string): Promise<Array<{ arn: string; upgradeId: string }>> {
    const candidates: string[] = [];
    for (const l of [...new Set(listenerArns)]) for (const r of await this.rules(l)) if (isProbeRule(r)) candidates.push(r.RuleArn!);
    if (!candidates.length) return [];
    const t = await new TargetGroups(this.c).tagsOf(candidates);
    return candidates
      .map((arn) => ({ arn, tags: t.get(arn) ?? {} }))
      .filter((r) => r.tags[TAG_ROLE] === ROLE_PROBE && r.tags[TAG_UPGRADE] && (upgradeId === undefined || r.tags[TAG_UPGRADE] === upgradeId))
      .map((r) => ({ arn: r.arn, upgradeId: r.tags[TAG_UPGRADE] }));
  }

  /** Deletes this upgrade's probe rules on these listeners; returns their ARNs. Idempotent. */
  async remove(listenerArns: string[], upgradeId: string): Promise<string[]> {
    const found = await this.find(listenerArns, upgradeId);
    for (const r of found) await lookup(`DeleteRule ${r.arn}`, ['RuleNotFound'], () => this.c.elb.send(new DeleteRuleCommand({ RuleArn: r.arn })));
    return found.map((r) => r.arn);
  }
}
