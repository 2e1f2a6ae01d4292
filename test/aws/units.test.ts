import { strict as assert } from 'node:assert';
import { isImagoError } from '../../lib/errors';
import { matches } from '../../providers/aws/aws-provider';
import { classifyAwsError, withAwsRetry } from '../../providers/aws/classify';
import { clientToken, targetGroupName } from '../../providers/aws/naming';
import { awsPlanSchema, validateAwsPlan } from '../../providers/aws/plan-schema';
import { spread } from '../../providers/aws/provisioner';
import { forwardTarget } from '../../providers/aws/switcher';

const awsErr = (name: string, status = 400) => Object.assign(new Error(`${name} happened`), { name, $metadata: { httpStatusCode: status } });

const valid = {
  ami: 'ami-0abcdef1234567890', instanceType: 't3.micro', count: 2, subnets: ['subnet-0123456789abcdef0'], securityGroups: ['sg-0123456789abcdef0'],
  userData: '#!/bin/sh\nDB_URL={{UNEW_DB_URL}} /opt/app/start', listenerArn: 'arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/shop/50dc6c495c0c9188/f2f7dc8efc522ab2',
  uoldTargetGroupArn: 'arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/uold/73e2d6bc24d8a067',
  database: { adminUrlRef: 'env:A', appUrlRef: 'file:/run/secrets/app', endpoint: 'shop.cluster-x.rds.amazonaws.com:3306', database: 'shop' },
};

describe('aws provider: plan, classification, naming (no server)', () => {
  it('applies defaults and freezes a valid section without touching the input', () => {
    const input = { aws: structuredClone(valid) };
    const plan = validateAwsPlan(input);
    assert.deepEqual([plan.appPort, plan.ruleArns, plan.healthCheck.path, plan.healthCheck.port, plan.timeouts.instancesRunningMs], [80, [], '/health', 'traffic-port', 600_000]);
    assert.ok(Object.isFrozen(plan) && Object.isFrozen(plan.healthCheck));
    assert.equal((input.aws as Record<string, unknown>).appPort, undefined, "the caller's plan is not mutated");
    assert.equal(awsPlanSchema.additionalProperties, false);
  });

  it('reports every error with its path: missing subnet, malformed AMI, no placeholder, unknown key (credentials), timeout >= interval', () => {
    const { subnets: _s, ...noSubnets } = valid;
    const bad = { ...noSubnets, ami: 'ami-XYZ', userData: 'echo hi', accessKeyId: 'AKIA...', healthCheck: { intervalSeconds: 5, timeoutSeconds: 5 } };
    assert.throws(() => validateAwsPlan({ aws: bad }), (e: any) => {
      assert.ok(isImagoError(e, 'PROVIDER_AWS_INVALID'));
      for (const re of [/unew\.aws\.subnets: is required/, /unew\.aws\.ami: must match/, /unew\.aws\.userData: must contain \{\{UNEW_DB_URL\}\}/, /unew\.aws\.accessKeyId: unknown key/, /unew\.aws\.healthCheck\.timeoutSeconds: must be smaller/]) assert.match(e.message, re);
      return true;
    });
    assert.throws(() => validateAwsPlan({}), /unew\.aws: is required/);
  });

  it('classifies AWS errors: capacity, quota, permission are final; throttling and 5xx are transient', () => {
    const cases: Array<[string, number, string, boolean]> = [
      ['InsufficientInstanceCapacity', 500, 'PROVIDER_AWS_CAPACITY', false],
      ['InstanceLimitExceeded', 400, 'PROVIDER_AWS_QUOTA', false],
      ['VcpuLimitExceeded', 400, 'PROVIDER_AWS_QUOTA', false],
      ['UnauthorizedOperation', 403, 'PROVIDER_AWS_PERMISSION', false],
      ['RequestLimitExceeded', 503, 'PROVIDER_AWS_TRANSIENT', true],
      ['Throttling', 400, 'PROVIDER_AWS_TRANSIENT', true],
      ['SomethingNew', 502, 'PROVIDER_AWS_TRANSIENT', true],
      ['InvalidSubnetID.NotFound', 400, 'PROVIDER_AWS_INVALID', false],
      ['SomethingNew', 400, 'PROVIDER_AWS_UNEXPECTED', true],
    ];
    for (const [name, status, code, retryable] of cases) {
      const e = classifyAwsError(awsErr(name, status), 'RunInstances');
      assert.deepEqual([name, e.code, e.retryable], [name, code, retryable]);
      assert.match(e.message, new RegExp(`RunInstances: AWS ${name.replace('.', '\\.')}`));
    }
  });

  it('retries transient errors with growing backoff, never final ones', async () => {
    const waits: number[] = [];
    let calls = 0;
    const ok = await withAwsRetry('x', async () => { if (++calls < 3) throw awsErr('Throttling'); return 'done'; }, { baseMs: 100, sleep: async (ms) => { waits.push(ms); } });
    assert.deepEqual([ok, calls, waits.length], ['done', 3, 2]);
    assert.ok(waits[0] >= 50 && waits[0] <= 100 && waits[1] >= 100 && waits[1] <= 200, `backoff ${waits}`);
    calls = 0;
    await assert.rejects(withAwsRetry('x', async () => { calls++; throw awsErr('UnauthorizedOperation', 403); }, { sleep: async () => undefined }), (e: any) => e.code === 'PROVIDER_AWS_PERMISSION');
    assert.equal(calls, 1);
    calls = 0;
    await assert.rejects(withAwsRetry('x', async () => { calls++; throw awsErr('Throttling'); }, { attempts: 4, sleep: async () => undefined }), (e: any) => e.code === 'PROVIDER_AWS_TRANSIENT' && e.retryable);
    assert.equal(calls, 4);
  });

  it('derives stable, bounded tokens and names from the upgrade id', () => {
    assert.equal(clientToken('u1', 'app', 0), clientToken('u1', 'app', 0));
    assert.notEqual(clientToken('u1', 'app', 0), clientToken('u1', 'app', 1));
    assert.notEqual(clientToken('u1', 'app', 0), clientToken('u2', 'app', 0));
    assert.ok(clientToken('x'.repeat(300), 'app', 0).length <= 64);
    assert.ok(targetGroupName('x'.repeat(300)).length <= 32 && /^[a-zA-Z0-9-]+$/.test(targetGroupName('u1')));
    assert.deepEqual(spread(5, 2), [3, 2]);
    assert.deepEqual(spread(1, 3), [1, 0, 0]);
  });

  it('refuses weighted forwarding and keeps non-forward actions out of it', () => {
    assert.equal(forwardTarget([{ Type: 'authenticate-oidc', Order: 1 }, { Type: 'forward', Order: 2, TargetGroupArn: 'tg-a' }], 'l'), 'tg-a');
    assert.equal(forwardTarget([{ Type: 'forward', ForwardConfig: { TargetGroups: [{ TargetGroupArn: 'tg-a', Weight: 1 }] } }], 'l'), 'tg-a');
    assert.throws(() => forwardTarget([{ Type: 'forward', ForwardConfig: { TargetGroups: [{ TargetGroupArn: 'tg-a', Weight: 90 }, { TargetGroupArn: 'tg-b', Weight: 10 }] } }], 'l'), /weighted/);
    assert.deepEqual([matches(200, '200'), matches(204, '200-299'), matches(302, '200,302'), matches(503, '200-399')], [true, true, true, false]);
  });
});
