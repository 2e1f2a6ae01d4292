/**
 * Read-only preflight of the plan's AWS resources and of the topology, run
 * before anything is created. All problems are reported together, each with
 * its plan path or the resource it concerns:
 *   - the AMI exists and is available; subnets and security groups exist and
 *     share one VPC, the load balancer's;
 *   - Uold's target group exists, some load balancer uses it, and every
 *     listener and rule that forwards to it can be switched (topology.ts);
 *   - each subnet's Availability Zone is enabled on the load balancer (a
 *     target elsewhere is `unused` and never receives traffic);
 *   - Unew's security groups let in, on appPort, the load balancer (its
 *     health checks and, after the swap, all traffic), the ingress
 *     interceptors (Uold's group's targets, which release held requests to
 *     Unew) and, when the plan says where it runs, the worker;
 *   - each secret reference names an existing SSM parameter (metadata only:
 *     the worker never reads the instance's secrets).
 * Permission and throttling errors pass through as themselves.
 */
import {
  DescribeImagesCommand, DescribeInstancesCommand, DescribeSecurityGroupsCommand, DescribeSubnetsCommand, type IpPermission,
} from '@aws-sdk/client-ec2';
import { DescribeLoadBalancersCommand, type LoadBalancer } from '@aws-sdk/client-elastic-load-balancing-v2';
import { DescribeParametersCommand } from '@aws-sdk/client-ssm';
import { imagoError } from '../../lib/errors';
import { call, lookup } from './classify';
import type { AwsClients } from './clients';
import type { AwsPlan } from './plan-schema';
import { TargetGroups } from './target-group';
import { classifyForwarder, describeForwarders } from './topology';
import { ssmName } from './user-data';

export interface PreflightResult {
  vpcId: string;
  loadBalancerArns: string[];
  /** Uold's group's protocol: Unew's group gets the same, so every listener accepts it. */
  protocol: string;
  /** The Application Load Balancer listener that carries the probe rule. */
  probeListenerArn: string;
  /** How many listener default actions and rules forward to Uold's group (all switched). */
  forwarders: string[];
  notes: string[];
}

// --- pure helpers (unit-tested) --------------------------------------------

function ipToInt(ip: string): number {
  return ip.split('.').reduce((n, o) => (n * 256) + Number(o), 0);
}

function parseCidr(cidr: string): { base: number; bits: number } {
  const [ip, bits] = cidr.split('/');
  return { base: ipToInt(ip), bits: Number(bits) };
}

/** True when `inner` (a CIDR or an address) lies inside `outer` (a CIDR). */
export function cidrContains(outer: string, inner: string): boolean {
  const o = parseCidr(outer);
  const i = inner.includes('/') ? parseCidr(inner) : { base: ipToInt(inner), bits: 32 };
  if (i.bits < o.bits) return false;
  const size = 2 ** (32 - o.bits);
  return Math.floor(i.base / size) === Math.floor(o.base / size);
}

export interface Source { name: string; groups?: string[]; cidrs?: string[] }

/** True when one of the inbound permissions lets `source` reach TCP `port` (by security group, or by CIDR covering all of its addresses). */
export function allows(perms: IpPermission[], port: number, source: Source): boolean {
  const onPort = perms.filter((p) => p.IpProtocol === '-1' || (p.IpProtocol === 'tcp' && (p.FromPort ?? 0) <= port && port <= (p.ToPort ?? 65535)));
  const groups = new Set(source.groups ?? []);
  if (onPort.some((p) => (p.UserIdGroupPairs ?? []).some((g) => g.GroupId && groups.has(g.GroupId)))) return true;
  const cidrs = source.cidrs ?? [];
  if (!cidrs.length) return false;
  const ranges = onPort.flatMap((p) => (p.IpRanges ?? []).map((r) => r.CidrIp!).filter(Boolean));
  return cidrs.every((c) => ranges.some((r) => cidrContains(r, c)));
}

// --- the preflight -------------------------------------------------------------

