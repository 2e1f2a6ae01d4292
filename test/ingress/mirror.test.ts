import { strict as assert } from 'node:assert';
import { ingressFor, request, startUpstream, until } from './helpers';

describe('ingress: mirroring to a shadow', () => {
  it('hands (request, primary reply, shadow reply) to the comparer for safe requests only, at the asked percentage', async () => {
    const uold = await startUpstream('uold');
    const unew = await startUpstream('unew');
    const { ingress, control, comparers } = await ingressFor(uold);
    await control.addUpstream('unew', unew.url);
    const m = await control.mirror({ on: true, shadow: 'unew', percent: 50, compare: { rules: 'r1' } });
    assert.equal(m.mirror.on, true);
    assert.equal((await control.mirror({ on: true, shadow: 'unew', percent: 50, compare: { rules: 'r1' } })).changed, false, 'retried mirror call is a no-op');
    assert.equal(comparers.length, 1, 'a retried call with the same rules keeps the comparer');
    for (let i = 0; i < 20; i += 1) assert.equal((await request(`${ingress.url}/items/${i}`)).status, 200);
    for (let i = 0; i < 4; i += 1) assert.equal((await request(`${ingress.url}/bid`, { method: 'POST', body: '{"x":1}', headers: { 'content-type': 'application/json' } })).status, 200);
    const c = comparers[0];
    await until(() => c.pairs.length === 10, 'ten pairs (50% of 20 GETs)');
    assert.ok(c.pairs.every((p) => p.request.method === 'GET'), 'POSTs are never mirrored');
    assert.equal(unew.seen.filter((s) => s.method === 'POST').length, 0);
    const p = c.pairs[0];
    assert.equal(JSON.parse(p.primary.body.toString()).upstream, 'uold');
    assert.equal(JSON.parse(p.shadow.body.toString()).upstream, 'unew');
    assert.equal(JSON.parse(p.shadow.body.toString()).url, p.request.url);
    assert.equal(unew.seen[0].headers['x-imago-shadow'], '1');
    const report = await control.compare();
    assert.deepEqual(report.report, { recorded: 10, config: { rules: 'r1' } });
    assert.equal(report.pairs, 10);
    // Switching to the shadow stops mirroring to it.
    await control.hold(5_000); await control.drained(5_000); await control.switch('unew'); await control.release();
    assert.equal((await control.status()).mirror.on, false);
  });

  it('never makes the client wait for the shadow: a hanging shadow does not delay replies, and overflow is dropped and counted', async () => {
    const uold = await startUpstream('uold');
    const unew = await startUpstream('unew', 1_500); // the shadow hangs 1.5 s per request
    const { ingress, control, comparers } = await ingressFor(uold, { limits: { shadowQueueSize: 4 } });
    await control.addUpstream('unew', unew.url);
    await control.mirror({ on: true, shadow: 'unew' });
    const t0 = Date.now();
    const outcomes = await Promise.all(Array.from({ length: 20 }, (_, i) => request(`${ingress.url}/items/${i}`)));
    assert.deepEqual(outcomes.map((o) => o.status), Array(20).fill(200));
    const st = await control.status();
    assert.equal(st.counters.mirrored, 4);
    assert.equal(st.counters.shadowDropped, 16);
    // Every client reply was complete before any shadow reply existed.
    const lastClientEnd = Math.max(...outcomes.map((o) => o.endedAt));
    await until(() => comparers[0].pairs.length === 4, 'the four shadow replies');
    const firstPair = Math.min(...comparers[0].pairs.map((p) => p.receivedAt));
    assert.ok(lastClientEnd < firstPair, `clients done at +${lastClientEnd - t0} ms, first shadow pair at +${firstPair - t0} ms`);
    for (const p of comparers[0].pairs) assert.ok(p.shadow.latencyMs > p.primary.latencyMs);
    // With the shadow queue empty again, mirroring resumes.
    assert.equal((await request(`${ingress.url}/again`)).status, 200);
    assert.equal((await control.status()).counters.mirrored, 5);
  });

  it('reports a shadow that is down as an error in the pair, and the client is not affected', async () => {
    const uold = await startUpstream('uold');
    const unew = await startUpstream('unew');
    const { ingress, control, comparers } = await ingressFor(uold);
    await control.addUpstream('unew', unew.url);
    await control.mirror({ on: true, shadow: 'unew' });
    await unew.close();
    const r = await request(`${ingress.url}/items/1`);
    assert.equal(r.status, 200);
    await until(() => comparers[0].pairs.length === 1, 'the pair');
    assert.match(comparers[0].pairs[0].shadow.error ?? '', /ECONNREFUSED/);
    assert.equal((await control.status()).counters.shadowErrors, 1);
  });
});
