/**
 * The aws provider against moto, through the realism proxy (test/aws/realism.ts):
 * targets `unused` until a listener or rule uses their group, `initial` for
 * interval × threshold, eventual consistency after RunInstances, ClientToken
 * replays, protocol checks. The provider is built exactly as the worker
 * builds it (createAwsProvider() with its SDK default credential chain: the
 * environment here); only its poll interval is shortened.
 *
 * Unew's instances are booted by the instance simulator (test/aws/instance-sim.ts):
 * their user data runs with /bin/sh, fetches the database URL from SSM with
 * the AWS CLI, and starts test/aws/probe-app.ts, the stand-in for the new
 * version. The worker reaches them on loopback through the plan's appUrl
 * template ({tag:imago-sim:address}); nothing is sent to moto's addresses.
 */
import { strict as assert } from 'node:assert';
import * as path from 'node:path';
import { DescribeInstancesCommand, DescribeVolumesCommand, CreateSecurityGroupCommand, CreateSubnetCommand, type Instance } from '@aws-sdk/client-ec2';
import {
  DeleteRuleCommand, DescribeListenersCommand, DescribeRulesCommand, DescribeTargetGroupsCommand, DescribeTargetHealthCommand, ModifyRuleCommand, DescribeTagsCommand,
} from '@aws-sdk/client-elastic-load-balancing-v2';
import { isImagoError } from '../../lib/errors';
import type { MotoServer } from '../../lib/moto';
import { createAwsProvider, type AwsProvider, type AwsState } from '../../providers/aws/aws-provider';
import { ClientPool } from '../../providers/aws/clients';
import { PROBE_HEADER, PROBE_HOST, TAG_UPGRADE, targetGroupName } from '../../providers/aws/naming';
import { validateAwsPlan } from '../../providers/aws/plan-schema';
import { Provisioner } from '../../providers/aws/provisioner';
import { bootScript } from '../../providers/aws/user-data';
import type { UnewHandle } from '../../providers/provider';
import { mariadbFixture, motoFixture } from '../fixtures/servers';
import { InstanceSimulator } from './instance-sim';
import { CREDENTIALS, createWorld, DB_URL_PARAM, destroyWorld, putDbUrl, unewSection, type World } from './moto-world';
import { RealismProxy } from './realism';

const APP = { command: [process.execPath, '--require', require.resolve('tsx/cjs'), path.join(__dirname, 'probe-app.ts')], env: { LOG_LEVEL: 'debug' } };
const AWS_ENV = { AWS_ACCESS_KEY_ID: CREDENTIALS.accessKeyId, AWS_SECRET_ACCESS_KEY: CREDENTIALS.secretAccessKey, AWS_EC2_METADATA_DISABLED: 'true' };

