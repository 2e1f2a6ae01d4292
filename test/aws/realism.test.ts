/**
 * The realism layer (test/aws/realism.ts), behaviour by behaviour: each one
 * shown through the proxy, and where it matters, next to moto's own answer
 * to the same call (what the tests would see without the layer).
 */
import { strict as assert } from 'node:assert';
import {
  CreateSubnetCommand, DescribeInstancesCommand, EC2Client, RunInstancesCommand, TerminateInstancesCommand,
} from '@aws-sdk/client-ec2';
import {
  CreateListenerCommand, CreateLoadBalancerCommand, CreateRuleCommand, CreateTargetGroupCommand, DeleteRuleCommand, DeleteTargetGroupCommand,
  DescribeRulesCommand, DescribeTargetHealthCommand, ElasticLoadBalancingV2Client, ModifyListenerCommand, ModifyRuleCommand, RegisterTargetsCommand,
} from '@aws-sdk/client-elastic-load-balancing-v2';
import type { MotoServer } from '../../lib/moto';
import { motoFixture } from '../fixtures/servers';
import { CREDENTIALS, createWorld, destroyWorld, REGION, type World } from './moto-world';
import { RealismProxy } from './realism';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('aws realism layer: documented AWS behaviours moto lacks', function () {
  this.timeout(60_000);
  let moto: MotoServer;
  let proxy: RealismProxy;
  let w: World;
  let ec2: EC2Client; let elb: ElasticLoadBalancingV2Client;
  const clients = (endpoint: string, maxAttempts = 1) => {
    const cfg = { endpoint, region: REGION, credentials: CREDENTIALS, maxAttempts };
    return { ec2: new EC2Client(cfg), elb: new ElasticLoadBalancingV2Client(cfg) };
  };

  before(async () => {
    moto = await motoFixture();
    proxy = await new RealismProxy(moto.endpoint, { timeScale: 0.1 }).start();
  });
  after(async () => { await proxy?.stop(); });
  beforeEach(async () => {
    await moto.reset();
    proxy.reset({ throttleRate: 0, releaseLagMs: 0, eventualConsistency: true, timeScale: 0.1 });
    w = await createWorld(moto.endpoint);
    ({ ec2, elb } = clients(proxy.endpoint));
  });
  afterEach(() => { destroyWorld(w); ec2.destroy(); elb.destroy(); });

  const launch = async (c: EC2Client, ClientToken?: string, InstanceType = 't3.micro') =>
    c.send(new RunInstancesCommand({ ImageId: w.ami, InstanceType: InstanceType as never, MinCount: 1, MaxCount: 1, SubnetId: w.subnets[0], ...(ClientToken ? { ClientToken } : {}) }));
  const stateOf = async (tg: string, id: string) => (await elb.send(new DescribeTargetHealthCommand({ TargetGroupArn: tg }))).TargetHealthDescriptions!.find((d) => d.Target?.Id === id)!.TargetHealth!;

  it('1-2. unused while no listener or rule uses the group; initial for interval × healthy threshold once used; then healthy', async () => {
    const tg = (await elb.send(new CreateTargetGroupCommand({ Name: 'fresh', Protocol: 'HTTP', Port: 8080, VpcId: w.vpcId, HealthCheckIntervalSeconds: 5, HealthyThresholdCount: 2 }))).TargetGroups![0].TargetGroupArn!;
    await elb.send(new RegisterTargetsCommand({ TargetGroupArn: tg, Targets: [{ Id: w.interceptorId }] }));
    const direct = clients(moto.endpoint);
    assert.equal((await direct.elb.send(new DescribeTargetHealthCommand({ TargetGroupArn: tg }))).TargetHealthDescriptions![0].TargetHealth!.State, 'healthy', 'moto alone: healthy at once');
    direct.ec2.destroy(); direct.elb.destroy();
    assert.deepEqual(await stateOf(tg, w.interceptorId), { State: 'unused', Reason: 'Target.NotInUse', Description: 'Target group is not configured to receive traffic from the load balancer' });
    const rule = (await elb.send(new CreateRuleCommand({ ListenerArn: w.listenerArn, Priority: 500, Conditions: [{ Field: 'path-pattern', Values: ['/fresh/*'] }], Actions: [{ Type: 'forward', TargetGroupArn: tg }] }))).Rules![0].RuleArn!;
    const usedAt = Date.now();
    assert.deepEqual([(await stateOf(tg, w.interceptorId)).State, (await stateOf(tg, w.interceptorId)).Reason], ['initial', 'Elb.InitialHealthChecking']);
    // 5 s × 2 checks, scaled by 0.1 in this test: about 1 s.
    let healthyAfter = 0;
    while (!healthyAfter) {
      if ((await stateOf(tg, w.interceptorId)).State === 'healthy') healthyAfter = Date.now() - usedAt;
      else await sleep(100);
    }
    assert.ok(healthyAfter >= 950 && healthyAfter < 3_000, `healthy after ${healthyAfter} ms (expected ~1,000)`);
    await elb.send(new DeleteRuleCommand({ RuleArn: rule }));
    assert.equal((await stateOf(tg, w.interceptorId)).State, 'unused', 'unused again once no rule uses it');
    assert.ok(proxy.stats.unused >= 2 && proxy.stats.initial >= 2);
  });

  it('3. ClientToken: same token → the same reservation, also after termination; other parameters → IdempotentParameterMismatch', async () => {
    const a = await launch(ec2, 'tok-1');
    const b = await launch(ec2, 'tok-1');
    assert.equal(b.ReservationId, a.ReservationId);
    assert.deepEqual(b.Instances!.map((i) => i.InstanceId), a.Instances!.map((i) => i.InstanceId));
    await sleep(50);
    await ec2.send(new DescribeInstancesCommand({ InstanceIds: [a.Instances![0].InstanceId!] })).catch(() => undefined); // (the first describe may not find it: behaviour 4)
    await ec2.send(new TerminateInstancesCommand({ InstanceIds: [a.Instances![0].InstanceId!] }));
    const c = await launch(ec2, 'tok-1');
    assert.equal(c.ReservationId, a.ReservationId, 'after termination: still the same reservation');
    const now = (await ec2.send(new DescribeInstancesCommand({ InstanceIds: [c.Instances![0].InstanceId!] }))).Reservations![0].Instances![0];
    assert.equal(now.State?.Name, 'terminated', 'the instance it names is terminated: no new one was launched');
    await assert.rejects(launch(ec2, 'tok-1', 't3.small'), (e: any) => (e.Code ?? e.name) === 'IdempotentParameterMismatch');
    const direct = clients(moto.endpoint);
    const d1 = await launch(direct.ec2, 'tok-2');
    const d2 = await launch(direct.ec2, 'tok-2');
    assert.notEqual(d2.ReservationId, d1.ReservationId, 'moto alone launches a second instance for the same token');
    direct.ec2.destroy(); direct.elb.destroy();
    assert.deepEqual([proxy.stats.tokenReplays, proxy.stats.tokenMismatches], [2, 1]);
  });

  it('4. eventual consistency: the first describe after RunInstances answers InvalidInstanceID.NotFound; the first RegisterTargets answers InvalidTarget', async () => {
    const id = (await launch(ec2)).Instances![0].InstanceId!;
    await assert.rejects(ec2.send(new DescribeInstancesCommand({ InstanceIds: [id] })), (e: any) => (e.Code ?? e.name) === 'InvalidInstanceID.NotFound');
    const again = await ec2.send(new DescribeInstancesCommand({ InstanceIds: [id] }));
    assert.equal(again.Reservations![0].Instances![0].InstanceId, id, 'a moment later it is there');
    const tg = (await elb.send(new CreateTargetGroupCommand({ Name: 'reg', Protocol: 'HTTP', Port: 8080, VpcId: w.vpcId }))).TargetGroups![0].TargetGroupArn!;
    await assert.rejects(elb.send(new RegisterTargetsCommand({ TargetGroupArn: tg, Targets: [{ Id: id }] })), (e: any) => (e.Code ?? e.name) === 'InvalidTarget');
    await elb.send(new RegisterTargetsCommand({ TargetGroupArn: tg, Targets: [{ Id: id }] }));
    assert.deepEqual([proxy.stats.notFound, proxy.stats.invalidTarget], [1, 1]);
  });

  it('5. throttling: RequestLimitExceeded (EC2, 503) and Throttling (ELB, 400) at the seeded rate; the SDK\'s adaptive retry absorbs them', async () => {
    proxy.reset({ throttleRate: 0.3, seed: 7 });
    const errors: string[] = [];
    for (let i = 0; i < 20; i++) {
      await ec2.send(new DescribeInstancesCommand({})).catch((e) => errors.push(`${e.name}/${e.$metadata?.httpStatusCode}`));
      await elb.send(new DescribeRulesCommand({ ListenerArn: w.listenerArn })).catch((e) => errors.push(`${e.name}/${e.$metadata?.httpStatusCode}`));
    }
    assert.ok(errors.length >= 6 && errors.length <= 20, `${errors.length} of 40 calls throttled (maxAttempts 1)`);
    assert.ok(errors.includes('RequestLimitExceeded/503') && errors.includes('Throttling/400'), errors.join(' '));
    const adaptive = { ec2: new EC2Client({ endpoint: proxy.endpoint, region: REGION, credentials: CREDENTIALS, retryMode: 'adaptive', maxAttempts: 6 }) };
    const before = proxy.stats.throttled;
    for (let i = 0; i < 12; i++) await adaptive.ec2.send(new DescribeInstancesCommand({}));
    assert.ok(proxy.stats.throttled > before, 'throttled again, and every call succeeded through the SDK\'s own retry');
    adaptive.ec2.destroy();
  });

  it('6. ModifyListener with a group of another protocol family than the listener\'s: IncompatibleProtocols (moto alone accepts it)', async () => {
    const direct = clients(moto.endpoint);
    const sub = (await direct.ec2.send(new CreateSubnetCommand({ VpcId: w.vpcId, CidrBlock: '10.20.9.0/24', AvailabilityZone: 'us-east-1a' }))).Subnet!.SubnetId!;
    const nlb = (await direct.elb.send(new CreateLoadBalancerCommand({ Name: 'net', Subnets: [sub], Type: 'network', Scheme: 'internal' }))).LoadBalancers![0].LoadBalancerArn!;
    const tcp = (await direct.elb.send(new CreateTargetGroupCommand({ Name: 'tcp', Protocol: 'TCP', Port: 8080, VpcId: w.vpcId }))).TargetGroups![0].TargetGroupArn!;
    const l = (await direct.elb.send(new CreateListenerCommand({ LoadBalancerArn: nlb, Protocol: 'TCP', Port: 80, DefaultActions: [{ Type: 'forward', TargetGroupArn: tcp }] }))).Listeners![0].ListenerArn!;
    await assert.rejects(elb.send(new ModifyListenerCommand({ ListenerArn: l, DefaultActions: [{ Type: 'forward', TargetGroupArn: w.uoldTg }] })), (e: any) => (e.Code ?? e.name) === 'IncompatibleProtocols' && /HTTP/.test(e.message));
    await assert.rejects(elb.send(new ModifyRuleCommand({ RuleArn: w.apiRuleArn, Actions: [{ Type: 'forward', TargetGroupArn: tcp }] })), (e: any) => (e.Code ?? e.name) === 'IncompatibleProtocols');
    await direct.elb.send(new ModifyListenerCommand({ ListenerArn: l, DefaultActions: [{ Type: 'forward', TargetGroupArn: w.uoldTg }] }));
    direct.ec2.destroy(); direct.elb.destroy();
    assert.equal(proxy.stats.incompatible, 2);
  });

  it('7. an OIDC action\'s client secret is never read back; a Modify must keep it with UseExistingClientSecret', async () => {
    const rule = (await elb.send(new DescribeRulesCommand({ RuleArns: [w.adminRuleArn] }))).Rules![0];
    const oidc = rule.Actions!.find((a) => a.Type === 'authenticate-oidc')!;
    assert.equal(oidc.AuthenticateOidcConfig!.ClientSecret, undefined);
    assert.equal(oidc.AuthenticateOidcConfig!.ClientId, 'shop');
    await assert.rejects(elb.send(new ModifyRuleCommand({ RuleArn: w.adminRuleArn, Actions: rule.Actions })), (e: any) => (e.Code ?? e.name) === 'ValidationError');
    const keep = rule.Actions!.map((a) => a.Type === 'authenticate-oidc' ? { ...a, AuthenticateOidcConfig: { ...a.AuthenticateOidcConfig!, UseExistingClientSecret: true } } : a);
    await elb.send(new ModifyRuleCommand({ RuleArn: w.adminRuleArn, Actions: keep }));
  });

  it('8. DeleteTargetGroup right after its last rule went away: ResourceInUse for releaseLagMs, then deleted', async () => {
    proxy.reset({ releaseLagMs: 1_500 });
    const tg = (await elb.send(new CreateTargetGroupCommand({ Name: 'lag', Protocol: 'HTTP', Port: 8080, VpcId: w.vpcId }))).TargetGroups![0].TargetGroupArn!;
    const rule = (await elb.send(new CreateRuleCommand({ ListenerArn: w.listenerArn, Priority: 600, Conditions: [{ Field: 'path-pattern', Values: ['/lag'] }], Actions: [{ Type: 'forward', TargetGroupArn: tg }] }))).Rules![0].RuleArn!;
    // The layer notes the group in use in the background; a describe of its health waits for that note.
    await elb.send(new DescribeTargetHealthCommand({ TargetGroupArn: tg }));
    await elb.send(new DeleteRuleCommand({ RuleArn: rule }));
    await assert.rejects(elb.send(new DeleteTargetGroupCommand({ TargetGroupArn: tg })), (e: any) => (e.Code ?? e.name) === 'ResourceInUse');
    await sleep(1_600);
    await elb.send(new DeleteTargetGroupCommand({ TargetGroupArn: tg }));
    assert.equal(proxy.stats.inUse, 1);
  });
});
