/**
 * The CLI against the REAL upgrade workflow: a live auction stage under load,
 * a real worker on its own task queue, and `imago` commands driving the whole
 * upgrade from start to report.
 */
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { onTeardown, workerFixture } from '../fixtures/servers';
import { briefTesting, mixedStateViolations, stage, workload } from '../e2e/harness';
import { cli, tmp, waitForList, clientHarness, waitForStatus } from './harness';

const QUEUE = 'imago-cli-e2e';

describe('client: the imago CLI drives a real upgrade of the sample system', function () {
  this.timeout(360_000);

  it('plan validate → upgrade start → approve (refused, then accepted) → finalize (once) → watch → list → report', async () => {
    await workerFixture({ taskQueue: QUEUE });
    const s = await stage();
    onTeardown(() => s.stop());
    const load = workload(s, 300_000, 40);
    onTeardown(async () => { load.stop(); await load.done; });
    const name = `cli-real-${Date.now() % 1_000_000}`;
    const planFile = s.writePlan((p) => {
      briefTesting(p); // the subject is the CLI, not the testing phase
      p.name = name;
      p.approval = { policy: 'manual', timeoutMs: 600_000, onTimeout: 'abort' };
      p.postSwitchover = { finalize: 'manual', windowMs: 600_000, keepUold: true };
    });
    const env = { IMAGO_TASK_QUEUE: QUEUE };
    await clientHarness();

    assert.equal((await cli(['plan', 'validate', planFile])).code, 0);
    const started = await cli(['upgrade', 'start', planFile, '--json'], { env });
    assert.equal(started.code, 0, started.err);
    const id = JSON.parse(started.out).started.workflowId as string;
    assert.equal(id, `imago-${name}`);

    // Approve before testing has ended: refused, nothing changed.
    const early = await cli(['approve', id], { env });
    assert.notEqual(early.code, 0);
    assert.match(early.err, /IMAGO_WRONG_PHASE/);

    const waiting = await waitForStatus(id, (st) => st.phase === 'awaiting-approval' || st.outcome !== 'running', 200_000);
    assert.equal(waiting.phase, 'awaiting-approval', waiting.lastError ?? '');
    const st = await cli(['status', id, '--json'], { env });
    assert.equal(st.code, 0);
    const { status } = JSON.parse(st.out);
    assert.equal(status.phase, 'awaiting-approval');
    assert.equal(status.gate.pass, true);
    assert.equal(status.approval.approved, false);

    assert.equal((await cli(['approve', id], { env })).code, 0);
    await waitForStatus(id, (x) => x.phase === 'post-switchover' || x.outcome !== 'running', 120_000);
    assert.equal((await cli(['finalize', id], { env })).code, 0);
    const twice = await cli(['finalize', id], { env });
    assert.notEqual(twice.code, 0, 'finalize twice is refused');

    const watch = await cli(['watch', id], { env });
    assert.equal(watch.code, 0, watch.err);
    assert.match(watch.out, /completed/);

    const { imago } = await clientHarness();
    const listed = await waitForList(() => imago.list({ outcome: 'completed' }), (l) => JSON.stringify(l).includes(id));
    assert.ok(JSON.stringify(listed).includes(id));

    const out = path.join(tmp, `${name}.html`);
    const rep = await cli(['report', id, '--out', out], { env });
    assert.equal(rep.code, 0, rep.err);
    const html = fs.readFileSync(out, 'utf8');
    assert.ok(html.includes(id) && html.length > 20_000, 'a self-contained report of this upgrade');

    const served = await mixedStateViolations(s);
    assert.ok(served.unew > 0);
    assert.equal(served.violations, 0);
  });
});
