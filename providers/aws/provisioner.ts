/**
 * Provisions Unew's front-end fleet on EC2. Idempotent twice over: first it
 * looks for instances already tagged with the upgrade id and subnet slot
 * (covers a crash after RunInstances, and moto, which ignores ClientToken),
 * then RunInstances carries a ClientToken derived from upgrade id + step +
 * slot (covers AWS's eventual consistency between RunInstances and Describe).
 * Tags are applied by RunInstances itself (TagSpecifications), atomically
 * with the launch: an instance can never exist untagged, so teardown by tag
 * cannot miss one.
 */
import { DescribeInstancesCommand, RunInstancesCommand, TerminateInstancesCommand, type Instance } from '@aws-sdk/client-ec2';
import { imagoError } from '../../lib/errors';
import { withAwsRetry, type RetryOptions } from './classify';
import type { AwsClients } from './clients';
import { DB_URL_PLACEHOLDER, type AwsPlan } from './plan-schema';
import { clientToken, instanceTags, ROLE_APP, TAG_ROLE, TAG_SLOT, TAG_UPGRADE } from './naming';

export const STEP_APP = 'app';

export interface FleetInstance {
  instanceId: string;
  subnetId: string;
  slot: number;
  state: string;
  /** As AWS reports it; in tests against moto an invented address that must never receive traffic. */
  privateIp?: string;
}

const LIVE_STATES = ['pending', 'running', 'stopping', 'stopped'];

/** How many instances go into each subnet: spread evenly, first subnets take the remainder. */
export function spread(count: number, subnets: number): number[] {
  return Array.from({ length: subnets }, (_, i) => Math.floor(count / subnets) + (i < count % subnets ? 1 : 0));
}

function toFleet(i: Instance): FleetInstance {
  const slot = Number(i.Tags?.find((t) => t.Key === TAG_SLOT)?.Value ?? -1);
  return { instanceId: i.InstanceId!, subnetId: i.SubnetId ?? '', slot, state: i.State?.Name ?? 'unknown', privateIp: i.PrivateIpAddress };
}

export class Provisioner {
  constructor(private readonly c: AwsClients, private readonly retry: RetryOptions = {}, private readonly pollMs = 2_000) {}

  /** Every not-terminated instance tagged for this upgrade, in slot then id order. */
  async findFleet(upgradeId: string): Promise<FleetInstance[]> {
    const out: FleetInstance[] = [];
    let NextToken: string | undefined;
    do {
      const res = await withAwsRetry(`DescribeInstances ${TAG_UPGRADE}=${upgradeId}`, () => this.c.ec2.send(new DescribeInstancesCommand({
        Filters: [
          { Name: `tag:${TAG_UPGRADE}`, Values: [upgradeId] },
          { Name: `tag:${TAG_ROLE}`, Values: [ROLE_APP] },
          { Name: 'instance-state-name', Values: LIVE_STATES },
        ],
        NextToken,
      })), this.retry);
      for (const r of res.Reservations ?? []) for (const i of r.Instances ?? []) out.push(toFleet(i));
      NextToken = res.NextToken;
    } while (NextToken);
    return out.sort((a, b) => a.slot - b.slot || a.instanceId.localeCompare(b.instanceId));
  }