describe('aws provider against moto, through the realism layer', function () {
  this.timeout(120_000);
  let moto: MotoServer;
  let proxy: RealismProxy;
  let sim: InstanceSimulator;
  let w: World;
  let p: AwsProvider;
  let goodDbUrl = '';
  const saved: Record<string, string | undefined> = {};

  before(async () => {
    moto = await motoFixture();
    const db = await mariadbFixture();
    await db.createDatabase('shop');
    await db.createUser('shop_v2', 'v2-secret-pw', ['SELECT ON `shop`.*']);
    goodDbUrl = db.urlFor('shop_v2', 'v2-secret-pw', 'shop');
    sim = new InstanceSimulator(moto.endpoint).start();
    proxy = await new RealismProxy(moto.endpoint, { timeScale: 0.1, healthOf: sim.healthOf }).start();
    for (const [k, v] of Object.entries({ ...AWS_ENV, IMAGO_TEST_UNEW_ADMIN_URL: `mysql://root@127.0.0.1:${db.port}/shop` })) { saved[k] = process.env[k]; process.env[k] = v; }
  });

  after(async () => {
    await sim?.stop();
    await proxy?.stop();
    for (const [k, v] of Object.entries(saved)) { if (v === undefined) delete process.env[k]; else process.env[k] = v; }
  });

  beforeEach(async () => {
    await moto.reset();
    proxy.reset({ releaseLagMs: 0 });
    w = await createWorld(moto.endpoint);
    await putDbUrl(w, goodDbUrl);
    p = createAwsProvider({ pollMs: 100, consistency: { pollMs: 50 } });
  });

  afterEach(async () => {
    p.close();
    await sim.stopAll();
    destroyWorld(w);
  });

  const section = (over: Record<string, unknown> = {}) => unewSection(w, proxy.endpoint, over, APP);

  async function instancesOf(upgradeId: string, states = ['pending', 'running']): Promise<Instance[]> {
    const res = await w.ec2.send(new DescribeInstancesCommand({ Filters: [{ Name: `tag:${TAG_UPGRADE}`, Values: [upgradeId] }, { Name: 'instance-state-name', Values: states }] }));
    return (res.Reservations ?? []).flatMap((r) => r.Instances ?? []);
  }
  async function routes(): Promise<Record<string, string | undefined>> {
    const target = (actions: any[] | undefined) => actions?.find((a) => a.Type === 'forward')?.TargetGroupArn ?? actions?.[0]?.Type;
    const ls = (await w.elb.send(new DescribeListenersCommand({ LoadBalancerArn: w.lbArn }))).Listeners!;
    const rules = (await w.elb.send(new DescribeRulesCommand({ ListenerArn: w.listenerArn }))).Rules!;
    const r = (arn: string) => target(rules.find((x) => x.RuleArn === arn)?.Actions);
    return {
      listener80: target(ls.find((l) => l.ListenerArn === w.listenerArn)!.DefaultActions), listener8080: target(ls.find((l) => l.ListenerArn === w.otherListenerArn)!.DefaultActions),
      api: r(w.apiRuleArn), admin: r(w.adminRuleArn), maintenance: r(w.maintenanceRuleArn), static: r(w.staticRuleArn),
    };
  }
  const allOn = (tg: string) => ({ listener80: tg, listener8080: tg, api: tg, admin: tg, maintenance: 'fixed-response', static: w.staticTg });
  async function probeRules(): Promise<Array<{ arn: string; priority: string; conditions: string }>> {
    const rules = (await w.elb.send(new DescribeRulesCommand({ ListenerArn: w.listenerArn }))).Rules!;
    return rules.filter((r) => r.Conditions?.some((c) => c.HttpHeaderConfig?.HttpHeaderName === PROBE_HEADER))
      .map((r) => ({ arn: r.RuleArn!, priority: r.Priority!, conditions: JSON.stringify(r.Conditions) }));
  }
  async function up(id: string, over: Record<string, unknown> = {}): Promise<{ h: UnewHandle; unew: Record<string, unknown> }> {
    const unew = section(over);
    const h0 = await p.provisionDatabase({ upgradeId: id, unew });
    return { h: await p.startApplication(h0, { upgradeId: id, unew }), unew };
  }

  it('lifecycle: provision (IMDSv2, secrets off user data, probe rule), health through the load balancer, the swap in Modify calls only, read-back, retire Uold', async () => {
    const { h, unew } = await up('up-life');
    assert.ok(!JSON.stringify(h).includes('v2-secret-pw'), 'no secret in the handle (workflow history)');
    const s = h.state as unknown as AwsState;

    // Instances: 3, spread 2+1, IMDSv2 required, tagged; their volumes tagged too.
    const insts = await instancesOf('up-life');
    assert.deepEqual(insts.map((i) => i.SubnetId).sort(), [w.subnets[0], w.subnets[0], w.subnets[1]].sort());
    assert.ok(insts.every((i) => i.MetadataOptions?.HttpTokens === 'required'), 'IMDSv2 required on every instance');
    const vols = await w.ec2.send(new DescribeVolumesCommand({ Filters: [{ Name: `tag:${TAG_UPGRADE}`, Values: ['up-life'] }] }));
    assert.equal(vols.Volumes?.length, 3, 'every volume tagged');

    // User data holds references only; the app got the secret and the plan's env on the instance.
    const booted = sim.running().filter((i) => i.upgradeId === 'up-life');
    assert.equal(booted.length, 3);
    for (const i of booted) {
      assert.ok(!i.userData.includes('v2-secret-pw') && !i.userData.includes(goodDbUrl), 'no secret in user data');
      assert.ok(i.userData.includes(`imago_secret '${DB_URL_PARAM}'`) && i.userData.includes("export LOG_LEVEL='debug'"));
      const env = sim.envOf(i.instanceId);
      assert.deepEqual([env.DATABASE_URL, env.LOG_LEVEL], [goodDbUrl, 'debug'], 'the app got the secret from SSM and the plan\'s env');
    }
    assert.deepEqual(h.appUrls.sort(), booted.map((i) => `http://127.0.0.1:${i.port}`).sort(), 'app URLs from the plan template: loopback only');
    assert.ok(proxy.stats.notFound >= 1 && proxy.stats.invalidTarget >= 1, `eventual consistency met and waited out: ${JSON.stringify(proxy.stats)}`);

    // Unew's group, used only by the never-matching probe rule: the load balancer health-checks it.
    const tg = (await w.elb.send(new DescribeTargetGroupsCommand({ TargetGroupArns: [s.targetGroupArn!] }))).TargetGroups![0];
    assert.deepEqual([tg.TargetGroupName, tg.Protocol, tg.Port, tg.HealthCheckPath, tg.HealthCheckIntervalSeconds, tg.HealthyThresholdCount], [targetGroupName('up-life'), 'HTTP', 8080, '/health', 5, 2]);
    const probes = await probeRules();
    assert.equal(probes.length, 1);
    assert.equal(probes[0].priority, '50000', 'lowest precedence');
    assert.ok(probes[0].conditions.includes(PROBE_HOST), probes[0].conditions);
    const probeTags = (await w.elb.send(new DescribeTagsCommand({ ResourceArns: [probes[0].arn] }))).TagDescriptions![0].Tags!;
    assert.ok(probeTags.some((t) => t.Key === TAG_UPGRADE && t.Value === 'up-life'));
    assert.deepEqual(await routes(), allOn(w.uoldTg), 'clients still all on Uold');

    const t0 = Date.now();
    await p.waitHealthy(h, 1_000);
    const th = await w.elb.send(new DescribeTargetHealthCommand({ TargetGroupArn: s.targetGroupArn }));
    assert.equal(th.TargetHealthDescriptions!.length, 3);
    assert.ok(proxy.stats.initial >= 1 && proxy.stats.unused === 0, `initial seen, never unused: ${JSON.stringify(proxy.stats)}`);
    console.log(`      health through the load balancer: healthy after ${Date.now() - t0} ms (interval 5 s × threshold 2, time scale 0.1)`);

    // The swap: prepare (every describe and check) before the hold, apply (Modify calls only) inside it.
    const c0 = proxy.calls.length;
    const prepared = await p.prepareSwitch(h, 'unew');
    const prepareCalls = proxy.calls.slice(c0).map((c) => c.action);
    assert.ok(prepared.checks.every((c) => c.ok), JSON.stringify(prepared.checks));
    assert.deepEqual(prepared.checks.map((c) => c.name), ['credentials', 'routes', 'unew-targets-healthy']);
    assert.equal(prepared.changes.length, 4, 'listener 80, listener 8080, rule /api/*, rule /admin/* (OIDC): every forwarder of Uold');
    assert.ok(!JSON.stringify(prepared).includes('oidc-client-secret'), 'no OIDC secret in the prepared switch (heartbeat details)');
    const c1 = proxy.calls.length;
    await p.applySwitch(h, prepared);
    const inHold = proxy.calls.slice(c1).map((c) => c.action);
    assert.deepEqual([...inHold].sort(), ['ModifyListener', 'ModifyListener', 'ModifyRule', 'ModifyRule'], `inside the hold only the Modify calls: ${inHold.join(', ')}`);
    console.log(`      ELB calls inside the hold: ${inHold.length} (${inHold.join(', ')}); moved before it, in prepareSwitch: ${prepareCalls.length} (${[...new Set(prepareCalls)].join(', ')})`);
    assert.deepEqual(await routes(), allOn(s.targetGroupArn!));
    const admin = (await w.elb.send(new DescribeRulesCommand({ RuleArns: [w.adminRuleArn] }))).Rules![0].Actions!;
    assert.deepEqual(admin.map((a) => a.Type), ['authenticate-oidc', 'forward'], 'the OIDC action kept, in order');
    await p.applySwitch(h, prepared); // idempotent
    assert.deepEqual(await routes(), allOn(s.targetGroupArn!));

    const back = await p.verifySwitch(h, prepared);
    assert.ok(back.every((c) => c.ok), JSON.stringify(back));
    assert.deepEqual(await probeRules(), [], 'the probe rule is removed once the swap is read back complete');
    assert.equal(await p.trafficState(h), 'unew');
    assert.deepEqual((await p.prepareSwitch(h, 'unew')).changes, [], 'nothing left to change');

    // Unew is live now: teardown refuses, gc lists it as in use.
    await assert.rejects(p.destroy('up-life', unew), (e) => isImagoError(e, 'PROVIDER_AWS_IN_USE'));
    assert.equal((await instancesOf('up-life')).length, 3, 'a refused teardown touched nothing');
    const listed = await p.listUniverses(unew);
    assert.deepEqual(listed.map((u) => [u.upgradeId, u.inUse]), [['up-life', true]]);

    // Finalize: keepUold keeps the interceptor host; without it, Uold's fleet is deregistered and terminated.
    const kept = await p.retireUold(h, unew, { keepUold: true });
    assert.equal(kept.kept, true);
    const interceptor = async () => (await w.ec2.send(new DescribeInstancesCommand({ InstanceIds: [w.interceptorId] }))).Reservations![0].Instances![0].State!.Name;
    assert.equal(await interceptor(), 'running');
    const retired = await p.retireUold(h, unew, { keepUold: false });
    assert.equal(retired.kept, false);
    assert.match(retired.detail, /deregistered 1 target.*terminated 1 instance/);
    assert.equal(await interceptor(), 'terminated');
    assert.equal((await w.elb.send(new DescribeTargetHealthCommand({ TargetGroupArn: w.uoldTg }))).TargetHealthDescriptions!.length, 0);
    assert.equal((await instancesOf('up-life')).length, 3, 'Unew untouched');
  });

  it('abort path: destroy finds everything by tag and leaves nothing (instances, volumes, group, probe rule); the routes untouched', async () => {
    const { h, unew } = await up('up-abort', { count: 2 });
    await p.waitHealthy(h, 1_000);
    assert.equal((await p.listUniverses(unew)).length, 1);
    proxy.configure({ releaseLagMs: 3_000 }); // the group stays "in use" a moment after its probe rule is deleted
    await p.destroy('up-abort', unew);
    assert.equal(proxy.stats.inUse >= 1, true, 'ResourceInUse right after the probe rule went away, waited out');
    assert.deepEqual(await p.listUniverses(unew), [], 'nothing left by tag');
    assert.deepEqual((await instancesOf('up-abort', ['terminated'])).length, 2);
    assert.equal((await w.ec2.send(new DescribeVolumesCommand({ Filters: [{ Name: `tag:${TAG_UPGRADE}`, Values: ['up-abort'] }] }))).Volumes?.length, 0);
    assert.deepEqual(await probeRules(), []);
    assert.deepEqual(((await w.elb.send(new DescribeTargetGroupsCommand({}))).TargetGroups ?? []).map((t) => t.TargetGroupName).sort(), ['static', 'uold']);
    assert.deepEqual(await routes(), allOn(w.uoldTg));
    await p.destroy('up-abort', unew); // idempotent
  });

  it('a retried startApplication creates no second fleet, group or probe rule; a crash after RunInstances is adopted', async () => {
    const unew = section({ count: 2 });
    const h0 = await p.provisionDatabase({ upgradeId: 'up-retry', unew });
    // The activity "dies" right after RunInstances: nothing was returned or recorded.
    const plan = validateAwsPlan(unew);
    const pool = new ClientPool();
    const c = await pool.warm({ region: plan.region, endpoint: plan.endpoint });
    const orphans = await new Provisioner(c, 100).provision('up-retry', (h0.state as unknown as AwsState).launchNonce, plan,
      bootScript({ upgradeId: 'up-retry', region: 'us-east-1', workDir: '/', command: APP.command, env: APP.env, secretEnv: plan.secretEnv }));
    pool.destroy();
    const a = await p.startApplication(h0, { upgradeId: 'up-retry', unew });
    const b = await p.startApplication(h0, { upgradeId: 'up-retry', unew });
    assert.deepEqual([...(a.state.instanceIds as string[])].sort(), orphans.map((i) => i.instanceId).sort(), 'the retry adopted the orphans');
    assert.deepEqual(b.state.instanceIds, a.state.instanceIds);
    assert.equal(b.state.targetGroupArn, a.state.targetGroupArn);
    assert.equal((await instancesOf('up-retry')).length, 2);
    assert.equal((await probeRules()).length, 1);
    await p.destroy('up-retry', unew);
    assert.deepEqual(await p.listUniverses(unew), []);
  });

  it('a new provisioning of the same upgrade id launches new instances (launch nonce); the old token would return the terminated ones', async () => {
    const first = await up('up-again', { count: 1 });
    await p.destroy('up-again', first.unew);
    const second = await up('up-again', { count: 1 });
    const ids2 = second.h.state.instanceIds as string[];
    assert.notDeepEqual(ids2, first.h.state.instanceIds);
    assert.deepEqual((await instancesOf('up-again')).map((i) => i.InstanceId), ids2, 'a new, running instance');
    await p.destroy('up-again', second.unew);
    const replays = proxy.stats.tokenReplays;
    // What a token without the nonce did: the first provisioning's token names terminated instances.
    await assert.rejects(p.startApplication(first.h, { upgradeId: 'up-again', unew: first.unew }), (e: any) => isImagoError(e, 'PROVIDER_AWS_CONFLICT') && /terminated instance/.test(e.message));
    assert.equal(proxy.stats.tokenReplays, replays + 1);
    await p.destroy('up-again', first.unew);
  });

  it('preflight reports every problem with its path before anything is created: subnet, zone, security group, weighted rule, missing secret', async () => {
    const subC = (await w.ec2.send(new CreateSubnetCommand({ VpcId: w.vpcId, CidrBlock: '10.20.7.0/24', AvailabilityZone: 'us-east-1c' }))).Subnet!.SubnetId!;
    const closed = (await w.ec2.send(new CreateSecurityGroupCommand({ GroupName: 'closed', Description: 'no inbound', VpcId: w.vpcId }))).GroupId!;
    await w.elb.send(new ModifyRuleCommand({ RuleArn: w.apiRuleArn, Actions: [{ Type: 'forward', ForwardConfig: { TargetGroups: [{ TargetGroupArn: w.uoldTg, Weight: 90 }, { TargetGroupArn: w.staticTg, Weight: 10 }] } }] }));
    const bad = section({ subnets: [w.subnets[0], subC, 'subnet-0123456789abcdef0'], securityGroups: [closed], secretEnv: { DATABASE_URL: 'ssm:/nope/missing' } });
    await assert.rejects(p.provisionDatabase({ upgradeId: 'up-bad', unew: bad }), (e: any) => {
      assert.ok(isImagoError(e, 'PROVIDER_AWS_INVALID'), e.message);
      for (const re of [
        /unew\.aws\.subnets\[2\]: subnet subnet-0123456789abcdef0 does not exist/,
        /unew\.aws\.subnets\[1\]: .* is in us-east-1c, which is not enabled on load balancer shop/,
        /rule 10 .*forwards to 2 target groups \(weighted\)/,
        /no inbound rule lets load balancer shop/, /no inbound rule lets the interceptors/, /no inbound rule lets the worker/,
        /unew\.aws\.secretEnv\.DATABASE_URL: SSM parameter \/nope\/missing does not exist/,
      ]) assert.match(e.message, re);
      assert.equal(e.retryable, false);
      return true;
    });
    assert.equal(((await w.ec2.send(new DescribeInstancesCommand({ Filters: [{ Name: 'tag-key', Values: [TAG_UPGRADE] }] }))).Reservations ?? []).length, 0, 'no instance launched');
    assert.equal(((await w.elb.send(new DescribeTargetGroupsCommand({}))).TargetGroups ?? []).length, 2, 'no target group created');
  });

  it('health: unhealthy through the load balancer when the app cannot reach its database; unused when nothing uses the group', async () => {
    await putDbUrl(w, 'mysql://shop_v2:x@127.0.0.1:1/shop');
    const { h, unew } = await up('up-sick', { count: 1, timeouts: { instancesRunningMs: 60_000, targetsHealthyMs: 3_000 } });
    await assert.rejects(p.waitHealthy(h, 60_000), (e: any) => isImagoError(e, 'IMAGO_HEALTH_FAILED')
      && /after 3000 ms \(unew\.aws\.timeouts\.targetsHealthyMs\)/.test(e.message) && /=unhealthy \(Target\.FailedHealthChecks/.test(e.message) && /answered 503/.test(e.message));
    const [probe] = await probeRules();
    await w.elb.send(new DeleteRuleCommand({ RuleArn: probe.arn }));
    await assert.rejects(p.waitHealthy(h, 60_000), (e: any) => /=unused \(Target\.NotInUse/.test(e.message) && /no listener or rule uses Unew's group/.test(e.message));
    await p.destroy('up-sick', unew);
  });

  it('the worker check: no credentials or no region on the worker fails early, naming what to set', async () => {
    const unew = section();
    await p.validateWorker(unew);
    const keep = { ...process.env };
    try {
      delete process.env.AWS_ACCESS_KEY_ID; delete process.env.AWS_SECRET_ACCESS_KEY;
      process.env.AWS_SHARED_CREDENTIALS_FILE = '/nonexistent'; process.env.AWS_CONFIG_FILE = '/nonexistent';
      await assert.rejects(createAwsProvider().validateWorker(unew), (e: any) => isImagoError(e, 'PROVIDER_AWS_PERMISSION') && /no AWS credentials on this worker/.test(e.message));
      Object.assign(process.env, AWS_ENV);
      delete process.env.AWS_REGION; delete process.env.AWS_DEFAULT_REGION;
      const { region: _r, ...noRegion } = unew.aws as Record<string, unknown>;
      await assert.rejects(createAwsProvider().validateWorker({ ...unew, aws: noRegion }), (e: any) => isImagoError(e, 'PROVIDER_AWS_INVALID') && /unew\.aws\.region: not set/.test(e.message));
    } finally {
      for (const k of Object.keys(process.env)) if (!(k in keep)) delete process.env[k];
      Object.assign(process.env, keep);
    }
  });
});
