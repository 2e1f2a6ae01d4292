/**
 * Mirroring writes: sampled writes go to their own shadow (a sandbox), with
 * their body, after the client has its reply; never to the read shadow
 * (Unew) nor to the target, which the control API refuses; off as soon as
 * the write shadow is cleared or mirroring stops.
 */
import { strict as assert } from 'node:assert';
import { isImagoError } from '../../lib/errors';
import { ingressFor, request, sleep, startUpstream, until } from './helpers';

const json = { 'content-type': 'application/json' };

describe('ingress: mirroring writes into a sandbox', () => {
  it('copies writes with their bodies to the write shadow only, and reads to the shadow only', async () => {
    const uold = await startUpstream('uold');
    const unew = await startUpstream('unew');
    const sandbox = await startUpstream('sandbox');
    const { ingress, control, comparers } = await ingressFor(uold);
    await control.addUpstream('unew', unew.url);
    await control.addUpstream('sandbox', sandbox.url);
    const m = await control.mirror({ on: true, shadow: 'unew', writeShadow: 'sandbox', compare: { r: 1 } });
    assert.deepEqual([m.mirror.writeShadow, m.mirror.writePercent, m.mirror.writeMethods], ['sandbox', 100, ['POST', 'PUT', 'PATCH', 'DELETE']]);
    for (let i = 0; i < 3; i += 1) assert.equal((await request(`${ingress.url}/items/${i}`)).status, 200);
    const bodies = ['{"userId":1,"amount":12.5}', '{"userId":2}', 'x'.repeat(20_000)];
    for (const [i, b] of bodies.entries()) {
      const r = await request(`${ingress.url}/echo?n=${i}`, { method: i === 1 ? 'PUT' : 'POST', body: b, headers: json });
      assert.equal(r.status, 200);
      assert.equal(r.body, b, 'the client got its own reply');
    }
    assert.equal((await request(`${ingress.url}/items/9`, { method: 'DELETE' })).status, 200);
    const c = comparers[0];
    await until(() => c.pairs.length === 7, 'three reads and four writes paired');
    const writes = c.pairs.filter((p) => p.kind === 'write');
    assert.deepEqual(writes.map((p) => p.request.method).sort(), ['DELETE', 'POST', 'POST', 'PUT']);
    for (const p of writes.filter((w) => w.request.url.startsWith('/echo'))) {
      const n = Number(new URL(p.request.url, 'http://x').searchParams.get('n'));
      assert.equal(p.request.body?.toString(), bodies[n], 'the request body reaches the comparer');
      assert.equal(p.primary.body.toString(), bodies[n], "Uold's reply, apart from the request body");
      assert.equal(p.shadow.body.toString(), bodies[n], 'the sandbox got the same body');
    }
    assert.deepEqual(sandbox.seen.map((s) => s.method).sort(), ['DELETE', 'POST', 'POST', 'PUT']);
    assert.equal(sandbox.seen.find((s) => s.url === '/echo?n=2')?.body, 20_000);
    assert.ok(sandbox.seen.every((s) => s.headers['x-imago-shadow'] === '1'));
    assert.deepEqual(unew.seen.map((s) => s.method), ['GET', 'GET', 'GET'], 'Unew gets reads only, never a write');
    assert.equal(c.pairs.filter((p) => !p.kind).length, 3);
    assert.equal((await control.status()).mirror.writes, 4);

    // Cleared: writes stop, reads go on.
    const off = await control.mirror({ on: true, shadow: 'unew', writeShadow: null, compare: { r: 1 } });
    assert.equal(off.mirror.writeShadow, null);
    await request(`${ingress.url}/echo`, { method: 'POST', body: '{}', headers: json });
    await request(`${ingress.url}/items/10`);
    await until(() => c.pairs.length === 8, 'the read after clearing');
    await sleep(200);
    assert.equal(sandbox.seen.length, 4, 'no write after the write shadow was cleared');
    assert.equal(comparers.length, 1, 'the same comparer: only the write settings changed');
  });

  it('refuses a write shadow that is the read shadow, the target or unknown, and safe methods as writes', async () => {
    const uold = await startUpstream('uold');
    const unew = await startUpstream('unew');
    const { control } = await ingressFor(uold);
    await control.addUpstream('unew', unew.url);
    for (const [cfg, why] of [
      [{ writeShadow: 'unew' }, /is the read shadow/],
      [{ writeShadow: 'uold' }, /serves live traffic/],
      [{ writeShadow: 'nope' }, /not a registered upstream/],
    ] as const) {
      await assert.rejects(control.mirror({ on: true, shadow: 'unew', ...cfg }), (e: unknown) => isImagoError(e, 'INGRESS_BAD_TRANSITION') && why.test((e as Error).message));
    }
    const sandbox = await startUpstream('sandbox');
    await control.addUpstream('sandbox', sandbox.url);
    await assert.rejects(control.mirror({ on: true, shadow: 'unew', writeShadow: 'sandbox', writeMethods: ['POST', 'GET'] }), /must not name safe methods \(GET\)/);
    assert.equal((await control.status()).mirror.on, false, 'a refused call changed nothing');
  });

  it('a write whose body nginx kept on disk (above retryBodyBytes) is not mirrored, and is counted', async () => {
    const uold = await startUpstream('uold');
    const unew = await startUpstream('unew');
    const sandbox = await startUpstream('sandbox');
    const { ingress, control } = await ingressFor(uold, { limits: { retryBodyBytes: 4096 } });
    await control.addUpstream('unew', unew.url);
    await control.addUpstream('sandbox', sandbox.url);
    await control.mirror({ on: true, shadow: 'unew', writeShadow: 'sandbox' });
    assert.equal((await request(`${ingress.url}/echo`, { method: 'POST', body: 'y'.repeat(100_000), headers: json })).status, 200);
    assert.equal((await request(`${ingress.url}/echo`, { method: 'POST', body: 'small', headers: json })).status, 200);
    await until(() => sandbox.seen.length === 1, 'the small write mirrored');
    assert.equal(sandbox.seen[0].body, 5);
    assert.equal((await control.status()).counters.writeBodyTooLarge, 1);
  });
});
