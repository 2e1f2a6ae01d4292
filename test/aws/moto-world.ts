/**
 * What a user prepares before an upgrade on AWS, created in moto with the
 * SDK (directly, not through the realism proxy: this is the user's set-up,
 * not the provider's calls), in the documented topology:
 *
 *   clients → ALB "shop" ─ listener HTTP:80 ─ default ───────────────→ group "uold" (the interceptor host)
 *                        │                  ├ rule 10 /api/*  ────────→ "uold"
 *                        │                  ├ rule 20 /admin/* (OIDC) → "uold"
 *                        │                  ├ rule 30 /maintenance ───→ fixed response (untouched)
 *                        │                  └ rule 40 /static/* ──────→ group "static" (untouched)
 *                        └ listener HTTP:8080 ─ default ──────────────→ "uold"
 *
 * Unew's security group lets the VPC (the load balancer's subnets and the
 * interceptor host) reach 8080. The interceptor host is an EC2 instance
 * registered in "uold": Uold's fleet, as retireUold sees it.
 */
import {
  AuthorizeSecurityGroupIngressCommand, CreateSecurityGroupCommand, CreateSubnetCommand, CreateVpcCommand,
  DescribeImagesCommand, EC2Client, RunInstancesCommand,
} from '@aws-sdk/client-ec2';
import {
  CreateListenerCommand, CreateLoadBalancerCommand, CreateRuleCommand, CreateTargetGroupCommand, ElasticLoadBalancingV2Client,
  RegisterTargetsCommand,
} from '@aws-sdk/client-elastic-load-balancing-v2';
import { PutParameterCommand, SSMClient } from '@aws-sdk/client-ssm';

export const CREDENTIALS = { accessKeyId: 'testing', secretAccessKey: 'testing' };
export const REGION = 'us-east-1';
/** The SSM parameter holding Unew's app database URL (with its password): the instance reads it, nobody else. */
export const DB_URL_PARAM = '/auction/v2/database-url';
/** The tag the instance simulator sets on each instance it booted: where its app answers on loopback. */
export const SIM_ADDRESS_TAG = 'imago-sim:address';

export interface World {
  ec2: EC2Client; elb: ElasticLoadBalancingV2Client; ssm: SSMClient;
  vpcId: string; subnets: string[]; sg: string; lbSg: string; ami: string;
  lbArn: string; listenerArn: string; otherListenerArn: string;
  apiRuleArn: string; adminRuleArn: string; maintenanceRuleArn: string; staticRuleArn: string;
  uoldTg: string; staticTg: string; interceptorId: string;
}

/** Sets the app's database URL in SSM (a SecureString), as the user would. */
export async function putDbUrl(w: World, url: string): Promise<void> {
  await w.ssm.send(new PutParameterCommand({ Name: DB_URL_PARAM, Value: url, Type: 'SecureString', Overwrite: true }));
}

