/**
 * Provisions Unew's front-end fleet on EC2. Idempotent twice over: first it
 * looks for instances already tagged with the upgrade id and subnet slot
 * (covers a crash after RunInstances), then RunInstances carries a
 * ClientToken derived from upgrade id + launch nonce + step + slot (covers a
 * lost response: AWS returns the same reservation). Tags are applied by
 * RunInstances itself (TagSpecifications), atomically with the launch, on
 * the instances and their volumes: nothing Imago launches exists untagged,
 * so teardown by tag cannot miss it.
 *
 * Every instance requires IMDSv2 (session tokens): the boot script's AWS CLI
 * fetches the instance role's credentials through it, and IMDSv1's
 * unauthenticated GETs are closed.
 */
import {
  DescribeImagesCommand, DescribeInstancesCommand, RunInstancesCommand, TerminateInstancesCommand,
  type BlockDeviceMapping, type Instance,
} from '@aws-sdk/client-ec2';
import { imagoError } from '../../lib/errors';
import { awsCodeOf, call, CONSISTENCY_BUDGET_MS, untilConsistent, type ConsistencyOptions } from './classify';
import type { AwsClients } from './clients';
import type { AwsPlan } from './plan-schema';
import { clientToken, instanceTags, ROLE_APP, TAG_ROLE, TAG_SLOT, TAG_UPGRADE, type Owner } from './naming';

export const STEP_APP = 'app';

export interface FleetInstance {
  instanceId: string;
  subnetId: string;
  slot: number;
  state: string;
  privateIp?: string;
  privateDnsName?: string;
  publicIp?: string;
  publicDnsName?: string;
  tags: Record<string, string>;
}

const LIVE_STATES = ['pending', 'running', 'stopping', 'stopped'];

/** How many instances go into each subnet: spread evenly, first subnets take the remainder. */
export function spread(count: number, subnets: number): number[] {
  return Array.from({ length: subnets }, (_, i) => Math.floor(count / subnets) + (i < count % subnets ? 1 : 0));
}

export function toFleet(i: Instance): FleetInstance {
  const tags = Object.fromEntries((i.Tags ?? []).map((t) => [t.Key!, t.Value ?? '']));
  return {
    instanceId: i.InstanceId!, subnetId: i.SubnetId ?? '', slot: Number(tags[TAG_SLOT] ?? -1), state: i.State?.Name ?? 'unknown',
    privateIp: i.PrivateIpAddress || undefined, privateDnsName: i.PrivateDnsName || undefined,
    publicIp: i.PublicIpAddress || undefined, publicDnsName: i.PublicDnsName || undefined, tags,
  };
}

/**
 * One instance's app URL from the plan's template, or the variables it
 * lacks (a tag not set yet, no public address): the caller waits for them.
 */
export function appUrlOf(template: string, i: FleetInstance, appPort: number): { url?: string; missing: string[] } {
  const missing: string[] = [];
  const url = template.replace(/\{([^}]+)\}/g, (_, v: string) => {
    const value = v.startsWith('tag:') ? i.tags[v.slice(4)]
      : ({ privateIp: i.privateIp, privateDnsName: i.privateDnsName, publicIp: i.publicIp, publicDnsName: i.publicDnsName, instanceId: i.instanceId, appPort: String(appPort) } as Record<string, string | undefined>)[v];
    if (!value) { missing.push(`{${v}}`); return ''; }
    return value;
  });
  return missing.length ? { missing } : { url, missing };
}

/**
 * RunInstances' override of the AMI's EBS mappings: the same volumes, each
 * deleted with its instance, so none outlives a teardown (an AMI may map
 * its volumes with DeleteOnTermination false).
 */
export function deleteOnTermination(mappings: BlockDeviceMapping[]): BlockDeviceMapping[] {
  return mappings.filter((m) => m.Ebs && m.DeviceName).map((m) => {
    const { SnapshotId, VolumeSize, VolumeType, Iops, Throughput } = m.Ebs!;
    const ebs = Object.fromEntries(Object.entries({ SnapshotId, VolumeSize, VolumeType, Iops, Throughput }).filter(([, v]) => v !== undefined));
    return { DeviceName: m.DeviceName, Ebs: { ...ebs, DeleteOnTermination: true } };
  });
}

export class Provisioner {
  constructor(private readonly c: AwsClients, private readonly pollMs = 2_000, private readonly consistency: Partial<ConsistencyOptions> = {}) {}

  /** Every instance tagged for this upgrade in the given states (default: not terminated), in slot then id order. */
  async findFleet(upgradeId: string, states = LIVE_STATES): Promise<FleetInstance[]> {
    const out: FleetInstance[] = [];
    let NextToken: string | undefined;
    do {
      const res = await call(`DescribeInstances ${TAG_UPGRADE}=${upgradeId}`, () => this.c.ec2.send(new DescribeInstancesCommand({
        Filters: [
          { Name: `tag:${TAG_UPGRADE}`, Values: [upgradeId] },
          { Name: `tag:${TAG_ROLE}`, Values: [ROLE_APP] },
          { Name: 'instance-state-name', Values: states },
        ],
        NextToken,
      })));
      for (const r of res.Reservations ?? []) for (const i of r.Instances ?? []) out.push(toFleet(i));
      NextToken = res.NextToken;
    } while (NextToken);
    return out.sort((a, b) => a.slot - b.slot || a.instanceId.localeCompare(b.instanceId));
  }

  /** The instances with these ids; undefined while AWS does not list them yet (eventual consistency right after RunInstances). */
  async byIds(ids: string[]): Promise<FleetInstance[] | undefined> {
    try {
      const res = await this.c.ec2.send(new DescribeInstancesCommand({ InstanceIds: ids }));
      return (res.Reservations ?? []).flatMap((r) => r.Instances ?? []).map(toFleet);
    } catch (err) {
      if (awsCodeOf(err) === 'InvalidInstanceID.NotFound') return undefined;
      return call('DescribeInstances by id', () => Promise.reject(err));
    }
  }

