/**
 * Test helpers for the AWS provider against moto: the resources a user
 * prepares (VPC, two subnets, security group, ALB, listener with a rule,
 * Uold's target group) created with the SDK, and a simulated fleet that
 * pairs each instance moto reports with a local HTTP server on 127.0.0.1.
 *
 * What is simulated: moto's instances run nothing and its private addresses
 * are invented, so no traffic ever goes to them. Each "instance" is instead
 * a loopback server that "boots" from the instance's own user data as moto
 * stored it (it reads DB_URL from the script) and answers /health 200 only
 * while that database answers SELECT 1. moto's target health is always
 * "healthy"; the loopback probe is what can fail.
 */
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as mysql from 'mysql2/promise';
import {
  AuthorizeSecurityGroupIngressCommand, CreateSecurityGroupCommand, CreateSubnetCommand, CreateVpcCommand,
  DescribeImagesCommand, DescribeInstanceAttributeCommand, EC2Client,
} from '@aws-sdk/client-ec2';
import {
  CreateListenerCommand, CreateLoadBalancerCommand, CreateRuleCommand, CreateTargetGroupCommand, ElasticLoadBalancingV2Client,
} from '@aws-sdk/client-elastic-load-balancing-v2';
import type { FleetInstance } from '../../providers/aws/provisioner';

export const CREDENTIALS = { accessKeyId: 'testing', secretAccessKey: 'testing' };
export const REGION = 'us-east-1';

export interface World {
  ec2: EC2Client; elb: ElasticLoadBalancingV2Client;
  vpcId: string; subnets: string[]; sg: string; ami: string;
  lbArn: string; listenerArn: string; ruleArn: string; uoldTg: string;
}

export async function createWorld(endpoint: string): Promise<World> {
  const cfg = { endpoint, region: REGION, credentials: CREDENTIALS };
  const ec2 = new EC2Client(cfg);
  const elb = new ElasticLoadBalancingV2Client(cfg);
  const vpcId = (await ec2.send(new CreateVpcCommand({ CidrBlock: '10.20.0.0/16' }))).Vpc!.VpcId!;
  const subnets: string[] = [];
  for (const [i, az] of ['us-east-1a', 'us-east-1b'].entries()) {
    subnets.push((await ec2.send(new CreateSubnetCommand({ VpcId: vpcId, CidrBlock: `10.20.${i}.0/24`, AvailabilityZone: az }))).Subnet!.SubnetId!);
  }
  const sg = (await ec2.send(new CreateSecurityGroupCommand({ GroupName: 'unew-app', Description: 'Unew app', VpcId: vpcId }))).GroupId!;
  await ec2.send(new AuthorizeSecurityGroupIngressCommand({ GroupId: sg, IpPermissions: [{ IpProtocol: 'tcp', FromPort: 8080, ToPort: 8080, IpRanges: [{ CidrIp: '10.20.0.0/16' }] }] }));
  const ami = (await ec2.send(new DescribeImagesCommand({ Owners: ['amazon'] }))).Images!.find((i) => /^ami-[0-9a-f]{8,17}$/.test(i.ImageId!))!.ImageId!;
  const lbArn = (await elb.send(new CreateLoadBalancerCommand({ Name: 'shop', Subnets: subnets, SecurityGroups: [sg], Scheme: 'internal' }))).LoadBalancers![0].LoadBalancerArn!;
  const uoldTg = (await elb.send(new CreateTargetGroupCommand({ Name: 'uold', Protocol: 'HTTP', Port: 8080, VpcId: vpcId }))).TargetGroups![0].TargetGroupArn!;
  const listenerArn = (await elb.send(new CreateListenerCommand({ LoadBalancerArn: lbArn, Protocol: 'HTTP', Port: 80, DefaultActions: [{ Type: 'forward', TargetGroupArn: uoldTg }] }))).Listeners![0].ListenerArn!;
  const ruleArn = (await elb.send(new CreateRuleCommand({
    ListenerArn: listenerArn, Priority: 10, Conditions: [{ Field: 'path-pattern', Values: ['/api/*'] }], Actions: [{ Type: 'forward', TargetGroupArn: uoldTg }],
  }))).Rules![0].RuleArn!;
  return { ec2, elb, vpcId, subnets, sg, ami, lbArn, listenerArn, ruleArn, uoldTg };
}

/** A valid `unew` section for the world; DB URLs come from env vars the test sets. */
export function unewSection(w: World, endpoint: string, over: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    aws: {
      region: REGION, endpoint, ami: w.ami, instanceType: 't3.micro', count: 3, subnets: w.subnets, securityGroups: [w.sg],
      userData: '#!/bin/sh\nexport DB_URL={{UNEW_DB_URL}}\nexec /opt/shop-v2/start --port 8080\n', appPort: 8080,
      listenerArn: w.listenerArn, ruleArns: [w.ruleArn], uoldTargetGroupArn: w.uoldTg,
      healthCheck: { path: '/health', intervalSeconds: 5, timeoutSeconds: 2, healthyThreshold: 2 },
      database: { adminUrlRef: 'env:IMAGO_TEST_UNEW_ADMIN_URL', appUrlRef: 'env:IMAGO_TEST_UNEW_APP_URL', endpoint: '127.0.0.1:3306', database: 'shop' },
      timeouts: { instancesRunningMs: 10_000, targetsHealthyMs: 10_000 },
      ...over,
    },
  };
}

/** Pairs moto's instances with loopback servers booted from their user data. */
export class SimulatedFleet {
  readonly servers = new Map<string, { server: http.Server; url: string; dbUrl: string }>();

  constructor(private readonly ec2: EC2Client) {}

  appUrlFor = async (inst: FleetInstance): Promise<string> => {
    const known = this.servers.get(inst.instanceId);
    if (known) return known.url;
    const attr = await this.ec2.send(new DescribeInstanceAttributeCommand({ InstanceId: inst.instanceId, Attribute: 'userData' }));
    const raw = attr.UserData?.Value ?? '';
    const script = raw.includes('DB_URL=') ? raw : Buffer.from(raw, 'base64').toString('utf8');
    const dbUrl = /DB_URL=(\S+)/.exec(script)?.[1] ?? '';
    const server = http.createServer((req, res) => { void this.answer(inst.instanceId, dbUrl, req.url ?? '/', res); });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
    this.servers.set(inst.instanceId, { server, url, dbUrl });
    return url;
  };

  private async answer(id: string, dbUrl: string, path: string, res: http.ServerResponse): Promise<void> {
    let ok = false;
    try {
      const c = await mysql.createConnection({ uri: dbUrl, connectTimeout: 2_000 });
      try { await c.query('SELECT 1'); ok = true; } finally { await c.end(); }
    } catch { ok = false; }
    res.writeHead(ok ? 200 : 503, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ instance: id, version: 'v2', path, db: ok }));
  }

  async stop(): Promise<void> {
    for (const { server } of this.servers.values()) await new Promise((r) => server.close(r));
    this.servers.clear();
  }
}
