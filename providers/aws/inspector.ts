/**
 * Read-only preflight of the plan's AWS resources, run before anything is
 * created: the AMI, every subnet and security group exist and share one VPC,
 * and the listener, rules and Uold's target group exist and belong together.
 * All problems are reported together, each with its plan path. Permission
 * and throttling errors pass through as themselves (not as "invalid").
 */
import { DescribeImagesCommand, DescribeSecurityGroupsCommand, DescribeSubnetsCommand } from '@aws-sdk/client-ec2';
import { imagoError, isImagoError } from '../../lib/errors';
import { withAwsRetry, type RetryOptions } from './classify';
import type { AwsClients } from './clients';
import type { AwsPlan } from './plan-schema';
import { Switcher } from './switcher';

/** undefined when AWS says "not found/malformed", the value otherwise; other errors are thrown. */
async function lookup<T>(what: string, call: () => Promise<T>, retry: RetryOptions): Promise<T | undefined> {
  try { return await withAwsRetry(what, call, retry); } catch (err) {
    if (isImagoError(err, 'PROVIDER_AWS_INVALID')) return undefined;
    throw err;
  }
}

export async function inspectAws(c: AwsClients, plan: AwsPlan, retry: RetryOptions = {}): Promise<{ vpcId: string }> {
  const problems: string[] = [];
  const img = await lookup('DescribeImages', () => c.ec2.send(new DescribeImagesCommand({ ImageIds: [plan.ami] })), retry);
  if (!img?.Images?.length) problems.push(`unew.aws.ami: image ${plan.ami} does not exist or is not visible to this account`);
  else if (img.Images[0].State && img.Images[0].State !== 'available') problems.push(`unew.aws.ami: image ${plan.ami} is ${img.Images[0].State}, not available`);

  const vpcs = new Set<string>();
  for (const [i, id] of plan.subnets.entries()) {
    const res = await lookup('DescribeSubnets', () => c.ec2.send(new DescribeSubnetsCommand({ SubnetIds: [id] })), retry);
    const s = res?.Subnets?.[0];
    if (!s) problems.push(`unew.aws.subnets[${i}]: subnet ${id} does not exist`);
    else vpcs.add(s.VpcId!);
  }
  for (const [i, id] of plan.securityGroups.entries()) {
    const res = await lookup('DescribeSecurityGroups', () => c.ec2.send(new DescribeSecurityGroupsCommand({ GroupIds: [id] })), retry);
    const g = res?.SecurityGroups?.[0];
    if (!g) problems.push(`unew.aws.securityGroups[${i}]: security group ${id} does not exist`);
    else vpcs.add(g.VpcId!);
  }
  if (vpcs.size > 1) problems.push(`unew.aws.subnets/securityGroups: they span several VPCs (${[...vpcs].join(', ')}); use one VPC, the load balancer's`);
  const vpcId = vpcs.size === 1 ? [...vpcs][0] : undefined;

  const sw = new Switcher(c, retry);
  problems.push(...await sw.inspect({ listenerArn: plan.listenerArn, ruleArns: [...plan.ruleArns], uoldTargetGroupArn: plan.uoldTargetGroupArn }, vpcId));

  if (problems.length || !vpcId) throw imagoError('PROVIDER_AWS_INVALID', problems.join('; ') || 'unew.aws.subnets: no VPC found');
  return { vpcId };
}
