/**
 * Removes Unew from AWS, working from the upgrade id alone (its tags and
 * the derived target-group name), so it cleans up after a crash that lost
 * every record: the probe rule, the target group, the instances and any
 * volume that outlived them. Idempotent: each step skips what is gone.
 *
 * Safety: it refuses while a listener or rule (other than Imago's probe)
 * forwards to Unew's target group, because then Unew is the live system and
 * tearing it down would be an outage.
 */
import { DeleteVolumeCommand, DescribeVolumesCommand, type Volume } from '@aws-sdk/client-ec2';
import { imagoError } from '../../lib/errors';
import { call, lookup } from './classify';
import type { AwsClients } from './clients';
import { TAG_UPGRADE } from './naming';
import type { AwsPlan } from './plan-schema';
import { ProbeRules } from './probe-rule';
import { Provisioner } from './provisioner';
import { Switcher } from './switcher';
import { TargetGroups } from './target-group';
import { describeForwarders } from './topology';

export interface TeardownReport { terminated: string[]; deregistered: string[]; deletedTargetGroup?: string; deletedProbeRules: string[]; deletedVolumes: string[] }

export interface TeardownOptions { pollMs?: number; volumesTimeoutMs?: number }

/** The load balancers that use Uold's or Unew's group now (after a swap only Unew's has any). */
export async function loadBalancersOf(c: AwsClients, uoldTargetGroupArn: string, unewTargetGroupArn?: string): Promise<string[]> {
  const tgs = new TargetGroups(c);
  const out = new Set<string>();
  for (const arn of [uoldTargetGroupArn, unewTargetGroupArn]) {
    if (!arn) continue;
    for (const lb of (await tgs.describe(arn))?.LoadBalancerArns ?? []) out.add(lb);
  }
  return [...out];
}

export async function volumesOf(c: AwsClients, upgradeId?: string): Promise<Volume[]> {
  const out: Volume[] = [];
  let NextToken: string | undefined;
  do {
    const res = await call('DescribeVolumes', () => c.ec2.send(new DescribeVolumesCommand({
      Filters: [upgradeId ? { Name: `tag:${TAG_UPGRADE}`, Values: [upgradeId] } : { Name: 'tag-key', Values: [TAG_UPGRADE] }], NextToken,
    })));
    out.push(...res.Volumes ?? []);
    NextToken = res.NextToken;
  } while (NextToken);
  return out;
}

export async function teardownUnew(c: AwsClients, upgradeId: string, plan: Pick<AwsPlan, 'uoldTargetGroupArn'>, opts: TeardownOptions = {}): Promise<TeardownReport> {
  const tgs = new TargetGroups(c);
  const tgArn = await tgs.find(upgradeId);
  const lbArns = await loadBalancersOf(c, plan.uoldTargetGroupArn, tgArn);
  if (tgArn) {
    const live = await new Switcher(c).usersOf({ loadBalancerArns: lbArns }, tgArn);
    if (live.length) throw imagoError('PROVIDER_AWS_IN_USE', `${live.join(', ')} forward to Unew's target group ${tgArn}`);
  }
  const listeners = [...new Set((await describeForwarders(c, lbArns)).map((f) => f.listenerArn))];
  const deletedProbeRules = await new ProbeRules(c).remove(listeners, upgradeId);
  const deregistered = tgArn ? await tgs.deregisterAll(tgArn) : [];
  const provisioner = new Provisioner(c, opts.pollMs ?? 2_000);
  const fleet = await provisioner.findFleet(upgradeId, ['pending', 'running', 'stopping', 'stopped', 'shutting-down']);
  const terminated = fleet.map((i) => i.instanceId);
  if (terminated.length) await provisioner.terminate(terminated, upgradeId);
  if (tgArn) await tgs.delete(tgArn);

  // Volumes normally go with their instances (Imago launches them with DeleteOnTermination); any that
  // outlived them (detached, or an AMI mapping that kept it) is deleted once it is available.
  const deletedVolumes: string[] = [];
  const deadline = Date.now() + (opts.volumesTimeoutMs ?? 300_000);
  for (;;) {
    const vols = (await volumesOf(c, upgradeId)).filter((v) => v.State !== 'deleted' && v.State !== 'deleting');
    for (const v of vols.filter((x) => x.State === 'available')) {
      await lookup(`DeleteVolume ${v.VolumeId}`, ['InvalidVolume.NotFound'], () => c.ec2.send(new DeleteVolumeCommand({ VolumeId: v.VolumeId })));
      deletedVolumes.push(v.VolumeId!);
    }
    const waiting = vols.filter((v) => v.State !== 'available');
    if (!waiting.length) break;
    if (Date.now() >= deadline) {
      throw imagoError('PROVIDER_AWS_TIMEOUT', `volumes tagged ${TAG_UPGRADE}=${upgradeId} still attached after their instances were terminated: ${waiting.map((v) => `${v.VolumeId}=${v.State}`).join(', ')}`);
    }
    await new Promise((r) => setTimeout(r, opts.pollMs ?? 2_000));
  }
  return { terminated, deregistered, deletedTargetGroup: tgArn, deletedProbeRules, deletedVolumes };
}
