/**
 * The whole upgrade workflow, unchanged, with the AWS provider against moto.
 *
 * Real: the Temporal dev server and an in-process worker running the upgrade
 * workflow and its activities; EC2/ELBv2 calls answered by moto on loopback
 * (VPC, subnets, ALB, listener, rule, Uold's target group created with the
 * SDK; assertions through Describe calls); the live Uold stage (auction v1 on
 * MariaDB behind the ingress interceptor) under the bidding workload; Unew's
 * database, a local MariaDB the "user" prepared (empty database + app user),
 * named in the plan by env: references.
 * Simulated: moto's instances run nothing and have invented addresses (never
 * contacted); each one is paired with a real auction v2 process on 127.0.0.1
 * booted from the user data moto stored (test/aws/auction-fleet.ts).
 */
import { strict as assert } from 'node:assert';
import * as crypto from 'node:crypto';
import type { Client, WorkflowHandle } from '@temporalio/client';
import { DescribeInstancesCommand } from '@aws-sdk/client-ec2';
import { DescribeListenersCommand, DescribeRulesCommand, DescribeTargetGroupsCommand } from '@aws-sdk/client-elastic-load-balancing-v2';
import type { MariaDbInstance } from '../../lib/mariadb';
import type { MotoServer } from '../../lib/moto';
import { createWorker } from '../../worker/run';
import { createAwsProvider } from '../../providers/aws/aws-provider';
import { TAG_UPGRADE, targetGroupName } from '../../providers/aws/naming';
import { loadPlanFile } from '../../plan/load';
import { checkLedger } from '../../examples/auction/ledger-checker';
import { APP_GRANTS } from '../../examples/auction/database';
import type { UoldStage } from '../../examples/auction/stage';
import { abortUpdate, statusQuery } from '../../workflows/messages';
import type { UpgradeStatus } from '../../workflows/status';
import { ImagoClient } from '../../client/api';
import { mariadbFixture, motoFixture, temporalFixture } from '../fixtures/servers';
import { mixedStateViolations, stage, waitPhase, workload } from '../e2e/harness';
import { AuctionFleet } from './auction-fleet';
import { CREDENTIALS, createWorld, unewSection, type World } from './moto-world';

/** Its own task queue, so no worker of another test file (without the aws provider) picks these tasks up. */
const TASK_QUEUE = 'imago-aws-moto';
const ADMIN_ENV = 'IMAGO_TEST_UNEW_ADMIN_URL';
const APP_ENV = 'IMAGO_TEST_UNEW_APP_URL';