  /** Launches what is missing of the fleet (nothing on a retry), then waits until every instance runs. */
  async provision(upgradeId: string, nonce: string, plan: AwsPlan, userData: string, owner?: Owner): Promise<FleetInstance[]> {
    const existing = await this.findFleet(upgradeId);
    const perSlot = spread(plan.count, plan.subnets.length);
    const image = (await call('DescribeImages', () => this.c.ec2.send(new DescribeImagesCommand({ ImageIds: [plan.ami] })))).Images?.[0];
    const blockDevices = deleteOnTermination(image?.BlockDeviceMappings ?? []);
    const launched: string[] = [];
    for (const [slot, want] of perSlot.entries()) {
      if (want === 0) continue;
      const have = existing.filter((i) => i.slot === slot).length;
      if (have === want) continue;
      if (have > 0) {
        // RunInstances with MinCount=MaxCount is all-or-nothing; a partial slot means someone terminated instances by hand.
        throw imagoError('PROVIDER_AWS_CONFLICT', `subnet slot ${slot} (${plan.subnets[slot]}) has ${have} of ${want} instances tagged ${TAG_UPGRADE}=${upgradeId}; destroy Unew and start the upgrade again`);
      }
      // An instance profile created moments ago may not be usable yet: AWS answers InvalidParameterValue naming it.
      const res = await untilConsistent(`RunInstances in unew.aws.subnets[${slot}]`,
        (code, msg) => code === 'InvalidParameterValue' && /iamInstanceProfile|instance profile/i.test(msg),
        () => this.c.ec2.send(new RunInstancesCommand({
          ImageId: plan.ami,
          InstanceType: plan.instanceType as never,
          MinCount: want,
          MaxCount: want,
          SubnetId: plan.subnets[slot],
          SecurityGroupIds: [...plan.securityGroups],
          ...(plan.keyName ? { KeyName: plan.keyName } : {}),
          ...(plan.instanceProfile ? { IamInstanceProfile: plan.instanceProfile.startsWith('arn:') ? { Arn: plan.instanceProfile } : { Name: plan.instanceProfile } } : {}),
          UserData: Buffer.from(userData, 'utf8').toString('base64'),
          MetadataOptions: { HttpTokens: 'required', HttpEndpoint: 'enabled', HttpPutResponseHopLimit: 1 },
          ...(blockDevices.length ? { BlockDeviceMappings: blockDevices } : {}),
          ClientToken: clientToken(upgradeId, nonce, STEP_APP, slot),
          TagSpecifications: [
            { ResourceType: 'instance', Tags: instanceTags(upgradeId, slot, owner) },
            { ResourceType: 'volume', Tags: instanceTags(upgradeId, slot, owner) },
          ],
        })), { budgetMs: CONSISTENCY_BUDGET_MS.instanceProfile, ...this.consistency });
      const ended = (res.Instances ?? []).filter((i) => ['shutting-down', 'terminated'].includes(i.State?.Name ?? ''));
      if (ended.length) {
        // The token named a launch whose instances are gone: a nonce must make every provisioning's tokens new.
        throw imagoError('PROVIDER_AWS_CONFLICT', `RunInstances returned ${ended.length} terminated instance(s) for a reused ClientToken; start a new provisioning (new launch nonce)`);
      }
      launched.push(...(res.Instances ?? []).map((i) => i.InstanceId!));
    }
    // Wait on the ids we know (adopted + just launched), by id: right after
    // RunInstances, DescribeInstances may not know them yet.
    return this.waitRunning([...existing.map((i) => i.instanceId), ...launched], plan.timeouts.instancesRunningMs);
  }

  /** Polls until every instance runs; one that stops or terminates on its own fails the step at once. */
  async waitRunning(ids: string[], timeoutMs: number, signal?: AbortSignal): Promise<FleetInstance[]> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      signal?.throwIfAborted();
      const fleet = await this.byIds(ids);
      if (fleet) {
        const down = fleet.filter((i) => ['stopping', 'stopped', 'shutting-down', 'terminated'].includes(i.state));
        if (down.length) {
          throw imagoError('PROVIDER_AWS_CAPACITY', `instances ${down.map((i) => `${i.instanceId}=${i.state}`).join(', ')} stopped or terminated while starting (often capacity or a boot failure); check their state reason`);
        }
        if (fleet.length === ids.length && fleet.every((i) => i.state === 'running')) {
          return fleet.sort((a, b) => a.slot - b.slot || a.instanceId.localeCompare(b.instanceId));
        }
      }
      if (Date.now() >= deadline) {
        const waiting = fleet ? fleet.filter((i) => i.state !== 'running').map((i) => `${i.instanceId}=${i.state}`) : ids.map((id) => `${id}=not visible yet`);
        throw imagoError('PROVIDER_AWS_TIMEOUT', `instances not running after ${timeoutMs} ms (unew.aws.timeouts.instancesRunningMs): ${waiting.join(', ')}`);
      }
      await new Promise((r) => setTimeout(r, this.pollMs));
    }
  }

  /** Terminates the given instances (idempotent: AWS accepts terminated ones). */
  async terminate(ids: string[], what: string): Promise<void> {
    for (let k = 0; k < ids.length; k += 500) {
      const batch = ids.slice(k, k + 500);
      await call(`TerminateInstances ${batch.length} instance(s) of ${what}`, () => this.c.ec2.send(new TerminateInstancesCommand({ InstanceIds: batch })));
    }
  }
}
