/**
 * The whole upgrade on AWS (moto behind the realism layer), run by the
 * worker exactly as an operator runs it: `imago worker` (client/bin/imago.js)
 * in its own process, with the providers it registers by default and the
 * SDK's default credential chain (environment variables here). No provider
 * is injected; nothing in product code knows it is a test.
 *
 * Real: the Temporal dev server; the worker process; EC2/ELBv2/SSM calls
 * answered by moto through the realism proxy (targets unused until used,
 * initial for interval × threshold, eventual consistency, ClientToken
 * replays, occasional throttling); the live Uold stage (auction v1 on MariaDB
 * behind the ingress interceptor) under the bidding workload; Unew's
 * database, a local MariaDB the "user" prepared, its app URL in SSM.
 * Simulated: what moto's instances would run (test/aws/instance-sim.ts):
 * each instance's user data runs with /bin/sh, fetches the app's database
 * URL from SSM with the AWS CLI and starts auction v2; the plan's appUrl
 * template reads the loopback address the simulator tags the instance with.
 * Not simulated: the load balancer's data plane (moto's ALB forwards
 * nothing): clients reach Uold, and after the switch Unew, through the
 * stage's ingress interceptor, while the listener changes are asserted
 * through Describe calls.
 */
import { strict as assert } from 'node:assert';
import * as crypto from 'node:crypto';
import * as path from 'node:path';
import type { Client, WorkflowHandle } from '@temporalio/client';
import { itFull } from '../fixtures/tier';
import { DescribeInstancesCommand } from '@aws-sdk/client-ec2';
import { DescribeListenersCommand, DescribeRulesCommand, DescribeTargetGroupsCommand } from '@aws-sdk/client-elastic-load-balancing-v2';
import type { MariaDbInstance } from '../../lib/mariadb';
import type { MotoServer } from '../../lib/moto';
import { ManagedProcess } from '../../lib/proc';
import { createAwsProvider } from '../../providers/aws/aws-provider';
import { collectGarbage, type GcEntry } from '../../providers/gc';
import { PROBE_HEADER, TAG_UPGRADE, targetGroupName } from '../../providers/aws/naming';
import { loadPlanFile } from '../../plan/load';
import { checkLedger } from '../../examples/auction/ledger-checker';
import { APP_GRANTS } from '../../examples/auction/database';
import type { UoldStage } from '../../examples/auction/stage';
import { abortUpdate, statusQuery } from '../../workflows/messages';
import type { UpgradeStatus } from '../../workflows/status';
import { ImagoClient } from '../../client/api';
import { mariadbFixture, motoFixture, temporalFixture } from '../fixtures/servers';
import { briefTesting, mixedStateViolations, stage, waitPhase, workload } from '../e2e/harness';
import { IngressControlClient } from '../../interceptors/ingress';
import { InstanceSimulator } from './instance-sim';
import { CREDENTIALS, createWorld, destroyWorld, putDbUrl, unewSection, type World } from './moto-world';
import { RealismProxy } from './realism';

const ROOT = path.join(__dirname, '..', '..');
/** Its own task queue, so no worker of another test file picks these tasks up. */
const TASK_QUEUE = 'imago-aws-moto';
const ADMIN_ENV = 'IMAGO_TEST_UNEW_ADMIN_URL';
const HOLD_TIMEOUT_MS = 6_000;

