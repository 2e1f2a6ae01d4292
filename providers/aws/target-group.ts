/**
 * Unew's ELBv2 target group: created with the plan's health check under a
 * name derived from the upgrade id (so it is found again after a crash),
 * tagged with the upgrade id, the instances registered. A group with our
 * name but without our tag is someone else's: we refuse to adopt or delete it.
 */
import {
  CreateTargetGroupCommand, DeleteTargetGroupCommand, DeregisterTargetsCommand, DescribeTagsCommand,
  DescribeTargetGroupsCommand, DescribeTargetHealthCommand, RegisterTargetsCommand, type TargetGroup,
} from '@aws-sdk/client-elastic-load-balancing-v2';
import { imagoError } from '../../lib/errors';
import { call, CONSISTENCY_BUDGET_MS, lookup, untilConsistent, type ConsistencyOptions } from './classify';
import type { AwsClients } from './clients';
import type { AwsPlan } from './plan-schema';
import { ROLE_TG, tags, TAG_UPGRADE, targetGroupName, type Owner } from './naming';

export interface TargetHealthState { state: string; reason?: string; description?: string }

export class TargetGroups {
  constructor(private readonly c: AwsClients, private readonly consistency: Partial<ConsistencyOptions> = {}) {}

  async describe(arn: string): Promise<TargetGroup | undefined> {
    const res = await lookup(`DescribeTargetGroups ${arn}`, ['TargetGroupNotFound'], () => this.c.elb.send(new DescribeTargetGroupsCommand({ TargetGroupArns: [arn] })));
    return res?.TargetGroups?.[0];
  }

  /** Tags of up to 20 ELB resources per call: arn → key → value. */
  async tagsOf(arns: string[]): Promise<Map<string, Record<string, string>>> {
    const out = new Map<string, Record<string, string>>();
    for (let i = 0; i < arns.length; i += 20) {
      const batch = arns.slice(i, i + 20);
      const res = await call('DescribeTags', () => this.c.elb.send(new DescribeTagsCommand({ ResourceArns: batch })));
      for (const d of res.TagDescriptions ?? []) out.set(d.ResourceArn!, Object.fromEntries((d.Tags ?? []).map((t) => [t.Key!, t.Value ?? ''])));
    }
    return out;
  }

  /** The ARN of Unew's target group for this upgrade, or undefined; throws CONFLICT if the name is taken by a group that is not ours. */
  async find(upgradeId: string): Promise<string | undefined> {
    const name = targetGroupName(upgradeId);
    const res = await lookup(`DescribeTargetGroups ${name}`, ['TargetGroupNotFound'], () => this.c.elb.send(new DescribeTargetGroupsCommand({ Names: [name] })));
    const arn = res?.TargetGroups?.[0]?.TargetGroupArn;
    if (!arn) return undefined;
    const owner = (await this.tagsOf([arn])).get(arn)?.[TAG_UPGRADE];
    if (owner !== upgradeId) {
      throw imagoError('PROVIDER_AWS_CONFLICT', `target group ${name} exists but is tagged ${TAG_UPGRADE}=${owner ?? '(none)'}, not ${upgradeId}; Imago will not touch it`);
    }
    return arn;
  }

  /** Every target group whose name has Imago's prefix, with its tags (for listing universes). */
  async listOurs(prefix: string): Promise<Array<{ arn: string; name: string; loadBalancerArns: string[]; tags: Record<string, string> }>> {
    const groups: TargetGroup[] = [];
    let Marker: string | undefined;
    do {
      const res = await call('DescribeTargetGroups', () => this.c.elb.send(new DescribeTargetGroupsCommand({ Marker })));
      groups.push(...(res.TargetGroups ?? []).filter((g) => g.TargetGroupName?.startsWith(prefix)));
      Marker = res.NextMarker;
    } while (Marker);
    const t = await this.tagsOf(groups.map((g) => g.TargetGroupArn!));
    return groups.map((g) => ({ arn: g.TargetGroupArn!, name: g.TargetGroupName!, loadBalancerArns: [...new Set(g.LoadBalancerArns ?? [])], tags: t.get(g.TargetGroupArn!) ?? {} }));
  }

