import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { isImagoError } from '../../lib/errors';
import { EXIT_CODES } from '../../workflows/status';
import { Client } from '@temporalio/client';
import { msToTs } from '@temporalio/common/lib/time';
import { loadPlanFile } from '../../plan/load';
import { temporalFixture } from '../fixtures/servers';
import { cli, cliProcess, clientHarness, tmp, waitForList, waitForStatus, writePlan } from './harness';

const ISO_LINE = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z imago-/;

describe('client: imago CLI against a real dev server and the test-double workflow', function () {
  this.timeout(120_000);
  before(async function () { this.timeout(180_000); await clientHarness(); });

  it('plan validate: exit 0 for a valid plan, exit 1 with every error and its path for a bad one', async () => {
    const good = await cli(['plan', 'validate', writePlan('valid-plan')]);
    assert.equal(good.code, 0, good.err);
    assert.match(good.out, /valid plan 'valid-plan'.*workflow id imago-valid-plan/);

    const badFile = path.join(tmp, 'bad.json');
    fs.writeFileSync(badFile, JSON.stringify({ name: 'Bad Name!', system: 'x', from: {}, to: { version: '2' }, extra: 1 }));
    const bad = await cli(['plan', 'validate', badFile]);
    assert.equal(bad.code, EXIT_CODES.usage);
    for (const e of ['/name', "/from: missing required key 'version'", "unknown key 'extra'", "missing required key 'uold'", "missing required key 'unew'"]) {
      assert.ok(bad.err.includes(e), `stderr names ${e}:\n${bad.err}`);
    }
    const asJson = await cli(['plan', 'validate', badFile, '--json']);
    const parsed = JSON.parse(asJson.out);
    assert.equal(asJson.code, 1);
    assert.equal(parsed.valid, false);
    assert.equal(parsed.code, 'IMAGO_PLAN_INVALID');
    assert.equal(parsed.errors.length, 5);
  });

  it('unknown ids, bad usage: a registry error, exit 1, JSON error on --json', async () => {
    const st = await cli(['status', 'imago-nope']);
    assert.equal(st.code, 1);
    assert.match(st.err, /CLIENT_NOT_FOUND: No upgrade with this id: imago-nope/);
    const ap = await cli(['approve', 'nope', '--json']);
    assert.equal(ap.code, 1);
    assert.equal(JSON.parse(ap.out).error.code, 'CLIENT_NOT_FOUND');
    const usage = await cli(['status']);
    assert.equal(usage.code, 1);
    assert.match(usage.err, /CLIENT_USAGE.*imago status <id>/);
    const unknownOpt = await cli(['list', '--colour']);
    assert.match(unknownOpt.err, /CLIENT_USAGE.*--colour/);
    const unknownCmd = await cli(['frobnicate']);
    assert.equal(unknownCmd.code, 1);
    const help = await cli(['abort', '--help']);
    assert.equal(help.code, 0);
    assert.match(help.out, /--reason TEXT/);
    assert.match(help.out, /TEMPORAL_ADDRESS/);
    await assert.rejects((await clientHarness()).imago.status('imago-nope'), (e) => isImagoError(e, 'CLIENT_NOT_FOUND'));
  });

  it('drives a manual upgrade: refused operations change nothing; pause, throttle, approve, finalize; watch and list', async () => {
    const started = await cli(['upgrade', 'start', writePlan('manual-one'), '--json']);
    assert.equal(started.code, 0, started.err);
    const { workflowId, url } = JSON.parse(started.out).started;
    assert.equal(workflowId, 'imago-manual-one');
    // No UI URL configured anywhere, none recorded on the server: the dev server's own, frontend port + 1000.
    const port = Number((await clientHarness()).address.split(':')[1]);
    assert.equal(url, `http://127.0.0.1:${port + 1000}/namespaces/default/workflows/imago-manual-one`);

    const again = await cli(['upgrade', 'start', writePlan('manual-one')]);
    assert.equal(again.code, 1);
    assert.match(again.err, /CLIENT_ALREADY_RUNNING/);

    await waitForStatus(workflowId, (s) => s.phase !== 'bootstrapping');
    assert.equal((await cli(['pause', workflowId])).code, 0);
    const paused = await waitForStatus(workflowId, (s) => s.controls.paused);
    assert.ok(['data-transfer', 'testing'].includes(paused.phase), paused.phase);

    // Approval before testing has ended: refused by the workflow's validator, nothing changed.
    const early = await cli(['approve', workflowId]);
    assert.equal(early.code, 1);
    assert.match(early.err, /IMAGO_WRONG_PHASE: .*approve is accepted only while awaiting approval/);
    const twice = await cli(['pause', workflowId]);
    assert.equal(twice.code, 1);
    const afterRefusals = await (await clientHarness()).imago.status(workflowId);
    assert.equal(afterRefusals.approval.approved, false);
    assert.equal(afterRefusals.phase, paused.phase);

    const bad = await cli(['throttle', workflowId, '--chunk-size', '0']);
    assert.equal(bad.code, 1);
    assert.match(bad.err, /CLIENT_USAGE: .*--chunk-size 0/);
    assert.match((await cli(['throttle', workflowId, '--nice-ratio', '200'])).err, /CLIENT_USAGE: .*--nice-ratio 200: expected a number from 0 to 100/);
    const th = await cli(['throttle', workflowId, '--chunk-size', '500', '--max-lag-ms', '2500', '--nice-ratio', '0.5', '--json']);
    assert.equal(th.code, 0, th.err);
    assert.deepEqual(
      (({ chunkSize, maxLagMs, maxThreadsRunning, niceRatio }) => ({ chunkSize, maxLagMs, maxThreadsRunning, niceRatio }))(JSON.parse(th.out).result),
      { chunkSize: 500, maxLagMs: 2500, maxThreadsRunning: 25, niceRatio: 0.5 });
    assert.equal((await cli(['resume', workflowId])).code, 0);

    await waitForStatus(workflowId, (s) => s.phase === 'awaiting-approval');
    const listed = await waitForList(async () => JSON.parse((await cli(['list', '--phase', 'awaiting-approval', '--json'])).out) as any[],
      (rows) => rows.some((r) => r.workflowId === workflowId));
    const row = listed.find((r) => r.workflowId === workflowId);
    assert.deepEqual([row.system, row.from, row.to, row.outcome], ['auction', '1.0', '2.0', 'running']);

    const human = await cli(['status', workflowId]);
    assert.equal(human.code, 0);
    assert.match(human.out, /phase +awaiting-approval/);
    assert.match(human.out, /copy \[#{24}\] 100% 50k\/50k rows/);
    assert.match(human.out, /tests 2\/2 passed/);
    assert.match(human.out, /compare pass \(240 samples 0\.42% mismatch\)/);
    assert.doesNotMatch(human.out, /\x1b\[/, 'no colour when not a TTY');

    const ok = await cli(['approve', workflowId, '--by', 'ci']);
    assert.equal(ok.code, 0, ok.err);
    await waitForStatus(workflowId, (s) => s.phase === 'post-switchover');
    const noAbort = await cli(['abort', workflowId, '--reason', 'too late']);
    assert.equal(noAbort.code, 1);
    assert.match(noAbort.err, /IMAGO_WRONG_PHASE/);
    assert.equal((await cli(['finalize', workflowId])).code, 0);
    const second = await cli(['finalize', workflowId]);
    assert.equal(second.code, 1);
    assert.match(second.err, /IMAGO_WRONG_PHASE/);

    const watched = await cli(['watch', workflowId, '--interval-ms', '100']);
    assert.equal(watched.code, EXIT_CODES.completed, watched.err);
    const lines = watched.out.trim().split('\n');
    assert.ok(lines.every((l) => ISO_LINE.test(l)), watched.out);
    assert.match(lines[0], /phase=(post-switchover|completed)/);
    assert.match(lines[lines.length - 1], /imago-manual-one ended: completed \(exit 0\)$/);

    const st = JSON.parse((await cli(['status', workflowId, '--json'])).out);
    assert.equal(st.status.outcome, 'completed');
    assert.equal(st.status.approval.by, 'ci');
    assert.equal(st.execution.executionStatus, 'COMPLETED');
    assert.deepEqual(st.status.timings.map((t: any) => t.phase),
      ['bootstrapping', 'data-transfer', 'testing', 'awaiting-approval', 'termination', 'switchover', 'post-switchover', 'completed']);
    const done = await waitForList(async () => JSON.parse((await cli(['list', '--outcome', 'completed', '--json'])).out) as any[],
      (rows) => rows.some((r) => r.workflowId === workflowId));
    assert.ok(done.some((r) => r.workflowId === workflowId && r.phase === 'completed'));
  });

  it('exit codes: aborted 2, failed 3, rolled back 4, timed out 5', async () => {
    const ab = 'imago-abort-one';
    assert.equal((await cli(['upgrade', 'start', writePlan('abort-one')])).code, 0);
    await waitForStatus(ab, (s) => s.phase === 'awaiting-approval');
    const noReason = await cli(['abort', ab]);
    assert.equal(noReason.code, 1);
    assert.match(noReason.err, /CLIENT_USAGE: .*--reason is required/);
    assert.equal((await cli(['abort', ab, '--reason', 'change freeze'])).code, 0);
    const abWatch = await cli(['watch', ab, '--interval-ms', '100']);
    assert.equal(abWatch.code, EXIT_CODES.aborted, abWatch.out + abWatch.err);
    assert.match(abWatch.out, /ended: aborted \(exit 2\)/);

    const failed = await cli(['upgrade', 'start', writePlan('fail-one', { system: 'auction-tests-fail' }), '--wait', '--interval-ms', '100']);
    assert.equal(failed.code, EXIT_CODES.failed, failed.out + failed.err);
    assert.match(failed.out, /gate fail \(test bids failed\)/);
    assert.equal(failed.out.split('gate fail').length - 1, 1, `the gate's reason is printed once, when it changes:\n${failed.out}`);

    const rb = 'imago-rollback-one';
    assert.equal((await cli(['upgrade', 'start', writePlan('rollback-one', { approval: { policy: 'auto' } })])).code, 0);
    await waitForStatus(rb, (s) => s.phase === 'post-switchover');
    assert.equal((await cli(['rollback', rb, '--reason', 'p99 too high'])).code, 0);
    assert.equal((await cli(['watch', rb])).code, EXIT_CODES['rolled-back']);

    const to = await cli(['upgrade', 'start', writePlan('timeout-one'), '--wait', '--execution-timeout-ms', '2000', '--interval-ms', '200', '--json']);
    assert.equal(to.code, EXIT_CODES['timed-out'], to.out + to.err);
    const last = JSON.parse(to.out.trim().split('\n').pop()!);
    assert.deepEqual([last.result.outcome, last.result.exitCode], ['timed-out', 5]);
  });

  it('runs as a real process: upgrade start --wait prints the link, plain timestamped lines, exit 0, no listener warning', async () => {
    // Polled every 30 ms for about two seconds: dozens of turns of the watch loop, each sleeping on the same abort signal.
    const run = await cliProcess(['upgrade', 'start', writePlan('process-one', { approval: { policy: 'auto' }, postSwitchover: { finalize: 'auto', windowMs: 1_000 } }), '--wait', '--interval-ms', '30'],
      { IMAGO_UI_URL: 'http://ui.example:8080/' });
    assert.equal(run.code, 0, run.out + run.err);
    assert.doesNotMatch(run.err, /MaxListenersExceededWarning|memory leak/i, run.err);
    assert.equal(run.err, '', 'nothing on stderr');
    const [first, link, ...rest] = run.out.trim().split('\n');
    assert.equal(first, 'started imago-process-one (auction 1.0 → 2.0)');
    assert.equal(link.trim(), 'http://ui.example:8080/namespaces/default/workflows/imago-process-one');
    assert.ok(rest.length >= 2 && rest.every((l) => ISO_LINE.test(l)), run.out);
    assert.match(rest[rest.length - 1], /ended: completed \(exit 0\)/);
    assert.doesNotMatch(run.out, /\x1b\[/);
  });

  it('reaches any workflow id: one started by the library with its own id, by id or by bare plan name', async () => {
    const { imago } = await clientHarness();
    const plan = loadPlanFile(writePlan('any-id', { approval: { policy: 'manual' } }));
    const started = await imago.start(plan, { workflowId: 'demo-12345' });
    assert.equal(started.workflowId, 'demo-12345');
    await waitForStatus('demo-12345', (s) => s.phase === 'awaiting-approval');
    const st = await cli(['status', 'demo-12345', '--json']);
    assert.equal(st.code, 0, st.err);
    assert.equal(JSON.parse(st.out).workflowId, 'demo-12345');
    const ap = await cli(['approve', 'demo-12345', '--json']);
    assert.equal(ap.code, 0, ap.err);
    assert.equal(JSON.parse(ap.out).id, 'demo-12345');
    // A bare plan name still finds imago-<name>.
    assert.equal((await cli(['upgrade', 'start', writePlan('bare-name')])).code, 0);
    const bare = await cli(['status', 'bare-name', '--json']);
    assert.equal(bare.code, 0, bare.err);
    assert.equal(JSON.parse(bare.out).workflowId, 'imago-bare-name');
    assert.equal((await cli(['abort', 'bare-name', '--reason', 'test done'])).code, 0);
    // A workflow that is not an upgrade is named as such, not queried.
    const other = await (await clientHarness()).imago.client.workflow.start('somethingElse', { taskQueue: 'nobody', workflowId: 'not-an-upgrade' });
    const no = await cli(['status', 'not-an-upgrade']);
    await other.terminate('test done');
    assert.equal(no.code, 1);
    assert.match(no.err, /CLIENT_NOT_FOUND: .*not-an-upgrade is a 'somethingElse' workflow, not an Imago upgrade/);
    const none = await cli(['status', 'nothing-here']);
    assert.match(none.err, /CLIENT_NOT_FOUND: No upgrade with this id: nothing-here or imago-nothing-here in namespace 'default'/);
  });

  it("sets the web UI's summary and details at start: describe() shows them, and so does imago status", async () => {
    const { imago } = await clientHarness();
    const plan = loadPlanFile(writePlan('metadata-one', { approval: { policy: 'auto' }, postSwitchover: { finalize: 'auto', windowMs: 100 } }));
    const { handle } = await imago.start(plan, { workflowId: 'meta-1' });
    const d = await handle.describe();
    assert.equal(await d.staticSummary(), 'auction 1.0 → 2.0 · plan metadata-one · provider local');
    const details = await d.staticDetails();
    assert.match(details ?? '', /^- from → to: 1\.0 → 2\.0$/m);
    assert.match(details ?? '', /^- plan: metadata-one$/m);
    assert.match(details ?? '', /^- provider: local$/m);
    assert.equal((await imago.describe('meta-1')).staticSummary, 'auction 1.0 → 2.0 · plan metadata-one · provider local');
    // And the search attributes were set at start, before the workflow's first upsert.
    assert.deepEqual(['ImagoSystem', 'ImagoFromVersion', 'ImagoToVersion'].map((k) => d.searchAttributes[k]), [['auction'], ['1.0'], ['2.0']]);
    await waitForStatus('meta-1', (s) => s.outcome === 'completed');
    const human = await cli(['status', 'meta-1']);
    assert.equal(human.out.split('\n')[0], 'auction 1.0 → 2.0 · plan metadata-one · provider local');
  });

  it('usage errors exit 1 with one line and no stack trace, before any connection is made', async () => {
    for (const argv of [['list', '--limit', 'x'], ['throttle', 'x'], ['abort', 'x'], ['watch', 'x', '--interval-ms', '0'], ['upgrade', 'start', '/no/such/plan.yaml']]) {
      // An unreachable server: a usage error must be reported first, without waiting for a connection.
      const r = await cliProcess([...argv, '--address', '127.0.0.1:1']);
      assert.equal(r.code, 1, `${argv.join(' ')}: ${r.err}`);
      assert.match(r.err, /^imago: (CLIENT_USAGE|IMAGO_PLAN_UNREADABLE): /, argv.join(' '));
      assert.equal(r.err.trim().split('\n').length, 1, `one line: ${r.err}`);
      assert.doesNotMatch(r.err, /^\s+at /m);
    }
    const ns = await cliProcess(['status', 'x', '--namespace', 'no-such-namespace']);
    assert.equal(ns.code, 1);
    assert.match(ns.err, /^imago: CLIENT_CONFIG_INVALID: .*namespace 'no-such-namespace' does not exist/);
    assert.doesNotMatch(ns.err, /^\s+at /m);
  });

  it("a namespace without Imago's search attributes: the CLI says so with the command that fixes it; imago server setup registers them and records the UI's URL", async function () {
    this.timeout(120_000);
    const { connection, address } = await temporalFixture();
    const ns = `fresh-${Date.now() % 1_000_000}`;
    await connection.workflowService.registerNamespace({ namespace: ns, workflowExecutionRetentionPeriod: msToTs('1 day') });
    await waitForList(async () => (await cli(['list', '--namespace', ns, '--json'])).err, (err) => !/does not exist/.test(err), 30_000);
    const plan = writePlan('fresh-one');
    const refused = await cliProcess(['upgrade', 'start', plan, '--namespace', ns]);
    assert.equal(refused.code, 1);
    assert.match(refused.err, new RegExp(`^imago: CLIENT_SEARCH_ATTRIBUTES_MISSING: .*namespace '${ns}' at ${address} has no ImagoFromVersion, ImagoOutcome, ImagoPhase, ImagoSystem, ImagoToVersion; run: imago server setup --address ${address} --namespace ${ns}`));
    assert.doesNotMatch(refused.err, /^\s+at /m);
    const list = await cli(['list', '--namespace', ns, '--phase', 'testing']);
    assert.match(list.err, /CLIENT_SEARCH_ATTRIBUTES_MISSING/);

    const setup = await cli(['server', 'setup', '--namespace', ns, '--ui-url', 'http://ui.example:9999/']);
    assert.equal(setup.code, 0, setup.err);
    assert.match(setup.out, /registered ImagoFromVersion, ImagoOutcome, ImagoPhase, ImagoSystem, ImagoToVersion/);
    assert.match(setup.out, /web UI: http:\/\/ui\.example:9999 \(recorded\)/);
    const again = JSON.parse((await cli(['server', 'setup', '--namespace', ns, '--json'])).out);
    assert.deepEqual([again.added, again.present.length, again.uiUrl], [[], 5, 'http://ui.example:9999'], 'idempotent; the URL stays recorded');

    // The search attributes may take a moment to reach the frontend's cache.
    const ok = await waitForList(() => cli(['upgrade', 'start', plan, '--namespace', ns, '--json']), (r) => r.code === 0, 30_000);
    assert.equal(ok.code, 0, ok.err);
    const { workflowId, url } = JSON.parse(ok.out).started;
    assert.equal(url, `http://ui.example:9999/namespaces/${ns}/workflows/${workflowId}`, "the link from the server's record");
    // A client's own setting still wins over the server's record.
    const own = await cli(['list', '--namespace', ns, '--json', '--ui-url', 'https://mine.example']);
    assert.equal(own.code, 0, own.err);
    await new Client({ connection, namespace: ns }).workflow.getHandle(workflowId).terminate('test done');
  });
});