describe('the whole upgrade on AWS (moto + realism layer), run by `imago worker`', function () {
  this.timeout(240_000);
  let client: Client;
  let address: string;
  let moto: MotoServer;
  let proxy: RealismProxy;
  let sim: InstanceSimulator;
  let unewDb: MariaDbInstance;
  let w: World | undefined;
  let s: UoldStage | undefined;
  let worker: ManagedProcess | undefined;
  let n = 0;

  before(async () => {
    [{ client, address }, moto, unewDb] = await Promise.all([temporalFixture(), motoFixture(), mariadbFixture()]);
    sim = new InstanceSimulator(moto.endpoint).start();
    proxy = await new RealismProxy(moto.endpoint, { timeScale: 0.1, healthOf: sim.healthOf }).start();
  });

  after(async () => {
    await sim?.stop();
    await proxy?.stop();
  });

  async function setUp(): Promise<void> {
    await moto.reset();
    // Throttling on: about one EC2 or ELB call in 30 answers RequestLimitExceeded / Throttling, and the first
    // RunInstances, RegisterTargets and ModifyListener (inside the hold) always do.
    proxy.reset({ throttleRate: 1 / 30, throttleFirst: ['RunInstances', 'RegisterTargets', 'ModifyListener'], seed: 11, releaseLagMs: 1_000 });
    w = await createWorld(moto.endpoint);
  }

  async function tearDown(): Promise<void> {
    await worker?.stop(10_000);
    await sim.stopAll();
    await s?.stop();
    destroyWorld(w);
    s = undefined; w = undefined; worker = undefined;
  }

  /** `imago worker`, as an operator starts it, with the secrets' environment and AWS credentials from the environment. */
  function startWorker(extraEnv: Record<string, string>): ManagedProcess {
    return new ManagedProcess('imago-worker', process.execPath, [path.join(ROOT, 'client/bin/imago.js'), 'worker', '--address', address, '--task-queue', TASK_QUEUE],
      path.join(s!.dir, `worker-${Date.now()}.log`), {
        cwd: ROOT,
        env: {
          ...process.env, ...s!.env, ...extraEnv,
          AWS_ACCESS_KEY_ID: CREDENTIALS.accessKeyId, AWS_SECRET_ACCESS_KEY: CREDENTIALS.secretAccessKey, AWS_EC2_METADATA_DISABLED: 'true',
        },
      });
  }

  /** Unew's database as a user prepares it on AWS: an empty database, an app user, the app's URL in SSM. */
  async function prepareUnewDatabase(): Promise<{ database: string; adminUrl: string; appUrl: string }> {
    const database = `unew_${++n}`;
    const appPassword = crypto.randomBytes(8).toString('hex');
    await unewDb.createDatabase(database);
    await unewDb.createUser('auction_v2', appPassword, [`${APP_GRANTS} ON \`${database}\`.*`]);
    const appUrl = unewDb.urlFor('auction_v2', appPassword, database);
    await putDbUrl(w!, appUrl);
    return { database, adminUrl: `${unewDb.rootUrl}${database}`, appUrl };
  }

  async function startUpgrade(id: string, database: string, overrides: (p: any) => void = () => undefined): Promise<{ handle: WorkflowHandle; unew: Record<string, unknown> }> {
    const section = unewSection(w!, proxy.endpoint, {
      count: 2,
      database: { adminUrlRef: `env:${ADMIN_ENV}`, endpoint: `127.0.0.1:${unewDb.port}`, database, appUser: 'auction_v2' },
      timeouts: { instancesRunningMs: 60_000, targetsHealthyMs: 60_000 },
    });
    const file = s!.writePlan((p) => {
      p.unew.provider = 'aws';
      p.unew.aws = section.aws;
      p.mirror.minDurationMs = 5_000;
      p.postSwitchover.windowMs = 500;
      // This machine is shared and loaded: the cut-over's own check refuses a drain budget below the p99
      // latency it measures (2.5 s seen), so the budgets are roomier than the example plan's. The hold stays
      // short: when the worker dies mid-swap, held clients wait it out (the workload gives up at 10 s).
      p.switchover = { ...p.switchover, drainTimeoutMs: 3_000, holdTimeoutMs: HOLD_TIMEOUT_MS, maxAttempts: 5 };
      overrides(p);
    });
    const plan = loadPlanFile(file);
    const { handle } = await ImagoClient.fromClient(client).start(plan, { workflowId: id, taskQueue: TASK_QUEUE });
    return { handle, unew: { ...plan.unew } as unknown as Record<string, unknown> };
  }

  async function routes(): Promise<string[]> {
    const target = (actions: any[] | undefined) => actions?.find((a) => a.Type === 'forward')?.TargetGroupArn;
    const ls = (await w!.elb.send(new DescribeListenersCommand({ LoadBalancerArn: w!.lbArn }))).Listeners!;
    const rules = (await w!.elb.send(new DescribeRulesCommand({ ListenerArn: w!.listenerArn }))).Rules!;
    return [target(ls.find((l) => l.ListenerArn === w!.listenerArn)!.DefaultActions), target(ls.find((l) => l.ListenerArn === w!.otherListenerArn)!.DefaultActions),
      target(rules.find((r) => r.RuleArn === w!.apiRuleArn)!.Actions), target(rules.find((r) => r.RuleArn === w!.adminRuleArn)!.Actions)];
  }
  async function targetGroups(): Promise<string[]> {
    return ((await w!.elb.send(new DescribeTargetGroupsCommand({}))).TargetGroups ?? []).map((t) => t.TargetGroupName!).sort();
  }
  async function probeRules(): Promise<number> {
    return (await w!.elb.send(new DescribeRulesCommand({ ListenerArn: w!.listenerArn }))).Rules!.filter((r) => r.Conditions?.some((c) => c.HttpHeaderConfig?.HttpHeaderName === PROBE_HEADER)).length;
  }
  async function instancesByState(id: string): Promise<Record<string, number>> {
    const res = await w!.ec2.send(new DescribeInstancesCommand({ Filters: [{ Name: `tag:${TAG_UPGRADE}`, Values: [id] }] }));
    const out: Record<string, number> = {};
    for (const i of (res.Reservations ?? []).flatMap((r) => r.Instances ?? [])) out[i.State!.Name!] = (out[i.State!.Name!] ?? 0) + 1;
    return out;
  }
  /** What `imago gc` would find: the provider's listing by tag, made with the same plan section. */
  async function leftByTag(unew: Record<string, unknown>) {
    const keep = { ...process.env };
    Object.assign(process.env, { AWS_ACCESS_KEY_ID: CREDENTIALS.accessKeyId, AWS_SECRET_ACCESS_KEY: CREDENTIALS.secretAccessKey });
    const aws = createAwsProvider();
    try { return await aws.listUniverses(unew); } finally {
      aws.close();
      for (const k of Object.keys(process.env)) if (!(k in keep)) delete process.env[k];
      Object.assign(process.env, keep);
    }
  }
  /** Where failed requests fell, by phase: for the failure message. */
  function whenErrors(timeline: Array<{ t: number; endpoint: string; errors: number }>, loadStart: number, status: UpgradeStatus): string {
    return timeline.filter((b) => b.errors).map((b) => {
      const at = loadStart + b.t;
      const phase = [...status.timings].reverse().find((x) => x.startedAt <= at)?.phase ?? 'before';
      return `${b.errors}×${b.endpoint} at +${b.t} ms (${phase})`;
    }).join(', ') || 'none';
  }

  function assertLoopbackOnly(status: UpgradeStatus): void {
    const urls = status.unew?.appUrls ?? [];
    assert.equal(urls.length, 2, 'one app URL per instance');
    assert.ok(urls.every((u) => /^http:\/\/127\.0\.0\.1:\d+\/?$/.test(u)), `Unew's traffic goes to loopback only: ${urls.join(', ')}`);
  }

  describe('one upgrade per test', () => {
    beforeEach(setUp);
    afterEach(tearDown);

    it('completes under load: every listener and rule on Unew, no write lost, no failed request, no mixed state', async () => {
      s = await stage();
      const { database, adminUrl, appUrl } = await prepareUnewDatabase();
      worker = startWorker({ [ADMIN_ENV]: adminUrl });
      const loadStart = Date.now();
      const load = workload(s, 200_000, 40);
      const id = `aws-complete-${Date.now()}`;
      let status: UpgradeStatus;
      let termination = 0;
      try {
        // The plan's tests and the mirror window run on AWS as the sample plans them; the load test's path is the
        // provider's app URL like any other (test/e2e/upgrade.test.ts runs it), left out for npm test's time.
        const { handle } = await startUpgrade(id, database, (p) => { p.loadTest.enabled = false; });
        termination = (await waitPhase(client, id, ['termination', 'switchover', 'post-switchover', 'completed', 'failed'], 200_000)).phaseStartedAt;
        status = await handle.result();
      } finally {
        load.stop();
      }
      const res = await load.done;
      assert.equal(status.outcome, 'completed', `${status.lastError ?? ''}\n${worker!.tail(30)}`);
      assert.equal(status.gate?.pass, true, JSON.stringify(status.gate));
      const cut = status.cutovers.at(-1)!;
      assert.equal(cut.switched, true);
      assertLoopbackOnly(status);

      // AWS state, through Describe calls: every forwarder of Uold now forwards to Unew's group.
      const unewTg = ((await w!.elb.send(new DescribeTargetGroupsCommand({ Names: [targetGroupName(id)] }))).TargetGroups ?? [])[0]?.TargetGroupArn;
      assert.ok(unewTg, "Unew's target group exists");
      assert.deepEqual(await routes(), [unewTg, unewTg, unewTg, unewTg]);
      assert.deepEqual(await instancesByState(id), { running: 2 }, 'Unew (live now) keeps its instances');
      const booted = sim.running().filter((i) => i.upgradeId === id);
      assert.deepEqual(booted.map((i) => `http://127.0.0.1:${i.port}`).sort(), [...status.unew!.appUrls].sort(), 'every app URL is a simulated instance');
      for (const i of booted) {
        assert.equal(sim.envOf(i.instanceId).DATABASE_URL, appUrl, "each instance got Unew's app URL from SSM, on the instance");
        assert.ok(!i.userData.includes(appUrl.split('@')[0]) && i.httpTokens === 'required', 'no secret in user data; IMDSv2 required');
      }

      // Data and traffic invariants.
      assert.ok(res.ledger.length > 20, `the workload wrote (${res.ledger.length} acknowledged writes)`);
      const ledger = await checkLedger(adminUrl, 'v2', res.ledger);
      assert.deepEqual({ missing: ledger.missing.length, duplicated: ledger.duplicated.length, altered: ledger.altered.length }, { missing: 0, duplicated: 0, altered: 0 });
      assert.equal(res.errors, 0, `failed requests: ${JSON.stringify(res.byStatus)}; when: ${whenErrors(res.timeline, loadStart, status)}`);
      const served = await mixedStateViolations(s);
      const records = await new IngressControlClient(s.controlUrl, s.token).servedAll(0);
      console.log(`      the interceptor served ${records.length} of the ${res.requests} requests sent (connection resets: ${res.byStatus.ECONNRESET ?? 0})`);
      assert.ok(served.unew > 0, 'Unew (the auction v2 fleet) served after the switch');
      assert.equal(served.violations, 0, 'no request served by Uold after the first one served by Unew');

      // The ELB calls of the cut-over: the hold spans from the first call of the swap (a Modify) to the last.
      const elbDuring = proxy.calls.filter((c) => c.service === 'elasticloadbalancing' && c.at >= termination);
      const modifies = elbDuring.filter((c) => c.action.startsWith('Modify'));
      const first = Math.min(...modifies.map((c) => c.at));
      const last = Math.max(...modifies.map((c) => c.at));
      const inHold = elbDuring.filter((c) => c.at >= first && c.at <= last).sort((a, b) => a.at - b.at);
      const pauseMs = Math.max(0, ...res.timeline.map((b) => b.max));
      console.log(`      pause: cut-over total ${cut.totalMs.toFixed(1)} ms (hold ${cut.holdMs.toFixed(1)}, drain ${cut.drainMs.toFixed(1)}, flush ${cut.flushMs.toFixed(1)}, verify ${cut.verifyMs.toFixed(1)}, switch ${cut.switchMs.toFixed(1)}, record ${cut.recordMs.toFixed(1)}, load balancer ${cut.providerMs.toFixed(1)}, release ${cut.releaseMs.toFixed(1)} ms); largest client latency ${pauseMs} ms; ${res.requests} requests, ${res.ledger.length} writes`);
      console.log(`      ELB calls inside the hold: ${inHold.length} (${inHold.map((c) => `${c.action}${c.injected ? `[${c.injected}]` : ''}`).join(', ')}); from termination on: ${elbDuring.length}; realism: ${JSON.stringify(proxy.stats)}`);
      assert.deepEqual(inHold.filter((c) => !c.action.startsWith('Modify')), [], 'no describe inside the hold');
      assert.equal(modifies.filter((c) => c.status === 200).length, 4, 'each of the 4 forwarders modified once');
      assert.ok(proxy.stats.throttled >= 3 && proxy.stats.notFound > 0 && proxy.stats.invalidTarget > 0 && proxy.stats.initial > 0, `the realism layer was in the way: ${JSON.stringify(proxy.stats)}`);
      assert.ok(modifies.some((c) => c.injected === 'Throttling'), 'a Modify call inside the hold was throttled, and retried by the SDK');
    });

    itFull('abort while awaiting approval: nothing left by tag (instances, volumes, group, probe rule), the routes untouched', 'the terminated-upgrade case tears Unew down by tag through gc', async () => {
      s = await stage();
      const { database, adminUrl } = await prepareUnewDatabase();
      worker = startWorker({ [ADMIN_ENV]: adminUrl });
      const loadStart = Date.now();
      const load = workload(s, 200_000, 30);
      const id = `aws-abort-${Date.now()}`;
      let status: UpgradeStatus;
      let unew: Record<string, unknown>;
      try {
        const started = await startUpgrade(id, database, (p) => { briefTesting(p); p.approval = { policy: 'manual', timeoutMs: 120_000, onTimeout: 'abort' }; });
        unew = started.unew;
        const waiting = await waitPhase(client, id, ['awaiting-approval'], 200_000);
        assertLoopbackOnly(waiting);
        assert.equal(waiting.gate?.pass, true, JSON.stringify(waiting.gate));
        // Unew is fully up in moto before the abort, attached through its probe rule; the routes still on Uold.
        assert.deepEqual(await instancesByState(id), { running: 2 });
        assert.ok((await targetGroups()).includes(targetGroupName(id)));
        assert.equal(await probeRules(), 1);
        assert.deepEqual(await routes(), [w!.uoldTg, w!.uoldTg, w!.uoldTg, w!.uoldTg]);
        assert.equal((await leftByTag(unew)).length, 1);

        await started.handle.executeUpdate(abortUpdate, { args: [{ reason: 'test' }] });
        await assert.rejects(started.handle.result(), (e: any) => /IMAGO_ABORTED|aborted/.test(`${e?.cause?.type ?? ''} ${e?.cause?.message ?? e?.message}`));
        status = await started.handle.query(statusQuery);
      } finally {
        load.stop();
      }
      const res = await load.done;
      assert.equal(status.outcome, 'aborted', status.lastError ?? '');
      assert.ok(!status.lastError?.includes('destroying Unew failed'), status.lastError ?? '');

      // Nothing left, found by tag as `imago gc` would look; the routes and Uold's group untouched.
      assert.deepEqual(await leftByTag(unew!), []);
      assert.deepEqual(await instancesByState(id), { terminated: 2 });
      assert.deepEqual(await targetGroups(), ['static', 'uold']);
      assert.equal(await probeRules(), 0);
      assert.deepEqual(await routes(), [w!.uoldTg, w!.uoldTg, w!.uoldTg, w!.uoldTg]);
      await new Promise((r) => setTimeout(r, 500)); // the simulator stops what EC2 terminated at its next look
      assert.equal(sim.running().filter((i) => i.upgradeId === id).length, 0, 'the simulated instances stopped with their EC2 instances');
      // Uold never noticed.
      assert.equal(res.errors, 0, `failed requests: ${JSON.stringify(res.byStatus)}; when: ${whenErrors(res.timeline, loadStart, status)}`);
      const served = await mixedStateViolations(s);
      assert.equal(served.unew, 0, 'nothing was served by Unew');
    });
    it('a terminated upgrade (no compensation runs) leaves Unew behind: gc finds it by tag, with its owner, and destroys it all', async () => {
      s = await stage();
      const { database, adminUrl } = await prepareUnewDatabase();
      worker = startWorker({ [ADMIN_ENV]: adminUrl });
      const id = `aws-gc-${Date.now()}`;
      const load = workload(s, 200_000, 30); // the gate needs mirrored reads
      let started: Awaited<ReturnType<typeof startUpgrade>>;
      try {
        started = await startUpgrade(id, database, (p) => { briefTesting(p); p.approval = { policy: 'manual', timeoutMs: 120_000, onTimeout: 'abort' }; });
        await waitPhase(client, id, ['awaiting-approval'], 200_000);
        await started.handle.terminate('test: a terminated workflow runs no compensation');
      } finally {
        load.stop();
        await load.done;
      }
      assert.deepEqual(await instancesByState(id), { running: 2 }, 'left behind');
      const keep = { ...process.env };
      Object.assign(process.env, { AWS_ACCESS_KEY_ID: CREDENTIALS.accessKeyId, AWS_SECRET_ACCESS_KEY: CREDENTIALS.secretAccessKey });
      const aws = createAwsProvider();
      let entries: GcEntry[];
      try {
        const dry = await collectGarbage({ client, sources: [{ provider: aws, unew: started.unew }] });
        assert.deepEqual(dry.map((e) => [e.upgradeId, e.action, e.workflow, e.serving]), [[id, 'destroy', 'TERMINATED', false]], JSON.stringify(dry));
        assert.deepEqual(dry[0].owner, { namespace: 'default', taskQueue: TASK_QUEUE, workflowId: id }, 'its owner, read from its tags');
        entries = await collectGarbage({ client, sources: [{ provider: aws, unew: started.unew }], destroy: true });
      } finally {
        aws.close();
        for (const k of Object.keys(process.env)) if (!(k in keep)) delete process.env[k];
        Object.assign(process.env, keep);
      }
      assert.deepEqual(entries.map((e) => [e.upgradeId, e.destroyed, e.error]), [[id, true, undefined]]);
      assert.deepEqual(await leftByTag(started.unew), []);
      assert.deepEqual(await instancesByState(id), { terminated: 2 });
      assert.deepEqual(await targetGroups(), ['static', 'uold']);
      assert.equal(await probeRules(), 0);
      assert.deepEqual(await routes(), [w!.uoldTg, w!.uoldTg, w!.uoldTg, w!.uoldTg]);
    });
  });

  describe('worker killed in the middle of the load-balancer swap', () => {
    // One scenario, run once; its findings are asserted one by one below.
    let crashedAt = 0;
    let partial: string[] = [];
    let found: { routes: string[]; left: Awaited<ReturnType<typeof leftByTag>>; groups: string[]; instances: Record<string, number> };
    let status: UpgradeStatus;
    let res: Awaited<ReturnType<typeof workload>['done']>;
    let adminUrl = '';
    let unewTg = '';
    let id = '';

    before(async function () {
      this.timeout(300_000);
      await setUp();
      s = await stage();
      const db = await prepareUnewDatabase();
      adminUrl = db.adminUrl;
      const env = { [ADMIN_ENV]: adminUrl };
      worker = startWorker(env);
      // The crash: once moto has applied the swap's first Modify call, and before the worker hears of it.
      proxy.configure({
        throttleFirst: [],
        beforeReply: async (c) => {
          if (crashedAt || c.service !== 'elasticloadbalancing' || !c.action.startsWith('Modify') || c.status !== 200) return;
          crashedAt = Date.now();
          await worker!.kill9();
        },
      });

      const load = workload(s, 200_000, 40);
      id = `aws-crash-${Date.now()}`;
      try {
        const { handle, unew } = await startUpgrade(id, db.database, briefTesting);
        const why = async () => {
          const st = await handle.query(statusQuery).catch(() => null);
          return `phase ${st?.phase}, last error ${st?.lastError}, attempts ${JSON.stringify(st?.cutovers.map((c) => [c.mode, c.switched, c.error]))}\nworker:\n${worker!.tail(15)}`;
        };
        for (const deadline = Date.now() + 200_000; !crashedAt;) {
          const st = await handle.query(statusQuery).catch(() => null);
          assert.ok(!st || !['completed', 'failed', 'aborted'].includes(st.phase), `ended before the swap: ${st?.lastError}`);
          assert.ok(Date.now() < deadline, `no swap within 200 s: ${await why()}`);
          await new Promise((r) => setTimeout(r, 200));
        }
        partial = await routes();
        worker = startWorker(env);
        let timer: NodeJS.Timeout | undefined;
        status = await Promise.race([handle.result(), new Promise<never>((_, reject) => {
          timer = setTimeout(() => { void why().then((w) => reject(new Error(`not completed 80 s after the crash: ${w}`))); }, 80_000);
        })]).finally(() => clearTimeout(timer));
        unewTg = ((await w!.elb.send(new DescribeTargetGroupsCommand({ Names: [targetGroupName(id)] }))).TargetGroups ?? [])[0]?.TargetGroupArn ?? '';
        found = { routes: await routes(), left: await leftByTag(unew), groups: await targetGroups(), instances: await instancesByState(id) };
      } finally {
        load.stop();
      }
      res = await load.done;
    });

    after(tearDown);

    it('the crash left the routes half switched; the next worker completed the swap forward', () => {
      assert.ok(partial.includes(w!.uoldTg) && partial.includes(unewTg), `half switched at the crash: ${partial.join(', ')}`);
      assert.equal(status.outcome, 'completed', status.lastError ?? '');
      assert.equal(status.pointOfNoReturnPassed, true);
      const forward = status.cutovers.filter((c) => c.mode === 'forward');
      assert.ok(forward.length >= 1 && forward.at(-1)!.switched, JSON.stringify(status.cutovers.map((c) => [c.mode, c.switched, c.error])));
      assert.deepEqual(found.routes, [unewTg, unewTg, unewTg, unewTg]);
    });

    it('nothing left behind: by tag, only the live Unew (its 2 instances and its group)', () => {
      assert.deepEqual(found.left.map((u) => [u.upgradeId, u.inUse]), [[id, true]], JSON.stringify(found.left));
      assert.match(found.left[0].detail, /2 instance\(s\)/);
      assert.deepEqual(found.groups, ['static', targetGroupName(id), 'uold'].sort());
      assert.deepEqual(found.instances, { running: 2 });
    });

    it('no acknowledged write lost; the held requests released forward to Unew at the hold timeout; none failed at the interceptor; no mixed state there', async () => {
      const ledger = await checkLedger(adminUrl, 'v2', res.ledger);
      assert.deepEqual({ missing: ledger.missing.length, duplicated: ledger.duplicated.length, altered: ledger.altered.length }, { missing: 0, duplicated: 0, altered: 0 });
      // The dead worker's hold was committed: the interceptor released it forward, by itself, at its timeout.
      const st = await new IngressControlClient(s!.controlUrl, s!.token).status() as unknown as { transitions?: Array<{ at: number; what: string; detail: string }> };
      const around = (st.transitions ?? []).filter((t) => t.at >= crashedAt - 10_000);
      const hold = around.find((t) => t.what === 'hold');
      const commit = around.find((t) => t.what === 'commit');
      const release = around.find((t) => t.what === 'release');
      const story = around.map((t) => `${t.at - crashedAt} ms ${t.what}: ${t.detail}`).join('\n        ');
      assert.ok(hold && commit && commit.at < crashedAt, `committed before the load balancer's first change:\n        ${story}`);
      assert.ok(release && /committed, so released forward/.test(release.detail) && release.at - hold.at <= HOLD_TIMEOUT_MS + 1_000, `released forward at the hold timeout:\n        ${story}`);
      // A request may fail only by waiting: the hold's full timeout, then the burst of held requests onto
      // Unew. None may fail at the interceptor (refused, reset, 5xx).
      const atInterceptor = ['502', '503', '504', 'ECONNRESET'].reduce((n, k) => n + (res.byStatus[k] ?? 0), 0);
      assert.equal(atInterceptor, 0, `failed at the interceptor: ${JSON.stringify(res.byStatus)}`);
      const served = await mixedStateViolations(s!);
      assert.equal(served.violations, 0, 'at the interceptor: no request served by Uold after the first one served by Unew');
      const records = await new IngressControlClient(s!.controlUrl, s!.token).servedAll(0);
      const uoldAfter = records.filter((r) => r.upstream === 'uold' && r.end > crashedAt).length;
      console.log(`      crash mid-swap: routes at the crash ${partial.map((t) => (t === w!.uoldTg ? 'uold' : 'unew')).join(',')}; attempts ${status.cutovers.map((c) => c.mode).join(' → ')}; ${release!.detail}; requests served by Uold after the first Modify: ${uoldAfter}; client timeouts (10 s) among the held: ${res.byStatus.timeout ?? 0} of ${res.requests} requests; largest client latency ${Math.max(0, ...res.timeline.map((b) => b.max))} ms`);
    });

    // On AWS the load balancer sends requests to Unew directly from the first Modify on. The cut-over commits
    // the interceptors before the provider's switch, so a worker dying mid-swap leaves holds that time out
    // forward, to Unew: no request may reach Uold after that moment (it would be a mixed state there).
    it('no request served by Uold after the load balancer began sending to Unew', async () => {
      const records = await new IngressControlClient(s!.controlUrl, s!.token).servedAll(0);
      assert.equal(records.filter((r) => r.upstream === 'uold' && r.end > crashedAt).length, 0);
    });

  });
});
