import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { isImagoError } from '../../lib/errors';
import { EXIT_CODES } from '../../workflows/status';
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
    assert.match(url, /^http:\/\/127\.0\.0\.1:8233\/namespaces\/default\/workflows\/imago-manual-one$/);

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
    const th = await cli(['throttle', workflowId, '--chunk-size', '500', '--max-lag-ms', '2500', '--json']);
    assert.equal(th.code, 0, th.err);
    assert.deepEqual(
      (({ chunkSize, maxLagMs, maxThreadsRunning }) => ({ chunkSize, maxLagMs, maxThreadsRunning }))(JSON.parse(th.out).result),
      { chunkSize: 500, maxLagMs: 2500, maxThreadsRunning: 25 });
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

  it('runs as a real process: upgrade start --wait prints the link, plain timestamped lines, exit 0', async () => {
    const run = await cliProcess(['upgrade', 'start', writePlan('process-one', { approval: { policy: 'auto' }, postSwitchover: { finalize: 'auto', windowMs: 300 } }), '--wait', '--interval-ms', '100'],
      { IMAGO_UI_URL: 'http://ui.example:8080/' });
    assert.equal(run.code, 0, run.out + run.err);
    const [first, link, ...rest] = run.out.trim().split('\n');
    assert.equal(first, 'started imago-process-one (auction 1.0 → 2.0)');
    assert.equal(link.trim(), 'http://ui.example:8080/namespaces/default/workflows/imago-process-one');
    assert.ok(rest.length >= 2 && rest.every((l) => ISO_LINE.test(l)), run.out);
    assert.match(rest[rest.length - 1], /ended: completed \(exit 0\)/);
    assert.doesNotMatch(run.out, /\x1b\[/);
  });
});
