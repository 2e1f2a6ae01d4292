import { strict as assert } from 'node:assert';
import * as http from 'node:http';
import { isImagoError } from '../../lib/errors';
import { IngressControlClient } from '../../interceptors/ingress/control-client';
import { ingressFor, request, sleep, startUpstream, TOKEN, until } from './helpers';

describe('ingress: hold, its limits, and the control API', () => {
  it('releases to the OLD target by itself when the hold times out, even after a switch, and says why', async () => {
    const uold = await startUpstream('uold');
    const unew = await startUpstream('unew');
    const { ingress, control } = await ingressFor(uold);
    await control.addUpstream('unew', unew.url);
    await control.hold(400);
    const pending = Array.from({ length: 5 }, (_, i) => request(`${ingress.url}/p/${i}`));
    await until(async () => (await control.status()).held === 5, 'five held');
    await control.switch('unew'); // the driver switches, then dies before release
    const outcomes = await Promise.all(pending);
    assert.deepEqual(outcomes.map((o) => [o.status, JSON.parse(o.body).upstream]), Array(5).fill([200, 'uold']));
    assert.equal(unew.seen.length, 0, 'nothing reached unew');
    // Each worker process releases its held requests in arrival order; the
    // workers release together, so the order of requests that arrived at the
    // same moment on different workers is not kept (docs/ingress.md, Hold).
    assert.deepEqual(uold.seen.map((s) => s.url).sort(), ['/p/0', '/p/1', '/p/2', '/p/3', '/p/4'], 'each held request released once, to uold');
    const st = await control.status();
    assert.equal(st.state, 'forward');
    assert.equal(st.target, 'uold');
    assert.equal(st.counters.autoReleases, 1);
    const why = st.transitions.filter((t) => t.what === 'release').at(-1)!;
    assert.match(why.detail, /hold timeout after 400 ms without release; switched back to the old target: 5 held request\(s\) to uold/);
  });

  it('answers 503 with Retry-After when the hold queue is full, and drops a held client that disconnects', async () => {
    const uold = await startUpstream('uold');
    const { ingress, control } = await ingressFor(uold, { limits: { holdQueueSize: 3 } });
    await control.hold(10_000);
    // One held client that will go away.
    const gone = http.get(`${ingress.url}/gone`);
    gone.on('error', () => undefined);
    await until(async () => (await control.status()).held === 1, 'first held');
    const kept = [request(`${ingress.url}/a`), request(`${ingress.url}/b`)];
    await until(async () => (await control.status()).held === 3, 'queue full');
    const over = await Promise.all([request(`${ingress.url}/c`), request(`${ingress.url}/d`)]);
    for (const o of over) { assert.equal(o.status, 503); assert.equal(o.headers['retry-after'], '1'); }
    gone.destroy();
    await until(async () => (await control.status()).held === 2, 'disconnected client dropped');
    await control.release();
    const got = await Promise.all(kept);
    assert.deepEqual(got.map((o) => o.status), [200, 200]);
    assert.deepEqual(uold.seen.map((s) => s.url).sort(), ['/a', '/b'], 'the disconnected request was never sent');
    const st = await control.status();
    assert.equal(st.counters.holdOverflow, 2);
    assert.equal(st.counters.heldDisconnected, 1);
    assert.equal(st.counters.held, 3);
  });

  it('makes every transition idempotent and refuses impossible ones with the reason', async () => {
    const uold = await startUpstream('uold');
    const unew = await startUpstream('unew');
    const { ingress, control } = await ingressFor(uold);
    const code = async (p: Promise<unknown>): Promise<string> => { try { await p; return 'ok'; } catch (e) { assert.ok(isImagoError(e), String(e)); return e.code; } };

    assert.equal(await code(control.switch('unew')), 'INGRESS_BAD_TRANSITION', 'unknown upstream');
    assert.equal((await control.addUpstream('unew', unew.url)).changed, true);
    assert.equal((await control.addUpstream('unew', unew.url)).changed, false, 'same registration is a no-op');
    assert.equal(await code(control.addUpstream('uold', unew.url)), 'INGRESS_BAD_TRANSITION', 'cannot repoint the live target');
    assert.equal(await code(control.addUpstream('Bad Name', 'ftp://x')), 'INGRESS_BAD_REQUEST');
    assert.equal(await code(control.switch('unew')), 'INGRESS_BAD_TRANSITION', 'switch without hold');
    assert.equal((await control.release()).changed, false, 'release when not held is a no-op');

    // Switch while a request is still in flight is refused.
    const slow = request(`${ingress.url}/slow?delay=600`);
    await until(async () => (await control.status()).inFlight === 1, 'slow request in flight');
    assert.equal((await control.hold(10_000)).changed, true);
    const second = await control.hold(50);
    assert.equal(second.changed, false, 'a retried hold changes nothing');
    assert.equal(await code(control.switch('unew')), 'INGRESS_BAD_TRANSITION');
    assert.equal((await control.drained(0)).drained, false);
    assert.equal((await control.drained(5_000)).drained, true);
    assert.equal((await slow).status, 200);
    assert.equal((await control.switch('unew')).changed, true);
    assert.equal((await control.switch('unew')).changed, false, 'a retried switch changes nothing');
    assert.equal((await control.release()).changed, true);
    assert.equal((await control.release()).changed, false);
    await sleep(100); // past the 50 ms a second hold would have set: nothing fires
    assert.equal((await control.status()).counters.autoReleases, 0);

    // Bad JSON and unknown fields are 400 with the reason.
    const raw = async (path: string, body: string, token = TOKEN): Promise<{ status: number; json: any }> => {
      const r = await fetch(ingress.controlUrl + path, { method: 'POST', headers: { authorization: `Bearer ${token}` }, body });
      return { status: r.status, json: await r.json() };
    };
    const bad = await raw('/hold', '{not json');
    assert.equal(bad.status, 400);
    assert.equal(bad.json.error, 'INGRESS_BAD_REQUEST');
    assert.match(bad.json.message, /not a JSON object/);
    const unknownKey = await raw('/hold', '{"timeout": 5}');
    assert.match(unknownKey.json.message, /unknown field\(s\) timeout/);
    const badTimeout = await raw('/hold', '{"timeoutMs": -1}');
    assert.equal(badTimeout.status, 400);
    assert.match((await raw('/mirror', '{"on": "yes", "percent": 300}')).json.message, /on must be true or false; percent must be a number in 0\.\.100/);
  });

  it('refuses every control call without the right token (401)', async () => {
    const uold = await startUpstream('uold');
    const { ingress } = await ingressFor(uold);
    for (const [method, path] of [['GET', '/status'], ['POST', '/hold'], ['POST', '/switch'], ['POST', '/release'], ['GET', '/served'], ['GET', '/metrics']]) {
      const none = await fetch(ingress.controlUrl + path, { method, body: method === 'POST' ? '{}' : undefined });
      assert.equal(none.status, 401, `${method} ${path} without token`);
      const wrong = await fetch(ingress.controlUrl + path, { method, headers: { authorization: 'Bearer wrong-token-wrong-token' }, body: method === 'POST' ? '{}' : undefined });
      assert.equal(wrong.status, 401, `${method} ${path} with a wrong token`);
    }
    const client = new IngressControlClient(ingress.controlUrl, 'not-the-token-at-all');
    await assert.rejects(client.hold(), (e: unknown) => isImagoError(e, 'INGRESS_UNAUTHORIZED'));
    assert.equal((await ingress.status()).state, 'forward', 'the refused hold did nothing');
  });

  it('reports metrics, latency histogram and a timeline', async () => {
    const uold = await startUpstream('uold');
    const { ingress, control } = await ingressFor(uold);
    for (let i = 0; i < 20; i += 1) assert.equal((await request(`${ingress.url}/m/${i}`)).status, 200);
    const st = await control.status();
    assert.equal(st.latency.count, 20);
    assert.equal(st.latency.counts.reduce((a, b) => a + b, 0), 20);
    const text = await control.metrics();
    assert.match(text, /^imago_ingress_served_total 20$/m);
    assert.match(text, /^imago_ingress_latency_ms_count 20$/m);
    const tl = await control.timeline();
    assert.equal(tl.buckets.reduce((a, b) => a + b.count, 0), 20);
    assert.equal(tl.bucketMs, 100);
  });
});
