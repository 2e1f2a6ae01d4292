/**
 * Unew's ELBv2 target group: created with the plan's health check under a
 * name derived from the upgrade id (so it is found again after a crash),
 * tagged with the upgrade id, the instances registered, then polled until
 * every target is healthy. A group with our name but without our tag is
 * someone else's: we refuse to adopt or delete it.
 */
import {
  CreateTargetGroupCommand, DeleteTargetGroupCommand, DeregisterTargetsCommand, DescribeTagsCommand,
  DescribeTargetGroupsCommand, DescribeTargetHealthCommand, RegisterTargetsCommand,
} from '@aws-sdk/client-elastic-load-balancing-v2';
import { imagoError } from '../../lib/errors';
import { errorName, withAwsRetry, type RetryOptions } from './classify';
import type { AwsClients } from './clients';
import type { AwsPlan } from './plan-schema';
import { ROLE_TG, TAG_ROLE, TAG_UPGRADE, targetGroupName } from './naming';

export class TargetGroups {
  constructor(private readonly c: AwsClients, private readonly retry: RetryOptions = {}) {}

  /** The ARN of Unew's target group for this upgrade, or undefined; throws CONFLICT if the name is taken by a group that is not ours. */
  async find(upgradeId: string): Promise<string | undefined> {
    const name = targetGroupName(upgradeId);
    const res = await withAwsRetry(`DescribeTargetGroups ${name}`, async () => {
      try { return await this.c.elb.send(new DescribeTargetGroupsCommand({ Names: [name] })); } catch (err) {
        if (errorName(err) === 'TargetGroupNotFound') return undefined;
        throw err;
      }
    }, this.retry);
    const arn = res?.TargetGroups?.[0]?.TargetGroupArn;
    if (!arn) return undefined;
    const tags = await withAwsRetry(`DescribeTags ${arn}`, () => this.c.elb.send(new DescribeTagsCommand({ ResourceArns: [arn] })), this.retry);
    const owner = tags.TagDescriptions?.[0]?.Tags?.find((t) => t.Key === TAG_UPGRADE)?.Value;
    if (owner !== upgradeId) {
      throw imagoError('PROVIDER_AWS_CONFLICT', `target group ${name} exists but is tagged ${TAG_UPGRADE}=${owner ?? '(none)'}, not ${upgradeId}; Imago will not touch it`);
    }
    return arn;
  }

  /** Creates Unew's target group once (a retry finds and returns the same one). */
  async ensure(upgradeId: string, plan: AwsPlan, vpcId: string): Promise<string> {
    const existing = await this.find(upgradeId);
    if (existing) return existing;
    const hc = plan.healthCheck;
    const name = targetGroupName(upgradeId);
    try {
      const res = await withAwsRetry(`CreateTargetGroup ${name}`, () => this.c.elb.send(new CreateTargetGroupCommand({
        Name: name, Protocol: 'HTTP', Port: plan.appPort, VpcId: vpcId, TargetType: 'instance',
        HealthCheckEnabled: true, HealthCheckProtocol: 'HTTP', HealthCheckPath: hc.path, HealthCheckPort: String(hc.port),
        HealthCheckIntervalSeconds: hc.intervalSeconds, HealthCheckTimeoutSeconds: hc.timeoutSeconds,
        HealthyThresholdCount: hc.healthyThreshold, UnhealthyThresholdCount: hc.unhealthyThreshold, Matcher: { HttpCode: hc.matcher },
        Tags: [{ Key: TAG_UPGRADE, Value: upgradeId }, { Key: TAG_ROLE, Value: ROLE_TG }],
      })), this.retry);
      return res.TargetGroups![0].TargetGroupArn!;
    } catch (err) {
      // A concurrent retry of the same step created it between our find and create.
      if ((err as { detail?: string }).detail?.includes('DuplicateTargetGroupName')) {
        const again = await this.find(upgradeId);
        if (again) return again;
      }
      throw err;
    }
  }

  async register(arn: string, instanceIds: string[]): Promise<void> {
    if (!instanceIds.length) return;
    await withAwsRetry(`RegisterTargets ${arn}`, () => this.c.elb.send(new RegisterTargetsCommand({ TargetGroupArn: arn, Targets: instanceIds.map((Id) => ({ Id })) })), this.retry);
  }

  /** Target id → health state as the load balancer sees it. */
  async health(arn: string): Promise<Map<string, string>> {
    const res = await withAwsRetry(`DescribeTargetHealth ${arn}`, () => this.c.elb.send(new DescribeTargetHealthCommand({ TargetGroupArn: arn })), this.retry);
    return new Map((res.TargetHealthDescriptions ?? []).map((d) => [d.Target!.Id!, d.TargetHealth?.State ?? 'unknown']));
  }

  /** Deregisters every target (idempotent; a missing group is already clean). */
  async deregisterAll(arn: string): Promise<string[]> {
    const ids = [...(await this.health(arn)).keys()];
    if (ids.length) {
      await withAwsRetry(`DeregisterTargets ${arn}`, () => this.c.elb.send(new DeregisterTargetsCommand({ TargetGroupArn: arn, Targets: ids.map((Id) => ({ Id })) })), this.retry);
    }
    return ids;
  }

  async delete(arn: string): Promise<void> {
    try {
      await withAwsRetry(`DeleteTargetGroup ${arn}`, () => this.c.elb.send(new DeleteTargetGroupCommand({ TargetGroupArn: arn })), this.retry);
    } catch (err) {
      if ((err as { detail?: string }).detail?.includes('ResourceInUse')) {
        throw imagoError('PROVIDER_AWS_IN_USE', `target group ${arn} is still used by a listener or rule outside the plan; remove that reference first`, err);
      }
      throw err;
    }
  }
}
