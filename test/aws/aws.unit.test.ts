import { strict as assert } from 'node:assert';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Action } from '@aws-sdk/client-elastic-load-balancing-v2';
import { defaultProviders, validateProviderOnWorker } from '../../activities';
import { isImagoError } from '../../lib/errors';
import type { UpgradePlan } from '../../plan/types';
import { matches } from '../../providers/aws/aws-provider';
import { classifyAwsError, untilConsistent } from '../../providers/aws/classify';
import { allows, cidrContains } from '../../providers/aws/inspector';
import { clientToken, probeValue, targetGroupName } from '../../providers/aws/naming';
import { awsPlanSchema, validateAwsPlan } from '../../providers/aws/plan-schema';
import { freePriority } from '../../providers/aws/probe-rule';
import { appUrlOf, deleteOnTermination, spread, type FleetInstance } from '../../providers/aws/provisioner';
import { byListener, IN_HOLD_RETRY_MS, modifyNow } from '../../providers/aws/switcher';
import { classifyForwarder, forwardTargets, planChanges, retarget, trafficOf, type Forwarder } from '../../providers/aws/topology';
import { bootScript, shellQuote } from '../../providers/aws/user-data';

const awsErr = (name: string, status = 400, message = `${name} happened`) => Object.assign(new Error(message), { name: `${name}Exception`, Code: name, $metadata: { httpStatusCode: status } });

const valid = {
  ami: 'ami-0abcdef1234567890', instanceType: 't3.micro', count: 2, subnets: ['subnet-0123456789abcdef0'], securityGroups: ['sg-0123456789abcdef0'],
  uoldTargetGroupArn: 'arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/uold/73e2d6bc24d8a067',
  secretEnv: { DATABASE_URL: 'ssm:/shop/v2/database-url' },
  database: { adminUrlRef: 'env:A', endpoint: 'shop.cluster-x.rds.amazonaws.com:3306', database: 'shop', appUser: 'shop_v2' },
};
const app = { command: ['/opt/shop/start', '--port', '8080'], env: { LOG_LEVEL: 'info' }, healthPath: '/ready' };

const UOLD = 'arn:aws:elasticloadbalancing:us-east-1:1:targetgroup/uold/1';
const UNEW = 'arn:aws:elasticloadbalancing:us-east-1:1:targetgroup/imago-unew-x/2';
const OTHER = 'arn:aws:elasticloadbalancing:us-east-1:1:targetgroup/static/3';
const fwd = (tg: string): Action[] => [{ Type: 'forward', TargetGroupArn: tg }];
function forwarder(kind: 'listener' | 'rule', id: string, actions: Action[], over: Partial<Forwarder> = {}): Forwarder {
  return { kind, arn: `${kind}-${id}`, listenerArn: over.listenerArn ?? 'L1', loadBalancerArn: 'lb', loadBalancerType: 'application', protocol: 'HTTP', port: 80, where: `${kind} ${id}`, actions, probe: false, ...over };
}

describe("the worker's plan check for providers (no server)", () => {
  const plan = (provider: 'local' | 'aws') => ({ unew: { provider, app, aws: structuredClone(valid) } }) as unknown as UpgradePlan;
  const saved = { ...process.env };
  afterEach(() => {
    for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k];
    Object.assign(process.env, saved);
  });

  it('every provider is registered by default; a plan naming one the worker does not run fails with its path', async () => {
    assert.deepEqual(Object.keys(defaultProviders()).sort(), ['aws', 'local']);
    await assert.rejects(validateProviderOnWorker({ local: defaultProviders().local }, plan('aws')),
      (e: any) => isImagoError(e, 'IMAGO_PLAN_INVALID') && /\/unew\/provider: 'aws' is not available on this worker \(it runs: local\)/.test(e.message));
  });

  it('an aws plan on a worker without credentials, or without a region, fails before anything is created', async () => {
    Object.assign(process.env, { AWS_EC2_METADATA_DISABLED: 'true', AWS_SHARED_CREDENTIALS_FILE: '/nonexistent', AWS_CONFIG_FILE: '/nonexistent', AWS_REGION: 'eu-west-1' });
    delete process.env.AWS_ACCESS_KEY_ID; delete process.env.AWS_SECRET_ACCESS_KEY; delete process.env.AWS_PROFILE;
    await assert.rejects(validateProviderOnWorker(defaultProviders(), plan('aws')), (e: any) => isImagoError(e, 'PROVIDER_AWS_PERMISSION') && /no AWS credentials on this worker/.test(e.message));
    Object.assign(process.env, { AWS_ACCESS_KEY_ID: 'AKIDEXAMPLE', AWS_SECRET_ACCESS_KEY: 'x' });
    await validateProviderOnWorker(defaultProviders(), plan('aws'));
    delete process.env.AWS_REGION; delete process.env.AWS_DEFAULT_REGION;
    await assert.rejects(validateProviderOnWorker(defaultProviders(), plan('aws')), (e: any) => isImagoError(e, 'PROVIDER_AWS_INVALID') && /unew\.aws\.region: not set/.test(e.message));
    await validateProviderOnWorker(defaultProviders(), plan('local'));
  });
});