  /** Creates Unew's target group once (a retry finds and returns the same one); `protocol` is Uold's group's, so every listener accepts it. */
  async ensure(upgradeId: string, plan: AwsPlan, vpcId: string, protocol: string, owner?: Owner): Promise<string> {
    const existing = await this.find(upgradeId);
    if (existing) return existing;
    const hc = plan.healthCheck;
    const name = targetGroupName(upgradeId);
    const res = await untilConsistent(`CreateTargetGroup ${name}`, (code) => code === 'DuplicateTargetGroupName', async () => {
      // A concurrent attempt of the same step may have created it between our find and this create.
      const again = await this.find(upgradeId);
      if (again) return again;
      const r = await this.c.elb.send(new CreateTargetGroupCommand({
        Name: name, Protocol: protocol as never, Port: plan.appPort, VpcId: vpcId, TargetType: 'instance',
        HealthCheckEnabled: true, HealthCheckProtocol: protocol === 'HTTPS' ? 'HTTPS' : 'HTTP', HealthCheckPath: hc.path, HealthCheckPort: String(hc.port),
        HealthCheckIntervalSeconds: hc.intervalSeconds, HealthCheckTimeoutSeconds: hc.timeoutSeconds,
        HealthyThresholdCount: hc.healthyThreshold, UnhealthyThresholdCount: hc.unhealthyThreshold, Matcher: { HttpCode: hc.matcher },
        Tags: tags(upgradeId, ROLE_TG, [], owner),
      }));
      return r.TargetGroups![0].TargetGroupArn!;
    }, { budgetMs: 5_000, ...this.consistency });
    return res;
  }

  /** Registers the instances; AWS may answer InvalidTarget for a moment after they became running. */
  async register(arn: string, instanceIds: string[]): Promise<void> {
    if (!instanceIds.length) return;
    await untilConsistent(`RegisterTargets ${arn}`, (code) => code === 'InvalidTarget',
      () => this.c.elb.send(new RegisterTargetsCommand({ TargetGroupArn: arn, Targets: instanceIds.map((Id) => ({ Id })) })),
      { budgetMs: CONSISTENCY_BUDGET_MS.targetRegistration, ...this.consistency });
  }

  /** Target id → health as the load balancer sees it. */
  async health(arn: string): Promise<Map<string, TargetHealthState>> {
    const res = await call(`DescribeTargetHealth ${arn}`, () => this.c.elb.send(new DescribeTargetHealthCommand({ TargetGroupArn: arn })));
    return new Map((res.TargetHealthDescriptions ?? []).map((d) => [d.Target!.Id!, { state: d.TargetHealth?.State ?? 'unknown', reason: d.TargetHealth?.Reason, description: d.TargetHealth?.Description }]));
  }

  /** Deregisters every target (idempotent); returns their ids. */
  async deregisterAll(arn: string): Promise<string[]> {
    const ids = [...(await this.health(arn)).keys()];
    if (ids.length) {
      await call(`DeregisterTargets ${arn}`, () => this.c.elb.send(new DeregisterTargetsCommand({ TargetGroupArn: arn, Targets: ids.map((Id) => ({ Id })) })));
    }
    return ids;
  }

  /** Deletes the group; ResourceInUse right after the last listener or rule let go of it is waited out, for a bounded time. */
  async delete(arn: string): Promise<void> {
    try {
      await untilConsistent(`DeleteTargetGroup ${arn}`, (code) => code === 'ResourceInUse',
        () => this.c.elb.send(new DeleteTargetGroupCommand({ TargetGroupArn: arn })),
        { budgetMs: CONSISTENCY_BUDGET_MS.targetGroupRelease, ...this.consistency });
    } catch (err) {
      if ((err as { awsCode?: string }).awsCode === 'ResourceInUse') {
        throw imagoError('PROVIDER_AWS_IN_USE', `target group ${arn} is still used by a listener or rule: remove that reference first`, err);
      }
      throw err;
    }
  }
}