  /** Launches what is missing of the fleet (nothing on a retry), then waits until every instance runs. */
  async provision(upgradeId: string, plan: AwsPlan, dbUrl: string): Promise<FleetInstance[]> {
    const existing = await this.findFleet(upgradeId);
    const perSlot = spread(plan.count, plan.subnets.length);
    // Substituted on the worker, sent only to EC2; never logged or returned.
    const userData = Buffer.from(plan.userData.split(DB_URL_PLACEHOLDER).join(dbUrl), 'utf8').toString('base64');
    const launched: string[] = [];
    for (const [slot, want] of perSlot.entries()) {
      if (want === 0) continue;
      const have = existing.filter((i) => i.slot === slot).length;
      if (have === want) continue;
      if (have > 0) {
        // RunInstances with MinCount=MaxCount is all-or-nothing; a partial slot means someone terminated instances by hand.
        throw imagoError('PROVIDER_AWS_CONFLICT', `subnet slot ${slot} (${plan.subnets[slot]}) has ${have} of ${want} instances tagged ${TAG_UPGRADE}=${upgradeId}; destroy Unew and start the upgrade again`);
      }
      const res = await withAwsRetry(`RunInstances in unew.aws.subnets[${slot}]`, () => this.c.ec2.send(new RunInstancesCommand({
        ImageId: plan.ami,
        InstanceType: plan.instanceType as never,
        MinCount: want,
        MaxCount: want,
        SubnetId: plan.subnets[slot],
        SecurityGroupIds: [...plan.securityGroups],
        ...(plan.keyName ? { KeyName: plan.keyName } : {}),
        ...(plan.instanceProfile ? { IamInstanceProfile: plan.instanceProfile.startsWith('arn:') ? { Arn: plan.instanceProfile } : { Name: plan.instanceProfile } } : {}),
        UserData: userData,
        ClientToken: clientToken(upgradeId, STEP_APP, slot),
        TagSpecifications: [
          { ResourceType: 'instance', Tags: instanceTags(upgradeId, slot) },
          { ResourceType: 'volume', Tags: instanceTags(upgradeId, slot) },
        ],
      })), this.retry);
      launched.push(...(res.Instances ?? []).map((i) => i.InstanceId!));
    }
    // Wait on the ids we know (adopted + just launched), not on a fresh Describe:
    // on AWS a new instance can take a moment to appear in DescribeInstances.
    return this.waitRunning(upgradeId, [...existing.map((i) => i.instanceId), ...launched], plan.timeouts.instancesRunningMs);
  }

  /** Polls until every instance is running; an instance that stops or terminates on its own fails the step at once. */
  async waitRunning(upgradeId: string, ids: string[], timeoutMs: number): Promise<FleetInstance[]> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const fleet = (await this.findFleet(upgradeId)).filter((i) => ids.includes(i.instanceId));
      // An id missing from the tagged live set is either not visible yet (eventual consistency) or terminated: ask for it by id.
      const missing = ids.filter((id) => !fleet.some((i) => i.instanceId === id));
      const gone = missing.length ? await this.terminatedAmong(missing) : [];
      const down = fleet.filter((i) => i.state === 'stopping' || i.state === 'stopped');
      if (gone.length || down.length) {
        throw imagoError('PROVIDER_AWS_CAPACITY', `instances ${[...gone, ...down.map((i) => i.instanceId)].join(', ')} stopped or terminated while starting (often capacity or a boot failure); check their state reason`);
      }
      if (!missing.length && fleet.every((i) => i.state === 'running')) return fleet;
      if (Date.now() >= deadline) {
        const waiting = [...missing.map((id) => `${id}=not visible`), ...fleet.filter((i) => i.state !== 'running').map((i) => `${i.instanceId}=${i.state}`)];
        throw imagoError('PROVIDER_AWS_TIMEOUT', `instances not running after ${timeoutMs} ms: ${waiting.join(', ')}`);
      }
      await new Promise((r) => setTimeout(r, this.pollMs));
    }
  }

  private async terminatedAmong(ids: string[]): Promise<string[]> {
    try {
      const res = await withAwsRetry('DescribeInstances by id', () => this.c.ec2.send(new DescribeInstancesCommand({ InstanceIds: ids })), this.retry);
      return (res.Reservations ?? []).flatMap((r) => r.Instances ?? []).filter((i) => ['shutting-down', 'terminated'].includes(i.State?.Name ?? '')).map((i) => i.InstanceId!);
    } catch (err) {
      if ((err as { code?: string }).code === 'PROVIDER_AWS_INVALID') return []; // InvalidInstanceID.NotFound: not visible yet
      throw err;
    }
  }

  /** Terminates every instance tagged for this upgrade; returns their ids. Safe to repeat. */
  async terminateFleet(upgradeId: string): Promise<string[]> {
    const ids = (await this.findFleet(upgradeId)).map((i) => i.instanceId);
    for (let k = 0; k < ids.length; k += 500) {
      const batch = ids.slice(k, k + 500);
      await withAwsRetry(`TerminateInstances ${batch.length} instance(s) of ${upgradeId}`, () => this.c.ec2.send(new TerminateInstancesCommand({ InstanceIds: batch })), this.retry);
    }
    return ids;
  }
}