export async function inspectAws(c: AwsClients, plan: AwsPlan): Promise<PreflightResult> {
  const problems: string[] = [];
  const notes: string[] = [];
  const img = await lookup('DescribeImages', ['InvalidAMIID.NotFound', 'InvalidAMIID.Malformed'], () => c.ec2.send(new DescribeImagesCommand({ ImageIds: [plan.ami] })));
  if (!img?.Images?.length) problems.push(`unew.aws.ami: image ${plan.ami} does not exist or is not visible to this account`);
  else if (img.Images[0].State && img.Images[0].State !== 'available') problems.push(`unew.aws.ami: image ${plan.ami} is ${img.Images[0].State}, not available`);

  const vpcs = new Set<string>();
  const subnetAz = new Map<string, string>();
  for (const [i, id] of plan.subnets.entries()) {
    const s = (await lookup('DescribeSubnets', ['InvalidSubnetID.NotFound', 'InvalidSubnetID.Malformed'], () => c.ec2.send(new DescribeSubnetsCommand({ SubnetIds: [id] }))))?.Subnets?.[0];
    if (!s) problems.push(`unew.aws.subnets[${i}]: subnet ${id} does not exist`);
    else { vpcs.add(s.VpcId!); subnetAz.set(id, s.AvailabilityZone ?? '?'); }
  }
  const perms: IpPermission[] = [];
  for (const [i, id] of plan.securityGroups.entries()) {
    const g = (await lookup('DescribeSecurityGroups', ['InvalidGroup.NotFound', 'InvalidGroupId.Malformed'], () => c.ec2.send(new DescribeSecurityGroupsCommand({ GroupIds: [id] }))))?.SecurityGroups?.[0];
    if (!g) problems.push(`unew.aws.securityGroups[${i}]: security group ${id} does not exist`);
    else { vpcs.add(g.VpcId!); perms.push(...g.IpPermissions ?? []); }
  }
  if (vpcs.size > 1) problems.push(`unew.aws.subnets/securityGroups: they span several VPCs (${[...vpcs].join(', ')}); use one VPC, the load balancer's`);
  const vpcId = vpcs.size === 1 ? [...vpcs][0] : undefined;

  // Uold's group and the load balancers that use it.
  const tgs = new TargetGroups(c);
  const uold = await tgs.describe(plan.uoldTargetGroupArn);
  let lbs: LoadBalancer[] = [];
  if (!uold) problems.push(`unew.aws.uoldTargetGroupArn: target group ${plan.uoldTargetGroupArn} does not exist`);
  else {
    if (vpcId && uold.VpcId !== vpcId) problems.push(`unew.aws.uoldTargetGroupArn: target group is in ${uold.VpcId}, the subnets in ${vpcId}`);
    if (!['HTTP', 'HTTPS'].includes(uold.Protocol ?? '')) problems.push(`unew.aws.uoldTargetGroupArn: its protocol is ${uold.Protocol}; Imago switches HTTP/HTTPS target groups behind an Application Load Balancer`);
    const lbArns = [...new Set(uold.LoadBalancerArns ?? [])];
    if (!lbArns.length) problems.push(`unew.aws.uoldTargetGroupArn: no load balancer uses target group ${plan.uoldTargetGroupArn}: nothing to switch`);
    else lbs = (await call('DescribeLoadBalancers', () => c.elb.send(new DescribeLoadBalancersCommand({ LoadBalancerArns: lbArns })))).LoadBalancers ?? [];
  }

  // Every listener and rule that forwards to Uold's group; the ones Imago cannot switch are refused with the reason.
  const forwarders = uold ? (await describeForwarders(c, lbs.map((l) => l.LoadBalancerArn!))) : [];
  const toUold = forwarders.filter((f) => !f.probe).map((f) => ({ f, c: classifyForwarder(f, plan.uoldTargetGroupArn, undefined) }))
    .filter((x) => x.c.points === 'uold' || x.c.problem);
  for (const x of toUold) if (x.c.problem) problems.push(x.c.problem);
  const probeOn = toUold.find((x) => !x.c.problem && ['HTTP', 'HTTPS'].includes(x.f.protocol));
  if (uold && lbs.length && !toUold.some((x) => !x.c.problem)) problems.push(`unew.aws.uoldTargetGroupArn: no listener or rule forwards to it with a single-target forward`);

  for (const lb of lbs) {
    if (vpcId && lb.VpcId !== vpcId) problems.push(`load balancer ${lb.LoadBalancerName}: in ${lb.VpcId}, Unew's subnets in ${vpcId}`);
    const zones = new Set((lb.AvailabilityZones ?? []).map((z) => z.ZoneName));
    for (const [i, id] of plan.subnets.entries()) {
      const az = subnetAz.get(id);
      if (az && !zones.has(az)) problems.push(`unew.aws.subnets[${i}]: ${id} is in ${az}, which is not enabled on load balancer ${lb.LoadBalancerName} (${[...zones].join(', ')}): its instances would be 'unused'; enable the zone or choose another subnet`);
    }
  }

  // Security groups: who must reach Unew's instances on appPort.
  if (perms.length || plan.securityGroups.length) {
    for (const lb of lbs) {
      const lbSubnets = (lb.AvailabilityZones ?? []).map((z) => z.SubnetId!).filter(Boolean);
      const cidrs = lbSubnets.length ? ((await call('DescribeSubnets', () => c.ec2.send(new DescribeSubnetsCommand({ SubnetIds: lbSubnets })))).Subnets ?? []).map((s) => s.CidrBlock!) : [];
      if (!allows(perms, plan.appPort, { name: 'the load balancer', groups: lb.SecurityGroups ?? [], cidrs })) {
        problems.push(`unew.aws.securityGroups: no inbound rule lets load balancer ${lb.LoadBalancerName} (security groups ${(lb.SecurityGroups ?? []).join(', ') || 'none'}, subnets ${cidrs.join(', ')}) reach TCP ${plan.appPort}: its health checks and, after the swap, all traffic would fail`);
      }
    }
    if (uold) {
      const targets = [...(await tgs.health(plan.uoldTargetGroupArn)).keys()];
      if (!targets.length) notes.push("Uold's target group has no registered targets: the interceptors' reach to Unew was not checked");
      else {
        const instanceIds = targets.filter((t) => t.startsWith('i-'));
        const ips = targets.filter((t) => /^\d+\.\d+\.\d+\.\d+$/.test(t));
        const groups: string[] = [];
        if (instanceIds.length) {
          const res = await call('DescribeInstances (interceptors)', () => c.ec2.send(new DescribeInstancesCommand({ InstanceIds: instanceIds })));
          for (const i of (res.Reservations ?? []).flatMap((r) => r.Instances ?? [])) {
            groups.push(...(i.SecurityGroups ?? []).map((g) => g.GroupId!));
            if (i.PrivateIpAddress) ips.push(i.PrivateIpAddress);
          }
        }
        if (!allows(perms, plan.appPort, { name: 'the interceptors', groups, cidrs: ips })) {
          problems.push(`unew.aws.securityGroups: no inbound rule lets the interceptors (the targets of Uold's group: ${targets.join(', ')}) reach TCP ${plan.appPort}: requests held during the swap could not be released to Unew`);
        }
      }
    }
    if (plan.workerCidr && !allows(perms, plan.appPort, { name: 'the worker', cidrs: [plan.workerCidr] })) {
      problems.push(`unew.aws.securityGroups: no inbound rule lets the worker (unew.aws.workerCidr ${plan.workerCidr}) reach TCP ${plan.appPort}: health probes, tests and mirrored traffic would fail`);
    }
    if (!plan.workerCidr) notes.push("the worker's reach to Unew is checked by the health wait (unew.aws.workerCidr not set)");
  }

  // Secrets: each named parameter exists (its value is never read here).
  const names = Object.entries(plan.secretEnv).map(([k, ref]) => ({ k, name: ssmName(ref) }));
  const checkable = names.filter((n) => !n.name.startsWith('/aws/reference/'));
  if (names.length > checkable.length) notes.push('Secrets Manager references (/aws/reference/secretsmanager/...) are checked on the instance only');
  for (let i = 0; i < checkable.length; i += 50) {
    const batch = checkable.slice(i, i + 50);
    const res = await call('DescribeParameters', () => c.ssm.send(new DescribeParametersCommand({ ParameterFilters: [{ Key: 'Name', Option: 'Equals', Values: batch.map((b) => b.name) }] })));
    const found = new Set((res.Parameters ?? []).map((p) => p.Name));
    for (const b of batch) if (!found.has(b.name)) problems.push(`unew.aws.secretEnv.${b.k}: SSM parameter ${b.name} does not exist in ${c.region || 'the region'}`);
  }

  if (problems.length || !vpcId || !probeOn) {
    throw imagoError('PROVIDER_AWS_INVALID', problems.join('; ') || (!vpcId ? 'unew.aws.subnets: no VPC found' : 'no HTTP or HTTPS listener forwards to Uold\'s group: nowhere to attach the probe rule'));
  }
  return {
    vpcId, loadBalancerArns: lbs.map((l) => l.LoadBalancerArn!), protocol: uold!.Protocol ?? 'HTTP', probeListenerArn: probeOn.f.listenerArn,
    forwarders: toUold.map((x) => x.f.where), notes,
  };
}