export async function createWorld(motoEndpoint: string): Promise<World> {
  const cfg = { endpoint: motoEndpoint, region: REGION, credentials: CREDENTIALS };
  const ec2 = new EC2Client(cfg);
  const elb = new ElasticLoadBalancingV2Client(cfg);
  const ssm = new SSMClient(cfg);
  const vpcId = (await ec2.send(new CreateVpcCommand({ CidrBlock: '10.20.0.0/16' }))).Vpc!.VpcId!;
  const subnets: string[] = [];
  for (const [i, az] of ['us-east-1a', 'us-east-1b'].entries()) {
    subnets.push((await ec2.send(new CreateSubnetCommand({ VpcId: vpcId, CidrBlock: `10.20.${i}.0/24`, AvailabilityZone: az }))).Subnet!.SubnetId!);
  }
  const lbSg = (await ec2.send(new CreateSecurityGroupCommand({ GroupName: 'shop-lb', Description: 'load balancer', VpcId: vpcId }))).GroupId!;
  const sg = (await ec2.send(new CreateSecurityGroupCommand({ GroupName: 'unew-app', Description: 'Unew app', VpcId: vpcId }))).GroupId!;
  await ec2.send(new AuthorizeSecurityGroupIngressCommand({ GroupId: sg, IpPermissions: [{ IpProtocol: 'tcp', FromPort: 8080, ToPort: 8080, IpRanges: [{ CidrIp: '10.20.0.0/16' }] }] }));
  const ami = (await ec2.send(new DescribeImagesCommand({ Owners: ['amazon'] }))).Images!.find((i) => /^ami-[0-9a-f]{8,17}$/.test(i.ImageId!))!.ImageId!;
  const lbArn = (await elb.send(new CreateLoadBalancerCommand({ Name: 'shop', Subnets: subnets, SecurityGroups: [lbSg], Scheme: 'internal' }))).LoadBalancers![0].LoadBalancerArn!;
  const uoldTg = (await elb.send(new CreateTargetGroupCommand({ Name: 'uold', Protocol: 'HTTP', Port: 8080, VpcId: vpcId }))).TargetGroups![0].TargetGroupArn!;
  const staticTg = (await elb.send(new CreateTargetGroupCommand({ Name: 'static', Protocol: 'HTTP', Port: 8080, VpcId: vpcId }))).TargetGroups![0].TargetGroupArn!;
  const interceptorId = (await ec2.send(new RunInstancesCommand({
    ImageId: ami, MinCount: 1, MaxCount: 1, SubnetId: subnets[0], SecurityGroupIds: [lbSg],
    TagSpecifications: [{ ResourceType: 'instance', Tags: [{ Key: 'Name', Value: 'uold-interceptor' }] }],
  }))).Instances![0].InstanceId!;
  await elb.send(new RegisterTargetsCommand({ TargetGroupArn: uoldTg, Targets: [{ Id: interceptorId }] }));
  const fwd = (tg: string) => [{ Type: 'forward' as const, TargetGroupArn: tg }];
  const listenerArn = (await elb.send(new CreateListenerCommand({ LoadBalancerArn: lbArn, Protocol: 'HTTP', Port: 80, DefaultActions: fwd(uoldTg) }))).Listeners![0].ListenerArn!;
  const otherListenerArn = (await elb.send(new CreateListenerCommand({ LoadBalancerArn: lbArn, Protocol: 'HTTP', Port: 8080, DefaultActions: fwd(uoldTg) }))).Listeners![0].ListenerArn!;
  const rule = async (Priority: number, path: string, Actions: any[]) => (await elb.send(new CreateRuleCommand({
    ListenerArn: listenerArn, Priority, Conditions: [{ Field: 'path-pattern', Values: [path] }], Actions,
  }))).Rules![0].RuleArn!;
  const apiRuleArn = await rule(10, '/api/*', fwd(uoldTg));
  const adminRuleArn = await rule(20, '/admin/*', [
    { Type: 'authenticate-oidc', Order: 1, AuthenticateOidcConfig: { Issuer: 'https://idp.example.com', AuthorizationEndpoint: 'https://idp.example.com/auth', TokenEndpoint: 'https://idp.example.com/token', UserInfoEndpoint: 'https://idp.example.com/userinfo', ClientId: 'shop', ClientSecret: 'oidc-client-secret' } },
    { Type: 'forward', Order: 2, TargetGroupArn: uoldTg },
  ]);
  const maintenanceRuleArn = await rule(30, '/maintenance', [{ Type: 'fixed-response', FixedResponseConfig: { StatusCode: '503', ContentType: 'text/plain', MessageBody: 'maintenance' } }]);
  const staticRuleArn = await rule(40, '/static/*', fwd(staticTg));
  return { ec2, elb, ssm, vpcId, subnets, sg, lbSg, ami, lbArn, listenerArn, otherListenerArn, apiRuleArn, adminRuleArn, maintenanceRuleArn, staticRuleArn, uoldTg, staticTg, interceptorId };
}

export function destroyWorld(w: World | undefined): void {
  w?.ec2.destroy(); w?.elb.destroy(); w?.ssm.destroy();
}

/**
 * A valid `unew` section for the world. The app URL is read from the tag the
 * instance simulator sets (`unew.aws.appUrl` with {tag:KEY}): the worker and
 * the interceptors reach each simulated instance on loopback, never at the
 * private address moto invented.
 */
export function unewSection(w: World, endpoint: string, over: Record<string, unknown> = {}, app?: { command: string[]; env?: Record<string, string> }): Record<string, unknown> {
  return {
    ...(app ? { app: { env: {}, healthPath: '/health', ...app } } : {}),
    aws: {
      region: REGION, endpoint, ami: w.ami, instanceType: 't3.micro', count: 3, subnets: w.subnets, securityGroups: [w.sg],
      appPort: 8080, appUrl: `http://{tag:${SIM_ADDRESS_TAG}}`, workDir: '/',
      secretEnv: { DATABASE_URL: `ssm:${DB_URL_PARAM}` },
      uoldTargetGroupArn: w.uoldTg, workerCidr: '10.20.0.0/24',
      healthCheck: { path: '/health', intervalSeconds: 5, timeoutSeconds: 2, healthyThreshold: 2 },
      database: { adminUrlRef: 'env:IMAGO_TEST_UNEW_ADMIN_URL', endpoint: '127.0.0.1:3306', database: 'shop', appUser: 'auction_v2' },
      timeouts: { instancesRunningMs: 60_000, targetsHealthyMs: 60_000 },
      ...over,
    },
  };
}
