import { strict as assert } from 'node:assert';
import { DescribeInstancesCommand, DescribeVolumesCommand, type Instance } from '@aws-sdk/client-ec2';
import {
  DescribeListenersCommand, DescribeRulesCommand, DescribeTargetGroupsCommand, DescribeTargetHealthCommand, ModifyListenerCommand,
} from '@aws-sdk/client-elastic-load-balancing-v2';
import { isImagoError } from '../../lib/errors';
import type { MotoServer } from '../../lib/moto';
import { createAwsProvider } from '../../providers/aws/aws-provider';
import { createAwsClients, destroyClients } from '../../providers/aws/clients';
import { validateAwsPlan } from '../../providers/aws/plan-schema';
import { Provisioner } from '../../providers/aws/provisioner';
import { TAG_UPGRADE } from '../../providers/aws/naming';
import { mariadbFixture, motoFixture } from '../fixtures/servers';
import { CREDENTIALS, createWorld, SimulatedFleet, unewSection, type World } from './moto-world';

describe('aws provider against moto', function () {
  let moto: MotoServer;
  let w: World;
  let fleet: SimulatedFleet;
  let goodDbUrl = '';

  before(async () => {
    moto = await motoFixture();
    const db = await mariadbFixture();
    await db.createDatabase('shop');
    goodDbUrl = `mysql://root@127.0.0.1:${db.port}/shop`;
  });

  beforeEach(async () => {
    await moto.reset();
    w = await createWorld(moto.endpoint);
    fleet = new SimulatedFleet(w.ec2);
    process.env.IMAGO_TEST_UNEW_ADMIN_URL = goodDbUrl;
    process.env.IMAGO_TEST_UNEW_APP_URL = goodDbUrl;
  });

  afterEach(async () => {
    await fleet.stop();
    w.ec2.destroy(); w.elb.destroy();
    delete process.env.IMAGO_TEST_UNEW_ADMIN_URL; delete process.env.IMAGO_TEST_UNEW_APP_URL;
  });

  const provider = () => createAwsProvider({ client: { credentials: CREDENTIALS }, appUrlFor: fleet.appUrlFor, pollMs: 100, retry: { baseMs: 10 } });

  async function liveInstances(upgradeId: string): Promise<Instance[]> {
    const res = await w.ec2.send(new DescribeInstancesCommand({ Filters: [{ Name: `tag:${TAG_UPGRADE}`, Values: [upgradeId] }, { Name: 'instance-state-name', Values: ['pending', 'running'] }] }));
    return (res.Reservations ?? []).flatMap((r) => r.Instances ?? []);
  }
  async function forwards(): Promise<{ listener: string | undefined; rule: string | undefined }> {
    const l = (await w.elb.send(new DescribeListenersCommand({ ListenerArns: [w.listenerArn] }))).Listeners![0];
    const r = (await w.elb.send(new DescribeRulesCommand({ ListenerArn: w.listenerArn }))).Rules!.find((x) => x.RuleArn === w.ruleArn)!;
    return { listener: l.DefaultActions![0].TargetGroupArn, rule: r.Actions![0].TargetGroupArn };
  }
  async function targetGroupNames(): Promise<string[]> {
    return ((await w.elb.send(new DescribeTargetGroupsCommand({}))).TargetGroups ?? []).map((t) => t.TargetGroupName!).sort();
  }

  it('provisions, registers, waits healthy, switches, rolls back and tears down, with the AWS state asserted', async () => {
    const p = provider();
    const req = { upgradeId: 'up-lifecycle', unew: unewSection(w, moto.endpoint) };
    let h = await p.provisionDatabase(req);
    assert.equal(h.db.adminUrlRef, 'env:IMAGO_TEST_UNEW_ADMIN_URL');
    assert.ok(!JSON.stringify(h).includes(goodDbUrl), 'no database URL in the handle');
    h = await p.startApplication(h, req);

    const insts = await liveInstances('up-lifecycle');
    assert.equal(insts.length, 3);
    assert.deepEqual(insts.map((i) => i.SubnetId).sort(), [w.subnets[0], w.subnets[0], w.subnets[1]].sort(), '3 instances spread 2+1 over the subnets');
    assert.ok(insts.every((i) => i.State?.Name === 'running' && i.ImageId === w.ami && i.InstanceType === 't3.micro'));
    assert.ok(insts.every((i) => i.Tags?.some((t) => t.Key === 'imago:role' && t.Value === 'unew-app')));
    const vols = await w.ec2.send(new DescribeVolumesCommand({ Filters: [{ Name: `tag:${TAG_UPGRADE}`, Values: ['up-lifecycle'] }] }));
    assert.equal(vols.Volumes?.length, 3, 'every root volume is tagged');

    const s = h.state as { targetGroupArn: string; instanceIds: string[] };
    const tg = (await w.elb.send(new DescribeTargetGroupsCommand({ TargetGroupArns: [s.targetGroupArn] }))).TargetGroups![0];
    assert.deepEqual([tg.VpcId, tg.Port, tg.HealthCheckPath, tg.HealthCheckIntervalSeconds, tg.HealthyThresholdCount], [w.vpcId, 8080, '/health', 5, 2]);
    const th = await w.elb.send(new DescribeTargetHealthCommand({ TargetGroupArn: s.targetGroupArn }));
    assert.deepEqual(th.TargetHealthDescriptions!.map((d) => d.Target!.Id).sort(), [...s.instanceIds].sort());
    assert.equal(h.appUrls.length, 3);
    assert.ok(h.appUrls.every((u) => u.startsWith('http://127.0.0.1:')), 'traffic only to loopback');

    await p.waitHealthy(h, 10_000);
    const body = await (await fetch(new URL('/', h.appUrls[0]))).json() as { db: boolean; version: string };
    assert.deepEqual([body.version, body.db], ['v2', true], "the simulated instance booted from its user data with Unew's DB URL");

    assert.deepEqual(await forwards(), { listener: w.uoldTg, rule: w.uoldTg });
    await p.switchTraffic(h, 'unew');
    assert.deepEqual(await forwards(), { listener: s.targetGroupArn, rule: s.targetGroupArn });
    await p.switchTraffic(h, 'unew'); // idempotent
    assert.deepEqual(await forwards(), { listener: s.targetGroupArn, rule: s.targetGroupArn });

    await assert.rejects(p.destroy('up-lifecycle', req.unew), (e) => isImagoError(e, 'PROVIDER_AWS_IN_USE'));
    assert.equal((await liveInstances('up-lifecycle')).length, 3, 'refused teardown touched nothing');

    await p.switchTraffic(h, 'uold');
    assert.deepEqual(await forwards(), { listener: w.uoldTg, rule: w.uoldTg });

    await p.destroy('up-lifecycle', req.unew);
    assert.equal((await liveInstances('up-lifecycle')).length, 0);
    const all = await w.ec2.send(new DescribeInstancesCommand({ InstanceIds: s.instanceIds }));
    assert.deepEqual(all.Reservations!.flatMap((r) => r.Instances!).map((i) => i.State!.Name), ['terminated', 'terminated', 'terminated']);
    assert.deepEqual(await targetGroupNames(), ['uold']);
    await p.destroy('up-lifecycle', req.unew); // idempotent
  });

  it('a retried startApplication creates no second fleet and no second target group', async () => {
    const p = provider();
    const req = { upgradeId: 'up-retry', unew: unewSection(w, moto.endpoint, { count: 2 }) };
    const h0 = await p.provisionDatabase(req);
    const a = await p.startApplication(h0, req);
    const b = await p.startApplication(h0, req);
    assert.deepEqual(b.state.instanceIds, a.state.instanceIds);
    assert.equal(b.state.targetGroupArn, a.state.targetGroupArn);
    assert.equal((await liveInstances('up-retry')).length, 2);
    assert.equal((await targetGroupNames()).length, 2, "Uold's and one for Unew");
    await p.destroy('up-retry', req.unew);
  });

  it('a crash between RunInstances and recording the result leaks nothing after teardown, and a retry adopts the orphans', async () => {
    const p = provider();
    const req = { upgradeId: 'up-crash', unew: unewSection(w, moto.endpoint) };
    const plan = validateAwsPlan(req.unew);
    const c = createAwsClients(plan, { credentials: CREDENTIALS });
    // The activity "dies" right after RunInstances: nothing was returned or recorded.
    const orphans = await new Provisioner(c, {}, 100).provision('up-crash', plan, goodDbUrl);
    destroyClients(c);
    assert.equal((await liveInstances('up-crash')).length, 3);

    const h = await p.startApplication(await p.provisionDatabase(req), req);
    assert.deepEqual([...(h.state.instanceIds as string[])].sort(), orphans.map((i) => i.instanceId).sort(), 'the retry adopted the orphans');

    await p.destroy('up-crash', req.unew);
    assert.equal((await liveInstances('up-crash')).length, 0);
    assert.deepEqual(await targetGroupNames(), ['uold']);
  });

  it('rejects bad plan values with every path listed, before anything is created', async () => {
    const p = provider();
    const bad = unewSection(w, moto.endpoint, {
      subnets: [w.subnets[0], 'subnet-0123456789abcdef0'],
      listenerArn: w.listenerArn.replace(/\/[0-9a-f]+$/, '/0123456789abcdef'),
    });
    await assert.rejects(p.provisionDatabase({ upgradeId: 'up-bad', unew: bad }), (e: any) => {
      assert.ok(isImagoError(e, 'PROVIDER_AWS_INVALID'));
      assert.match(e.message, /unew\.aws\.subnets\[1\]: subnet subnet-0123456789abcdef0 does not exist/);
      assert.match(e.message, /unew\.aws\.listenerArn: listener .* does not exist/);
      assert.equal(e.retryable, false);
      return true;
    });
    const malformed = unewSection(w, moto.endpoint, { ami: 'ami-XYZ', subnets: undefined });
    await assert.rejects(p.startApplication({ upgradeId: 'up-bad', provider: 'aws', appUrls: [], db: { adminUrlRef: '', endpoint: '', database: '' }, state: {} }, { upgradeId: 'up-bad', unew: malformed }),
      (e: any) => isImagoError(e, 'PROVIDER_AWS_INVALID') && /unew\.aws\.ami/.test(e.message) && /unew\.aws\.subnets: is required/.test(e.message));
    const weighted = unewSection(w, moto.endpoint);
    await w.elb.send(new ModifyListenerCommand({ ListenerArn: w.listenerArn, DefaultActions: [{ Type: 'forward', ForwardConfig: { TargetGroups: [{ TargetGroupArn: w.uoldTg, Weight: 90 }, { TargetGroupArn: w.uoldTg.replace('uold', 'other'), Weight: 10 }] } }] }));
    await assert.rejects(p.preflight({ upgradeId: 'up-bad', unew: weighted }), (e: any) => isImagoError(e, 'PROVIDER_AWS_INVALID') && /weighted/.test(e.message));
    const res = await w.ec2.send(new DescribeInstancesCommand({}));
    assert.equal((res.Reservations ?? []).length, 0, 'no instance was launched');
    assert.deepEqual(await targetGroupNames(), ['uold'], 'no target group was created');
  });

  it("waitHealthy fails with IMAGO_HEALTH_FAILED when the instances cannot reach Unew's database", async () => {
    process.env.IMAGO_TEST_UNEW_APP_URL = 'mysql://root@127.0.0.1:1/shop';
    const p = provider();
    const req = { upgradeId: 'up-sick', unew: unewSection(w, moto.endpoint, { count: 1 }) };
    const h = await p.startApplication(await p.provisionDatabase(req), req);
    await assert.rejects(p.waitHealthy(h, 1_500), (e: any) => isImagoError(e, 'IMAGO_HEALTH_FAILED') && e.message.includes(new URL('/health', h.appUrls[0]).toString()));
    await p.destroy('up-sick', req.unew);
    assert.equal((await liveInstances('up-sick')).length, 0);
  });
});