describe('aws provider: pure parts (no server)', () => {
  it('plan: defaults applied and frozen, app from unew.app, health path from unew.app.healthPath, input untouched', () => {
    const input = { app, aws: structuredClone(valid) };
    const plan = validateAwsPlan(input);
    assert.deepEqual([plan.appPort, plan.appUrl, plan.workDir, plan.healthCheck.path, plan.healthCheck.port, plan.timeouts.targetsHealthyMs], [80, 'http://{privateIp}:{appPort}', '/', '/ready', 'traffic-port', 900_000]);
    assert.deepEqual(plan.app, { command: app.command, env: app.env });
    assert.ok(Object.isFrozen(plan) && Object.isFrozen(plan.healthCheck) && Object.isFrozen(plan.secretEnv));
    assert.equal((input.aws as Record<string, unknown>).appPort, undefined, "the caller's plan is not mutated");
    assert.equal(awsPlanSchema.additionalProperties, false);
    assert.equal(validateAwsPlan({ aws: structuredClone(valid) }).healthCheck.path, '/health');
  });

  it('plan: every error with its path: missing subnet, malformed AMI, a secret value instead of a reference, credentials, old keys, bad env name, timeout >= interval, unknown appUrl variable', () => {
    const { subnets: _s, ...noSubnets } = valid;
    const bad = {
      ...noSubnets, ami: 'ami-XYZ', accessKeyId: 'AKIA...', userData: '#!/bin/sh', listenerArn: 'arn:x',
      secretEnv: { DATABASE_URL: 'mysql://app:pw@db/shop', 'bad-name': 'ssm:/x' }, appUrl: 'http://{privateIP}:{appPort}',
      healthCheck: { intervalSeconds: 5, timeoutSeconds: 5 },
    };
    assert.throws(() => validateAwsPlan({ app: { ...app, env: { 'NOT-OK': 'x', DATABASE_URL: 'y' } }, aws: bad }), (e: any) => {
      assert.ok(isImagoError(e, 'PROVIDER_AWS_INVALID'));
      for (const re of [
        /unew\.aws\.subnets: is required/, /unew\.aws\.ami: must match/, /unew\.aws\.accessKeyId: unknown key/, /unew\.aws\.userData: unknown key/,
        /unew\.aws\.listenerArn: unknown key/, /unew\.aws\.secretEnv\.DATABASE_URL: must be an SSM parameter reference/, /'bad-name' is not an environment variable name/,
        /unew\.aws\.healthCheck\.timeoutSeconds: must be smaller/, /unew\.aws\.appUrl: unknown variable \{privateIP\}/, /unew\.app\.env\.NOT-OK: not an environment variable name/,
      ]) assert.match(e.message, re);
      assert.ok(!e.message.includes('pw@db'), 'the offending value is not echoed');
      return true;
    });
    assert.throws(() => validateAwsPlan({}), /unew\.aws: is required/);
    assert.throws(() => validateAwsPlan({ app: { ...app, env: { DATABASE_URL: 'x' } }, aws: structuredClone(valid) }), /unew\.app\.env\.DATABASE_URL: also in unew\.aws\.secretEnv/);
  });

  it('boot script: secrets fetched on the instance by reference, env and command quoted, no secret value in it; sh runs it as written', () => {
    const secretValue = 'mysql://shop_v2:s3cr3t@db:3306/shop';
    const script = bootScript({ upgradeId: 'up-1\nrm -rf /', region: 'eu-west-1', workDir: '/opt/shop v2', command: ['/opt/shop/start', "it's", '$HOME'], env: { LOG_LEVEL: "a'b $c" }, secretEnv: { DATABASE_URL: 'ssm:/shop/v2/database-url' } });
    assert.ok(!script.includes(secretValue) && !script.includes('s3cr3t'));
    assert.match(script, /^#!\/bin\/sh\n/);
    assert.match(script, /aws ssm get-parameter --region 'eu-west-1' --with-decryption --name "\$1"/);
    assert.match(script, /DATABASE_URL="\$\(imago_secret '\/shop\/v2\/database-url'\)"\nexport DATABASE_URL/);
    assert.ok(!script.includes('\nrm -rf /'), 'the upgrade id cannot inject a line');
    // Run it with a stand-in `aws` on PATH (it prints what it was asked) and a stand-in command (it prints what it got).
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'imago-boot-'));
    try {
      fs.writeFileSync(path.join(dir, 'aws'), '#!/bin/sh\necho "secret-for:$*"\n', { mode: 0o755 });
      const runnable = bootScript({ upgradeId: 'u', region: 'eu-west-1', workDir: dir, command: ['/bin/sh', '-c', 'echo "$DATABASE_URL|$LOG_LEVEL|$(pwd)|$1"', 'sh', "it's $HOME"], env: { LOG_LEVEL: "a'b $c" }, secretEnv: { DATABASE_URL: 'ssm:/p' }, bootScript: 'echo prelude >&2' });
      const out = execFileSync('/bin/sh', ['-c', runnable], { env: { PATH: `${dir}:/usr/bin:/bin` }, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
      assert.equal(out.trim(), `secret-for:ssm get-parameter --region eu-west-1 --with-decryption --name /p --query Parameter.Value --output text|a'b $c|${dir}|it's $HOME`);
    } finally { fs.rmSync(dir, { recursive: true, force: true }); }
    assert.equal(shellQuote("a'b"), `'a'\\''b'`);
    assert.throws(() => bootScript({ upgradeId: 'u', region: 'r', workDir: '/', command: ['x'], env: { 'A-B': '1' }, secretEnv: {} }), /not valid in a shell/);
    assert.throws(() => bootScript({ upgradeId: 'u', region: 'r', workDir: '/', command: ['x'], env: { A: 'x'.repeat(17_000) }, secretEnv: {} }), /16384-byte user-data limit/);
  });

  it('classifies AWS errors: capacity, quota, permission final; throttling, 5xx and eventual-consistency codes retryable', () => {
    const cases: Array<[string, number, string, boolean]> = [
      ['InsufficientInstanceCapacity', 500, 'PROVIDER_AWS_CAPACITY', false],
      ['InstanceLimitExceeded', 400, 'PROVIDER_AWS_QUOTA', false],
      ['UnauthorizedOperation', 403, 'PROVIDER_AWS_PERMISSION', false],
      ['RequestLimitExceeded', 503, 'PROVIDER_AWS_TRANSIENT', true],
      ['Throttling', 400, 'PROVIDER_AWS_TRANSIENT', true],
      ['InvalidInstanceID.NotFound', 400, 'PROVIDER_AWS_TRANSIENT', true],
      ['InvalidTarget', 400, 'PROVIDER_AWS_TRANSIENT', true],
      ['ResourceInUse', 400, 'PROVIDER_AWS_TRANSIENT', true],
      ['SomethingNew', 502, 'PROVIDER_AWS_TRANSIENT', true],
      ['InvalidSubnetID.NotFound', 400, 'PROVIDER_AWS_INVALID', false],
      ['IncompatibleProtocols', 400, 'PROVIDER_AWS_INVALID', false],
      ['SomethingNew', 400, 'PROVIDER_AWS_UNEXPECTED', true],
    ];
    for (const [name, status, code, retryable] of cases) {
      const e = classifyAwsError(awsErr(name, status), 'RunInstances');
      assert.deepEqual([name, e.code, e.retryable], [name, code, retryable]);
      assert.match(e.message, new RegExp(`RunInstances: AWS ${name.replace('.', '\\.')}`));
    }
  });

  it('waits out an eventual-consistency code for a bounded time, nothing else', async () => {
    let t = 0;
    const clock = { now: () => t, sleep: async (ms: number) => { t += ms; } };
    let calls = 0;
    const ok = await untilConsistent('RegisterTargets', (c) => c === 'InvalidTarget', async () => { if (++calls < 4) throw awsErr('InvalidTarget'); return 'done'; }, { budgetMs: 10_000, pollMs: 500, ...clock });
    assert.deepEqual([ok, calls, t], ['done', 4, 500 + 1000 + 2000]);
    t = 0; calls = 0;
    await assert.rejects(untilConsistent('RegisterTargets', (c) => c === 'InvalidTarget', async () => { calls++; throw awsErr('InvalidTarget'); }, { budgetMs: 3_000, pollMs: 500, ...clock }),
      (e: any) => isImagoError(e, 'PROVIDER_AWS_TRANSIENT') && /InvalidTarget/.test(e.message));
    assert.ok(t <= 3_000 && calls >= 3, `bounded: ${t} ms, ${calls} calls`);
    calls = 0;
    await assert.rejects(untilConsistent('x', (c) => c === 'InvalidTarget', async () => { calls++; throw awsErr('UnauthorizedOperation', 403); }, { budgetMs: 10_000, ...clock }), (e: any) => isImagoError(e, 'PROVIDER_AWS_PERMISSION'));
    assert.equal(calls, 1, 'a permission error is not waited on');
  });

  it('derives tokens, names and probe values: a new launch nonce gives new tokens', () => {
    assert.equal(clientToken('u1', 'n1', 'app', 0), clientToken('u1', 'n1', 'app', 0));
    assert.notEqual(clientToken('u1', 'n1', 'app', 0), clientToken('u1', 'n2', 'app', 0), 'a new provisioning of the same upgrade gets new tokens');
    assert.notEqual(clientToken('u1', 'n1', 'app', 0), clientToken('u1', 'n1', 'app', 1));
    assert.ok(clientToken('x'.repeat(300), 'n', 'app', 0).length <= 64);
    assert.ok(targetGroupName('x'.repeat(300)).length <= 32 && /^[a-zA-Z0-9-]+$/.test(targetGroupName('u1')));
    assert.match(probeValue('u1'), /^[0-9a-f]{32}$/);
    assert.deepEqual([spread(5, 2), spread(1, 3)], [[3, 2], [1, 0, 0]]);
    assert.deepEqual([freePriority([]), freePriority([50_000, 49_999]), freePriority(Array.from({ length: 50_000 }, (_, i) => i + 1))], [50_000, 49_998, undefined]);
    assert.deepEqual([matches(200, '200'), matches(204, '200-299'), matches(302, '200,302'), matches(503, '200-399')], [true, true, true, false]);
  });

  it('inside the hold a throttled Modify is tried again within milliseconds, a final error at once', async () => {
    const waits: number[] = [];
    const sleep = async (ms: number) => { waits.push(ms); };
    let calls = 0;
    assert.equal(await modifyNow('ModifyListener', async () => { if (++calls < 3) throw awsErr('Throttling'); return 'ok'; }, sleep), 'ok');
    assert.deepEqual(waits, IN_HOLD_RETRY_MS.slice(0, 2));
    assert.ok(IN_HOLD_RETRY_MS.reduce((a, b) => a + b, 0) < 1_000, 'all the pauses together stay under a second');
    calls = 0; waits.length = 0;
    await assert.rejects(modifyNow('ModifyListener', async () => { calls++; throw awsErr('Throttling'); }, sleep), (e: any) => isImagoError(e, 'PROVIDER_AWS_TRANSIENT'));
    assert.equal(calls, IN_HOLD_RETRY_MS.length + 1);
    calls = 0;
    await assert.rejects(modifyNow('ModifyListener', async () => { calls++; throw awsErr('IncompatibleProtocols'); }, sleep), (e: any) => isImagoError(e, 'PROVIDER_AWS_INVALID'));
    assert.equal(calls, 1);
  });

  it('app URLs from the template: instance fields and tags; what is missing is named', () => {
    const i: FleetInstance = { instanceId: 'i-1', subnetId: 's', slot: 0, state: 'running', privateIp: '10.0.0.5', privateDnsName: 'ip-10-0-0-5.ec2.internal', tags: { Name: 'shop-v2-a', 'sim:address': '127.0.0.1:4000' } };
    assert.deepEqual(appUrlOf('http://{privateIp}:{appPort}', i, 8080), { url: 'http://10.0.0.5:8080', missing: [] });
    assert.deepEqual(appUrlOf('https://{tag:Name}.corp.example:{appPort}', i, 8443), { url: 'https://shop-v2-a.corp.example:8443', missing: [] });
    assert.deepEqual(appUrlOf('http://{tag:sim:address}', i, 8080), { url: 'http://127.0.0.1:4000', missing: [] });
    assert.deepEqual(appUrlOf('http://{publicIp}:{appPort}/{tag:Stage}', i, 80), { missing: ['{publicIp}', '{tag:Stage}'] });
    assert.deepEqual(deleteOnTermination([{ DeviceName: '/dev/sda1', Ebs: { SnapshotId: 'snap-1', VolumeSize: 8, DeleteOnTermination: false } }, { DeviceName: '/dev/sdb', VirtualName: 'ephemeral0' }]),
      [{ DeviceName: '/dev/sda1', Ebs: { SnapshotId: 'snap-1', VolumeSize: 8, DeleteOnTermination: true } }]);
  });

  it('topology: classifies forwarders; weighted forwards and non-ALB listeners refused with a reason; others untouched', () => {
    assert.deepEqual(classifyForwarder(forwarder('listener', 'a', fwd(UOLD)), UOLD, UNEW), { points: 'uold' });
    assert.deepEqual(classifyForwarder(forwarder('rule', 'b', fwd(UNEW)), UOLD, UNEW), { points: 'unew' });
    assert.deepEqual(classifyForwarder(forwarder('rule', 'c', fwd(OTHER)), UOLD, UNEW), { points: 'other' });
    assert.deepEqual(classifyForwarder(forwarder('rule', 'd', [{ Type: 'fixed-response', FixedResponseConfig: { StatusCode: '503' } }]), UOLD, UNEW), { points: 'none' });
    const weighted = classifyForwarder(forwarder('rule', 'w', [{ Type: 'forward', ForwardConfig: { TargetGroups: [{ TargetGroupArn: UOLD, Weight: 90 }, { TargetGroupArn: OTHER, Weight: 10 }] } }]), UOLD, UNEW);
    assert.match(weighted.problem ?? '', /weighted.*side by side/);
    const nlb = classifyForwarder(forwarder('listener', 'n', fwd(UOLD), { loadBalancerType: 'network', protocol: 'TCP' }), UOLD, UNEW);
    assert.match(nlb.problem ?? '', /network load balancer's TCP listener.*Application Load Balancers only/);
    assert.deepEqual(forwardTargets([{ Type: 'authenticate-oidc' }, { Type: 'forward', ForwardConfig: { TargetGroups: [{ TargetGroupArn: UOLD }] } }]), [UOLD]);
  });

  it('topology: retarget keeps other actions and their order, never carries an OIDC secret', () => {
    const actions: Action[] = [
      { Type: 'authenticate-oidc', Order: 1, AuthenticateOidcConfig: { Issuer: 'i', AuthorizationEndpoint: 'a', TokenEndpoint: 't', UserInfoEndpoint: 'u', ClientId: 'c', ClientSecret: 'secret' } },
      { Type: 'forward', Order: 2, TargetGroupArn: UOLD, ForwardConfig: { TargetGroups: [{ TargetGroupArn: UOLD, Weight: 1 }], TargetGroupStickinessConfig: { Enabled: false } } },
    ];
    const out = retarget(actions, UNEW);
    assert.deepEqual(out[0].AuthenticateOidcConfig, { Issuer: 'i', AuthorizationEndpoint: 'a', TokenEndpoint: 't', UserInfoEndpoint: 'u', ClientId: 'c', UseExistingClientSecret: true });
    assert.deepEqual(out[1], { Type: 'forward', Order: 2, TargetGroupArn: UNEW, ForwardConfig: { TargetGroups: [{ TargetGroupArn: UNEW, Weight: 1 }], TargetGroupStickinessConfig: { Enabled: false } } });
    assert.ok(!JSON.stringify(out).includes('secret'));
    assert.deepEqual(retarget(fwd(UOLD), UNEW), fwd(UNEW));
  });

  it('topology: the changes of a switch cover every forwarder of Uold (rules before their listener), skip the probe; traffic state', () => {
    const fs0 = [
      forwarder('listener', 'L1', fwd(UOLD)),
      forwarder('rule', 'api', fwd(UOLD)),
      forwarder('rule', 'static', fwd(OTHER)),
      forwarder('rule', 'probe', fwd(UNEW), { probe: true }),
      forwarder('listener', 'L2', fwd(UOLD), { listenerArn: 'L2' }),
    ];
    const p = planChanges(fs0, UOLD, UNEW, 'unew');
    assert.deepEqual(p.changes.map((c) => c.where), ['rule api', 'listener L1', 'listener L2']);
    assert.deepEqual([p.problems, p.covered], [[], 3]);
    assert.deepEqual(byListener(p.changes).map((g) => g.map((c) => c.where)), [['rule api', 'listener L1'], ['listener L2']]);
    assert.equal(trafficOf(fs0, UOLD, UNEW), 'uold', 'the probe rule is not traffic');
    const half = fs0.map((f) => f.where === 'rule api' ? { ...f, actions: fwd(UNEW) } : f);
    assert.equal(trafficOf(half, UOLD, UNEW), 'partial');
    assert.deepEqual(planChanges(half, UOLD, UNEW, 'unew').changes.map((c) => c.where), ['listener L1', 'listener L2'], 'a retry completes only what is left');
    const done = fs0.map((f) => f.probe || f.where === 'rule static' ? f : { ...f, actions: fwd(UNEW) });
    assert.equal(trafficOf(done, UOLD, UNEW), 'unew');
    assert.deepEqual(planChanges(done, UOLD, UNEW, 'unew').changes, []);
    assert.equal(trafficOf([forwarder('rule', 'x', fwd(OTHER))], UOLD, UNEW), undefined);
    assert.match(planChanges([forwarder('rule', 'x', fwd(OTHER))], UOLD, UNEW, 'unew').problems[0], /no listener or rule forwards/);
  });

  it('security groups: by group pair or by CIDRs covering every address, on the port', () => {
    assert.ok(cidrContains('10.20.0.0/16', '10.20.3.4') && cidrContains('10.20.0.0/16', '10.20.1.0/24') && !cidrContains('10.20.0.0/24', '10.20.1.0/24') && !cidrContains('10.20.0.0/24', '10.20.0.0/16'));
    assert.ok(cidrContains('0.0.0.0/0', '192.168.1.1'));
    const perms = [{ IpProtocol: 'tcp', FromPort: 8080, ToPort: 8080, IpRanges: [{ CidrIp: '10.20.0.0/24' }], UserIdGroupPairs: [{ GroupId: 'sg-lb' }] }];
    assert.ok(allows(perms, 8080, { name: 'lb', groups: ['sg-lb'] }));
    assert.ok(!allows(perms, 8081, { name: 'lb', groups: ['sg-lb'] }));
    assert.ok(allows(perms, 8080, { name: 'i', cidrs: ['10.20.0.7', '10.20.0.9'] }));
    assert.ok(!allows(perms, 8080, { name: 'i', cidrs: ['10.20.0.7', '10.20.1.9'] }), 'every address must be covered');
    assert.ok(!allows(perms, 8080, { name: 'nobody' }));
    assert.ok(allows([{ IpProtocol: '-1', IpRanges: [{ CidrIp: '0.0.0.0/0' }] }], 443, { name: 'w', cidrs: ['203.0.113.0/24'] }));
  });
});