describe('the whole upgrade workflow with the aws provider against moto (data plane on loopback)', function () {
  this.timeout(150_000);
  let client: Client;
  let moto: MotoServer;
  let unewDb: MariaDbInstance;
  let w: World | undefined;
  let fleet: AuctionFleet | undefined;
  let s: UoldStage | undefined;
  let stopWorker: (() => Promise<void>) | undefined;
  let n = 0;

  before(async () => {
    [{ client }, moto, unewDb] = await Promise.all([temporalFixture(), motoFixture(), mariadbFixture()]);
  });

  beforeEach(async () => {
    await moto.reset();
    w = await createWorld(moto.endpoint);
    fleet = new AuctionFleet(w.ec2);
    const { address } = await temporalFixture();
    const aws = createAwsProvider({ client: { credentials: CREDENTIALS }, appUrlFor: fleet.appUrlFor, pollMs: 200, retry: { baseMs: 20 } });
    const { worker, close } = await createWorker({ address, taskQueue: TASK_QUEUE, providers: { aws } });
    const running = worker.run();
    stopWorker = async () => { if (worker.getState() === 'RUNNING') worker.shutdown(); await running; await close(); };
  });

  afterEach(async () => {
    await stopWorker?.();
    await fleet?.stop();
    await s?.stop();
    w?.ec2.destroy(); w?.elb.destroy();
    s = undefined; fleet = undefined; w = undefined; stopWorker = undefined;
    delete process.env[ADMIN_ENV]; delete process.env[APP_ENV];
  });

  /** Unew's database as a user prepares it for the aws provider: an empty database and an app user; the workflow installs the v2 schema. */
  async function prepareUnewDatabase(): Promise<{ database: string; adminUrl: string }> {
    const database = `unew_${++n}`;
    const appPassword = crypto.randomBytes(8).toString('hex');
    await unewDb.createDatabase(database);
    await unewDb.createUser('auction_v2', appPassword, [`${APP_GRANTS} ON \`${database}\`.*`]);
    const adminUrl = `${unewDb.rootUrl}${database}`;
    process.env[ADMIN_ENV] = adminUrl;
    process.env[APP_ENV] = unewDb.urlFor('auction_v2', appPassword, database);
    return { database, adminUrl };
  }

  async function startUpgrade(id: string, database: string, overrides: (p: any) => void = () => undefined): Promise<WorkflowHandle> {
    const section = unewSection(w!, moto.endpoint, {
      count: 2,
      userData: "#!/bin/sh\nexport DB_URL='{{UNEW_DB_URL}}'\nexec /opt/auction-v2/start --port 8080\n",
      database: { adminUrlRef: `env:${ADMIN_ENV}`, appUrlRef: `env:${APP_ENV}`, endpoint: `127.0.0.1:${unewDb.port}`, database },
      timeouts: { instancesRunningMs: 20_000, targetsHealthyMs: 30_000 },
    });
    const file = s!.writePlan((p) => {
      p.unew.provider = 'aws';
      p.unew.aws = section.aws;
      p.unew.app.startTimeoutMs = 30_000;
      p.mirror.minDurationMs = 5_000;
      p.postSwitchover.windowMs = 500;
      overrides(p);
    });
    const plan = loadPlanFile(file);
    return (await ImagoClient.fromClient(client).start(plan, { workflowId: id, taskQueue: TASK_QUEUE })).handle;
  }

  async function forwards(): Promise<{ listener?: string; rule?: string }> {
    const l = (await w!.elb.send(new DescribeListenersCommand({ ListenerArns: [w!.listenerArn] }))).Listeners![0];
    const r = (await w!.elb.send(new DescribeRulesCommand({ ListenerArn: w!.listenerArn }))).Rules!.find((x) => x.RuleArn === w!.ruleArn)!;
    assert.equal(l.DefaultActions!.length, 1);
    return { listener: l.DefaultActions![0].TargetGroupArn, rule: r.Actions![0].TargetGroupArn };
  }
  async function targetGroups(): Promise<Array<{ name: string; arn: string }>> {
    return ((await w!.elb.send(new DescribeTargetGroupsCommand({}))).TargetGroups ?? []).map((t) => ({ name: t.TargetGroupName!, arn: t.TargetGroupArn! }));
  }
  async function instancesByState(id: string): Promise<Record<string, number>> {
    const res = await w!.ec2.send(new DescribeInstancesCommand({ Filters: [{ Name: `tag:${TAG_UPGRADE}`, Values: [id] }] }));
    const out: Record<string, number> = {};
    for (const i of (res.Reservations ?? []).flatMap((r) => r.Instances ?? [])) out[i.State!.Name!] = (out[i.State!.Name!] ?? 0) + 1;
    return out;
  }
  function assertLoopbackOnly(status: UpgradeStatus): void {
    const urls = status.unew?.appUrls ?? [];
    assert.equal(urls.length, 2, 'one app URL per instance');
    assert.ok(urls.every((u) => /^http:\/\/127\.0\.0\.1:\d+\/?$/.test(u)), `Unew's traffic goes to loopback only: ${urls.join(', ')}`);
  }

  it('completes: the listener forwards to Unew\'s target group, no write lost, no failed request, no mixed state', async () => {
    s = await stage();
    const { database, adminUrl } = await prepareUnewDatabase();
    const load = workload(s, 150_000, 40);
    const id = `aws-complete-${Date.now()}`;
    let status: UpgradeStatus;
    try {
      status = await (await startUpgrade(id, database)).result();
    } finally {
      load.stop();
    }
    const res = await load.done;
    assert.equal(status.outcome, 'completed', status.lastError ?? '');
    assert.equal(status.gate?.pass, true, JSON.stringify(status.gate));
    assert.equal(status.cutovers.at(-1)?.switched, true);
    assertLoopbackOnly(status);

    // AWS state, through Describe calls: the listener and the rule now forward to Unew's target group.
    const unewTg = (await targetGroups()).find((t) => t.name === targetGroupName(id));
    assert.ok(unewTg, "Unew's target group exists");
    assert.deepEqual(await forwards(), { listener: unewTg.arn, rule: unewTg.arn });
    assert.deepEqual(await instancesByState(id), { running: 2 }, 'Unew (live now) keeps its instances');
    const members = await fleet!.running();
    assert.deepEqual(members.map((m) => m.app.url).sort(), [...status.unew!.appUrls].sort(), 'every app URL is a simulated instance');
    assert.ok(members.every((m) => m.dbUrl === process.env[APP_ENV]), "each instance booted with Unew's app URL from its user data");

    // Data and traffic invariants.
    assert.ok(res.ledger.length > 20, `the workload wrote (${res.ledger.length} acknowledged writes)`);
    const ledger = await checkLedger(adminUrl, 'v2', res.ledger);
    assert.deepEqual({ missing: ledger.missing.length, duplicated: ledger.duplicated.length, altered: ledger.altered.length }, { missing: 0, duplicated: 0, altered: 0 });
    assert.equal(res.errors, 0, `failed requests: ${JSON.stringify(res.byStatus)}`);
    const served = await mixedStateViolations(s);
    assert.ok(served.unew > 0, 'Unew (the auction v2 fleet) served after the switch');
    assert.equal(served.violations, 0, 'no request served by Uold after the first one served by Unew');
  });

  it('abort while awaiting approval: no instance left running, no Unew target group, the listener unchanged', async () => {
    s = await stage();
    const { database } = await prepareUnewDatabase();
    const load = workload(s, 150_000, 30);
    const id = `aws-abort-${Date.now()}`;
    let status: UpgradeStatus;
    try {
      const handle = await startUpgrade(id, database, (p) => { p.approval = { policy: 'manual', timeoutMs: 120_000, onTimeout: 'abort' }; });
      const waiting = await waitPhase(client, id, ['awaiting-approval'], 100_000);
      assertLoopbackOnly(waiting);
      assert.equal(waiting.gate?.pass, true, JSON.stringify(waiting.gate));
      // Unew is fully up in moto before the abort, and the listener still forwards to Uold.
      assert.deepEqual(await instancesByState(id), { running: 2 });
      assert.ok((await targetGroups()).some((t) => t.name === targetGroupName(id)));
      assert.deepEqual(await forwards(), { listener: w!.uoldTg, rule: w!.uoldTg });

      await handle.executeUpdate(abortUpdate, { args: [{ reason: 'test' }] });
      await assert.rejects(handle.result(), (e: any) => /IMAGO_ABORTED|aborted/.test(`${e?.cause?.type ?? ''} ${e?.cause?.message ?? e?.message}`));
      status = await handle.query(statusQuery);
    } finally {
      load.stop();
    }
    const res = await load.done;
    assert.equal(status.outcome, 'aborted', status.lastError ?? '');
    assert.ok(!status.lastError?.includes('destroying Unew failed'), status.lastError ?? '');

    // Teardown by tags: every instance terminated, Unew's target group gone, the listener and rule untouched.
    assert.deepEqual(await instancesByState(id), { terminated: 2 });
    assert.deepEqual((await targetGroups()).map((t) => t.name), ['uold']);
    assert.deepEqual(await forwards(), { listener: w!.uoldTg, rule: w!.uoldTg });
    // The simulated instances stop with their EC2 instances.
    assert.equal((await fleet!.reap()).length, 2);
    assert.equal((await fleet!.running()).length, 0);
    // Uold never noticed.
    assert.equal(res.errors, 0, `failed requests: ${JSON.stringify(res.byStatus)}`);
    const served = await mixedStateViolations(s);
    assert.equal(served.unew, 0, 'nothing was served by Unew');
  });
});
