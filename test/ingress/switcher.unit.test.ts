import { strict as assert } from 'node:assert';
import { makeUpstream, type Upstream } from '../../interceptors/ingress/forwarder';
import { Recorder } from '../../interceptors/ingress/recorder';
import { Switcher } from '../../interceptors/ingress/switcher';

/** A held request that remembers where it was dispatched. */
const request = (log: string[], id: string) => ({ dispatch: (up: Upstream) => { log.push(`${id}->${up.name}`); } });

describe('the switcher (hold, switch, commit, release)', () => {
  let sw: Switcher;
  let uold: Upstream;
  let unew: Upstream;
  beforeEach(() => {
    uold = makeUpstream('uold', 'http://127.0.0.1:1', 4);
    unew = makeUpstream('unew', 'http://127.0.0.1:2', 4);
    sw = new Switcher(uold, new Recorder(100), 10);
    sw.register(unew);
  });
  afterEach(() => { sw.shutdown(); uold.agent.destroy(); unew.agent.destroy(); });

  it('switches only while held and drained, and releases held requests in arrival order', () => {
    assert.throws(() => sw.switchTo('unew'), /needs a hold first/);
    sw.hold(1_000);
    sw.begin();
    assert.throws(() => sw.switchTo('unew'), /still in flight/);
    sw.end();
    const log: string[] = [];
    sw.enqueue(request(log, 'a')); sw.enqueue(request(log, 'b'));
    assert.equal(sw.switchTo('unew').changed, true);
    assert.equal(sw.switchTo('unew').changed, false, 'idempotent');
    assert.deepEqual(sw.release(), { changed: true, released: 2 });
    assert.deepEqual(log, ['a->unew', 'b->unew']);
  });

  it('an uncommitted hold that times out goes back to the target it began with', async () => {
    sw.hold(30);
    sw.switchTo('unew');
    const log: string[] = [];
    sw.enqueue(request(log, 'a'));
    await new Promise((r) => setTimeout(r, 80));
    assert.equal(sw.held, false);
    assert.equal(sw.target.name, 'uold');
    assert.deepEqual(log, ['a->uold']);
  });

  it('a committed hold that times out releases forward, and cannot be switched back', async () => {
    sw.hold(30);
    assert.throws(() => sw.commit(), /needs a switch under this hold/);
    sw.switchTo('unew');
    assert.equal(sw.commit().changed, true);
    assert.equal(sw.commit().changed, false, 'idempotent');
    assert.throws(() => sw.switchTo('uold'), /committed \(forward only\)/);
    const log: string[] = [];
    sw.enqueue(request(log, 'a'));
    await new Promise((r) => setTimeout(r, 80));
    assert.equal(sw.target.name, 'unew');
    assert.deepEqual(log, ['a->unew']);
    assert.match(sw.transitions.at(-1)!.detail, /committed, so released forward/);
  });

  it('a release ends the commitment: the next hold starts undecided', () => {
    sw.hold(1_000); sw.switchTo('unew'); sw.commit(); sw.release();
    assert.equal(sw.committed, false);
    assert.throws(() => sw.commit(), /needs a hold/);
    sw.hold(1_000);
    assert.equal(sw.switchTo('uold').changed, true, 'a new hold may switch back (a rollback)');
  });
});
