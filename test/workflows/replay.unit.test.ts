/**
 * The replay suite: histories recorded from real upgrades (completed,
 * aborted, awaiting approval, continued as new) are replayed against the
 * workflow code of this checkout. A change that is not deterministic — a new
 * activity call, a reordered step, a timer added in a running phase —
 * without a patched() marker fails here, not in an upgrade that is running.
 * Record new histories with `npx tsx scripts/record-histories.ts` (see
 * docs/upgrade-driver.md, "Changing the workflow safely").
 */
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { temporal } from '@temporalio/proto';
import { Worker } from '@temporalio/worker';
import { workflowBundleFixture } from '../fixtures/servers';

const DIR = path.join(__dirname, 'histories');
const WANTED = ['completed', 'aborted', 'awaiting-approval', 'continued-as-new', 'rolled-back'];

/** A recorded history: the protobuf History message, as scripts/record-histories.ts writes it. */
function read(file: string): temporal.api.history.v1.History {
  return temporal.api.history.v1.History.decode(fs.readFileSync(path.join(DIR, file)));
}

describe('replay: recorded upgrade histories against the current workflow code', function () {
  this.timeout(120_000);

  it('has a history for each kind of run', () => {
    const have = fs.readdirSync(DIR).filter((f) => f.endsWith('.binpb')).map((f) => f.replace(/\.binpb$/, ''));
    for (const w of WANTED) assert.ok(have.includes(w), `test/workflows/histories/${w}.binpb is missing`);
  });

  it('replays every recorded history deterministically', async () => {
    const files = fs.readdirSync(DIR).filter((f) => f.endsWith('.binpb'));
    const histories = files.map((f) => ({ workflowId: f.replace(/\.binpb$/, ''), history: read(f) }));
    const failures: string[] = [];
    let replayed = 0;
    for await (const r of Worker.runReplayHistories({ workflowBundle: { codePath: await workflowBundleFixture() }, replayName: 'imago-replay' }, histories)) {
      replayed += 1;
      if (r.error) failures.push(`${r.workflowId}: ${r.error.message}`);
    }
    assert.equal(replayed, files.length);
    assert.deepEqual(failures, []);
  });

  it('fails on a change that is not deterministic (the check can fail)', async () => {
    // The completed history with one activity's type renamed, as if the workflow had called another activity there.
    const history = read('completed.binpb');
    const scheduled = history.events!.find((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'checkCutover');
    assert.ok(scheduled, 'the completed history schedules the cut-over check');
    scheduled!.activityTaskScheduledEventAttributes!.activityType!.name = 'somethingElse';
    const results = [];
    for await (const r of Worker.runReplayHistories({ workflowBundle: { codePath: await workflowBundleFixture() }, replayName: 'imago-replay-bad' }, [{ workflowId: 'tampered', history }])) results.push(r);
    assert.equal(results.length, 1);
    assert.match(String(results[0].error?.message), /nondetermin|Nondetermin|does not match/i);
  });
});
