import { strict as assert } from 'node:assert';
import { refusal, type RulesView } from '../../workflows/rules';

const view = (over: Partial<RulesView> = {}): RulesView => ({
  phase: 'testing', outcome: 'running', pointOfNoReturnPassed: false, paused: false, approved: false, abortRequested: false, finalizeRequested: false,
  rollback: { available: false, why: 'not built', requested: false }, ...over,
});

describe('operator message rules (workflows/rules.ts)', () => {
  it('abort: accepted before termination, refused from its start with the reason users rely on, and after the point of no return', () => {
    for (const phase of ['bootstrapping', 'data-transfer', 'testing', 'awaiting-approval'] as const) assert.equal(refusal('abort', view({ phase }), { reason: 'x' }), null, phase);
    assert.deepEqual(refusal('abort', view({ phase: 'termination' }), { reason: 'x' }), { code: 'IMAGO_WRONG_PHASE', reason: 'termination has begun; the cut-over will either complete or put every client back on Uold by itself' });
    assert.match(refusal('abort', view({ phase: 'post-switchover', pointOfNoReturnPassed: true }), { reason: 'x' })!.reason, /switchover has happened/);
    assert.equal(refusal('abort', view(), {})!.code, 'IMAGO_OPTIONS_INVALID');
    assert.equal(refusal('abort', view(), '  ')!.code, 'IMAGO_OPTIONS_INVALID');
    assert.equal(refusal('abort', view(), 'a bare reason from the web UI'), null);
    assert.match(refusal('abort', view({ abortRequested: true }), { reason: 'x' })!.reason, /already aborting/);
    assert.match(refusal('abort', view({ outcome: 'aborted' }), { reason: 'x' })!.reason, /has ended \(aborted\)/);
  });

  it('approve only while awaiting approval, once', () => {
    assert.match(refusal('approve', view({ phase: 'data-transfer' }))!.reason, /only while awaiting approval/);
    assert.equal(refusal('approve', view({ phase: 'awaiting-approval' })), null);
    assert.match(refusal('approve', view({ phase: 'awaiting-approval', approved: true }))!.reason, /already approved/);
  });

  it('pause, resume and throttle only while data is transferred; throttle settings are checked, all problems at once', () => {
    assert.equal(refusal('pause', view({ phase: 'data-transfer' })), null);
    assert.match(refusal('pause', view({ phase: 'termination' }))!.reason, /only while data is transferred/);
    assert.match(refusal('pause', view({ paused: true }))!.reason, /already paused/);
    assert.match(refusal('resume', view())!.reason, /not paused/);
    assert.equal(refusal('setThrottle', view(), { chunkSize: 500 }), null);
    const bad = refusal('setThrottle', view(), { chunkSize: 0, colour: 'red' })!;
    assert.equal(bad.code, 'IMAGO_OPTIONS_INVALID');
    assert.match(bad.reason, /unknown throttle setting 'colour'/);
    assert.match(bad.reason, /chunkSize must be a positive integer/);
    // The copy's rest ratio is a number from 0 (no rest) to 100, not an integer.
    assert.equal(refusal('setThrottle', view(), { niceRatio: 0.5 }), null);
    assert.equal(refusal('setThrottle', view(), { niceRatio: 0 }), null);
    assert.match(refusal('setThrottle', view(), { niceRatio: -1 })!.reason, /niceRatio must be a number from 0 to 100/);
  });

  it('finalize and rollback only in the post-switchover window; rollback says why it is not available', () => {
    assert.match(refusal('finalize', view())!.reason, /post-switchover window/);
    assert.equal(refusal('finalize', view({ phase: 'post-switchover' })), null);
    assert.match(refusal('rollback', view({ phase: 'post-switchover' }), { reason: 'p99' })!.reason, /not available for this upgrade: not built/);
    assert.equal(refusal('rollback', view({ phase: 'post-switchover', rollback: { available: true, requested: false } }), { reason: 'p99' }), null);
    assert.match(refusal('rollback', view({ phase: 'post-switchover', finalizeRequested: true, rollback: { available: true, requested: false } }), { reason: 'p99' })!.reason, /finalize was requested/);
  });

  it('the cut-over check needs Unew up and following', () => {
    assert.equal(refusal('cutoverCheck', view({ phase: 'awaiting-approval' })), null);
    assert.match(refusal('cutoverCheck', view({ phase: 'data-transfer' }))!.reason, /testing or awaiting approval/);
  });
});
