import { strict as assert } from 'node:assert';
import { isImagoError } from '../../lib/errors';
import { decodeRecord, encodeRecord, initialRecord, type SwitchRecord } from '../../interceptors/ingress/record';
import * as sw from '../../interceptors/ingress/switcher';

const T0 = 1_000_000;
const base = (): SwitchRecord => sw.register(initialRecord({ name: 'uold', idx: 1, ip: '127.0.0.1', port: 1, url: 'http://127.0.0.1:1' }),
  { name: 'unew', ip: '127.0.0.1', port: 2, url: 'http://127.0.0.1:2' }).next;

/** Applies a transition and returns the next record (asserting it changed). */
const step = (t: sw.Transition): SwitchRecord => { assert.equal(t.changed, true); return t.next; };

describe('the switcher (hold, switch, commit, release, hard timeout)', () => {
  it('switches only while held and drained, and every transition is idempotent', () => {
    let r = base();
    assert.throws(() => sw.switchTo(r, 'unew', 0), /needs a hold first/);
    r = step(sw.hold(r, 1_000, T0));
    assert.equal(sw.hold(r, 50, T0 + 10).changed, false, 'a retried hold neither restarts nor extends the timeout');
    assert.throws(() => sw.switchTo(r, 'unew', 1), /1 request\(s\) still in flight/);
    const t = sw.switchTo(r, 'unew', 0);
    assert.equal(t.needsDrained, true, 'the data plane checks "nothing in flight" again when it stores the switch');
    r = step(t);
    assert.equal(sw.switchTo(r, 'unew', 0).changed, false);
    assert.throws(() => sw.switchTo(r, 'nope', 0), (e: unknown) => isImagoError(e, 'INGRESS_BAD_TRANSITION') && /unknown upstream 'nope'/.test(e.message));
    const rel = sw.release(r, T0 + 250);
    assert.match(rel.notes[0][1], /released by control call: %HELD% held request\(s\) to unew after 250 ms/);
    r = step(rel);
    assert.deepEqual([r.held, r.target, r.committed], [false, 'unew', false]);
    assert.equal(sw.release(r, T0).changed, false);
    assert.throws(() => sw.hold(r, 600_001, T0), /1\.\.600000/);
  });

  it('an uncommitted hold that times out goes back to the target it began with', () => {
    let r = step(sw.hold(base(), 30, T0));
    r = step(sw.switchTo(r, 'unew', 0));
    const plan = sw.timeoutPlan(r);
    assert.deepEqual([plan.record.held, plan.record.target], [false, 'uold']);
    assert.equal(plan.switchNote, 'unew -> uold (hold timeout)');
    assert.match(plan.reason, /hold timeout after 30 ms without release; switched back to the old target/);
    // A hold without a switch simply ends.
    const plain = sw.timeoutPlan(step(sw.hold(base(), 30, T0)));
    assert.deepEqual([plain.record.target, plain.switchNote], ['uold', undefined]);
  });

  it('a committed hold that times out releases forward, and cannot be switched back', () => {
    let r = step(sw.hold(base(), 30, T0));
    assert.throws(() => sw.commit(r), /needs a switch under this hold/);
    r = step(sw.switchTo(r, 'unew', 0));
    r = step(sw.commit(r));
    assert.equal(sw.commit(r).changed, false, 'idempotent');
    assert.throws(() => sw.switchTo(r, 'uold', 0), /committed \(forward only\)/);
    const plan = sw.timeoutPlan(r);
    assert.deepEqual([plan.record.held, plan.record.target, plan.switchNote], [false, 'unew', undefined]);
    assert.match(plan.reason, /committed, so released forward/);
  });

  it('a release ends the commitment: the next hold starts undecided', () => {
    let r = step(sw.hold(base(), 1_000, T0));
    r = step(sw.switchTo(r, 'unew', 0));
    r = step(sw.commit(r));
    r = step(sw.release(r, T0 + 5));
    assert.equal(r.committed, false);
    assert.throws(() => sw.commit(r), /needs a hold/);
    r = step(sw.hold(r, 1_000, T0 + 10));
    assert.equal(sw.switchTo(r, 'uold', 0).changed, true, 'a new hold may switch back (a rollback)');
  });

  it('a restart serves what the hard timeout would: origin unless committed', () => {
    let r = step(sw.hold(base(), 1_000, T0));
    assert.equal(sw.restoredTarget(r), 'uold');
    r = step(sw.switchTo(r, 'unew', 0));
    assert.equal(sw.restoredTarget(r), 'uold', 'switched but not committed: back to the origin');
    r = step(sw.commit(r));
    assert.equal(sw.restoredTarget(r), 'unew', 'committed: forward');
    r = step(sw.release(r, T0 + 1));
    assert.equal(sw.restoredTarget(r), 'unew');
  });

  it('registers upstreams without re-pointing the live target, and configures mirroring', () => {
    let r = base();
    assert.equal(sw.register(r, { name: 'unew', ip: '127.0.0.1', port: 2, url: 'http://127.0.0.1:2' }).changed, false);
    assert.throws(() => sw.register(r, { name: 'uold', ip: '127.0.0.1', port: 3, url: 'http://127.0.0.1:3' }), /in use \(target or hold origin\)/);
    assert.throws(() => sw.configureMirror(r, { on: true, shadow: 'uold' }), /is the current target/);
    r = step(sw.configureMirror(r, { on: true, shadow: 'unew', percent: 50, methods: ['get'] }));
    assert.deepEqual(r.mirror, { on: true, shadow: 'unew', percent: 50, methods: ['GET'], writeShadow: null, writePercent: 100, writeMethods: ['POST', 'PUT', 'PATCH', 'DELETE'] });
    assert.equal(sw.configureMirror(r, { on: true, shadow: 'unew', percent: 50 }).changed, false, 'a retried call changes nothing');
    // Switching to the shadow stops mirroring to it.
    r = step(sw.hold(r, 1_000, T0));
    r = step(sw.switchTo(r, 'unew', 0));
    assert.equal(r.mirror.on, false);
  });

  it('encodes a record (and its timeout plan) for the data plane and reads it back', () => {
    let r = step(sw.hold(base(), 400, T0));
    r = step(sw.switchTo(r, 'unew', 0));
    const raw = encodeRecord(r, sw.timeoutPlan(r));
    assert.deepEqual(decodeRecord(raw), r);
    const p = new URLSearchParams(raw);
    assert.deepEqual(p.getAll('up'), ['uold 1 127.0.0.1 1 http://127.0.0.1:1', 'unew 2 127.0.0.1 2 http://127.0.0.1:2']);
    assert.equal(decodeRecord(p.get('to')!).target, 'uold');
    assert.match(p.get('to_reason')!, /switched back to the old target/);
  });
});
