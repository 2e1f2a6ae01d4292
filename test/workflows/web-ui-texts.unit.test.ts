/**
 * What the upgrade shows in Temporal's web UI, as pure functions: the current
 * details (short lines, what is awaited and what unblocks it), the
 * descriptions of the messages the UI lists, and the checks that keep a
 * hand-made copy of Imago's own signals from wedging the workflow.
 */
import { strict as assert } from 'node:assert';
import * as path from 'node:path';
import { loadPlanFile } from '../../plan/load';
import { DESCRIPTIONS, SIGNAL_NOTE, UPDATE_NOTE } from '../../workflows/messages';
import type { TransferProgressSnapshot, UpgradeStatus } from '../../workflows/status';
import { UI_LAST_LINE, currentDetails, initialStatus, pointOfNoReturnProblem, transferEdgeProblem } from '../../workflows/upgrade-state';

const PLAN = loadPlanFile(path.join(__dirname, '..', '..', 'examples', 'auction', 'plan.yaml'));
const snapshot: TransferProgressSnapshot = {
  at: 1, phase: 'following', tables: [], copiedRows: 10, totalRows: 10, percent: 100, rowsPerSec: 0, etaSec: 0, appliedPosition: '0-1-1',
  lagMs: 12, lagEvents: 0, throttleReason: null, paused: false,
};

function status(over: Partial<UpgradeStatus> = {}): UpgradeStatus {
  return { ...initialStatus({ upgradeId: 'u-1', plan: PLAN }, 0), ...over };
}

describe('web UI texts (workflows/upgrade-state.ts, workflows/messages.ts)', () => {
  it('current details: phase, transfer, gate; while awaiting approval the signal and the command that approve or stop it', () => {
    const waiting = currentDetails(status({ phase: 'awaiting-approval', transfer: snapshot, gate: { pass: true, reasons: [], tests: { passed: 1, failed: 0 }, compare: null, verification: null } }), 'imago-auction-v1-to-v2');
    const lines = waiting.split('\n');
    assert.equal(lines[0], '**auction** v1 → v2 · `local` · **awaiting-approval**');
    for (const l of ['- transfer: following, 100% copied, lag 12 ms', '- gate: passed', '- signal `approve`, input `{"by": "your name"}`', '- or `imago approve imago-auction-v1-to-v2`',
      '- signal `abort`, input `{"reason": "…"}`', '- or `imago abort imago-auction-v1-to-v2 --reason …`']) {
      assert.ok(lines.includes(l), `${l}\nin:\n${waiting}`);
    }
    // Markdown: a list needs a blank line after its heading line, or it is run into the paragraph.
    assert.equal(lines[lines.indexOf('**To approve:**') + 1], '');
    assert.equal(lines[lines.indexOf('**To stop:**') + 1], '');
    // The UI cuts off the last line: it must be the one that says little.
    assert.equal(lines.at(-1), UI_LAST_LINE);
    for (const l of lines) assert.ok(l.length <= 80, `one short fact per line (${l.length} chars): ${l}`);

    const copying = currentDetails(status({ phase: 'data-transfer', transfer: { ...snapshot, phase: 'copy', percent: 42.5 } }), 'u-1');
    assert.match(copying, /^- transfer: copy, 42\.5% copied, lag 12 ms$/m);
    assert.doesNotMatch(copying, /approve/, 'nothing is awaited from the operator while copying');
  });

  it('current details: the last signal and whether it was refused; the outcome at the end, without live figures', () => {
    const refused = currentDetails(status({ phase: 'data-transfer', signals: [{ name: 'approve', at: 1, accepted: false, reason: 'approve is accepted only while awaiting approval' }] }), 'u-1');
    assert.match(refused, /^- last signal: `approve` refused — approve is accepted only while awaiting approval$/m);
    const done = currentDetails(status({ phase: 'aborted', outcome: 'aborted', transfer: snapshot, lastError: 'aborted: not today' }), 'u-1');
    assert.match(done, /^- outcome: \*\*aborted\*\*$/m);
    assert.match(done, /^- last error: aborted: not today$/m);
    assert.doesNotMatch(done, /transfer:|last signal/);
  });

  it("transferEdge: the activity's own events pass; a hand-made one (no input, a string, a wrong edge) is refused with why, nothing thrown", () => {
    assert.equal(transferEdgeProblem({ edge: 'caught-up', attempt: 1, snapshot }), null);
    assert.equal(transferEdgeProblem({ edge: 'error', attempt: 2, snapshot, error: { code: 'TRANSFER_TARGET_UNREACHABLE', message: 'x' } }), null);
    for (const bad of [undefined, null, 'caught-up', [], {}]) assert.match(transferEdgeProblem(bad)!, /^transferEdge is sent by Imago's activities only; this one changed nothing/);
    assert.match(transferEdgeProblem({ edge: 'done', attempt: 1, snapshot })!, /edge must be one of started, copy-done, caught-up, fell-behind, stopped, error/);
    assert.match(transferEdgeProblem({ edge: 'started', attempt: 0, snapshot: {} })!, /attempt must be a positive integer; snapshot must be/);
    assert.match(transferEdgeProblem({ edge: 'error', attempt: 1, snapshot, error: 'boom' })!, /error must be \{code, message\}/);
  });

  it('pointOfNoReturn: honoured for an attempt that started (even late), refused before any cut-over and when malformed', () => {
    assert.equal(pointOfNoReturnProblem({ attempt: 1, at: 5 }, 1), null);
    assert.equal(pointOfNoReturnProblem({ attempt: 1, at: 5 }, 2), null, 'a cut-over activity that outlived its timeout is still honoured: forward only');
    assert.match(pointOfNoReturnProblem({ attempt: 1, at: 5 }, 0)!, /cut-over attempt 1 has not started \(0 started so far\)/);
    for (const bad of [undefined, {}, { attempt: '1', at: 5 }, { attempt: 1 }, { attempt: 1, at: Infinity }]) {
      assert.match(pointOfNoReturnProblem(bad, 3)!, /its input must be \{attempt, at\} from the cut-over/);
    }
  });

  it('every message the UI lists has a description; signals and updates say whether they answer', () => {
    for (const name of ['approve', 'abort', 'pause', 'resume', 'finalize', 'setThrottle', 'rollback', 'cutoverCheck', 'transferEdge', 'pointOfNoReturn', 'status', 'transferControls']) {
      assert.ok((DESCRIPTIONS as Record<string, string>)[name]?.length > 10, name);
    }
    assert.match(DESCRIPTIONS.transferEdge + DESCRIPTIONS.pointOfNoReturn, /do not send.*do not send/);
    assert.match(SIGNAL_NOTE, /recorded in status\.signals/);
    assert.match(UPDATE_NOTE, /^ Answers; refused, it says why/);
  });
});
