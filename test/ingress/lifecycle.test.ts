/**
 * The interceptor as load balancers and hosts treat it: a health endpoint
 * that turns 503 before the interceptor stops serving, and client keep-alive
 * connections that survive multi-second stalls of the host.
 */
import { strict as assert } from 'node:assert';
import * as http from 'node:http';
import { isImagoError } from '../../lib/errors';
import { ingressFor, request, sleep, startUpstream } from './helpers';

describe('ingress: health and stalls', () => {
  it('answers the health endpoint 200 while serving, 503 once stopping while requests are still served, then nothing', async () => {
    const up = await startUpstream('uold');
    const { ingress } = await ingressFor(up, { health: { host: '127.0.0.1', port: 0 }, limits: { shutdownDelayMs: 600 } });
    assert.ok(ingress.healthUrl);
    const ok = await request(`${ingress.healthUrl}/health`);
    assert.deepEqual([ok.status, JSON.parse(ok.body)], [200, { status: 'ok' }]);
    const closing = ingress.close(2_000);
    await sleep(150);
    const stopping = await request(`${ingress.healthUrl}/health`);
    assert.deepEqual([stopping.status, JSON.parse(stopping.body)], [503, { status: 'stopping' }], 'load balancers are told first');
    assert.equal((await request(`${ingress.url}/still`)).status, 200, 'while requests are still served');
    await closing;
    const gone = await request(`${ingress.healthUrl}/health`);
    assert.equal(gone.status, 0, 'a stopped interceptor does not answer');
  });

  it('refuses to start on a port another interceptor already serves (nginx listens with SO_REUSEPORT)', async () => {
    const up = await startUpstream('uold');
    const { ingress } = await ingressFor(up);
    await assert.rejects(ingressFor(up, { listen: { host: '127.0.0.1', port: Number(new URL(ingress.url).port) } }),
      (e: unknown) => isImagoError(e, 'INGRESS_LISTEN_FAILED') && /EADDRINUSE/.test(e.message));
    assert.equal((await request(`${ingress.url}/still-mine`)).status, 200);
  });

  it('keeps idle client connections through a 3 s stall of every worker: no reset, every request answered and counted', async function () {
    this.timeout(60_000);
    const up = await startUpstream('uold');
    const { ingress, control } = await ingressFor(up, { workers: 2 });
    const agent = new http.Agent({ keepAlive: true, maxSockets: 20 });
    const burst = (round: number): Promise<number[]> => Promise.all(Array.from({ length: 20 }, async (_, i) => (await request(`${ingress.url}/s/${round}/${i}`, { agent })).status));
    assert.deepEqual(await burst(0), Array(20).fill(200));
    // The connections idle for 4 s, then the host stalls for 3 s while the
    // clients send on them: a 5 s keep-alive timeout (Node's default, the old
    // data plane's) expires during the stall and resets connections that
    // already carry a request.
    const pids = (await control.status()).dataPlane.workers.map((w) => w.pid);
    await sleep(4_000);
    for (const pid of pids) process.kill(pid, 'SIGSTOP');
    let during: Promise<number[]>;
    try {
      during = burst(1);
      await sleep(3_000);
    } finally {
      for (const pid of pids) process.kill(pid, 'SIGCONT');
    }
    assert.deepEqual(await during, Array(20).fill(200), 'no request failed');
    agent.destroy();
    const st = await control.status();
    assert.equal(st.counters.requests, 40);
    assert.equal(st.counters.served, 40);
    assert.equal(st.counters.workerRestarts, 0);
  });
});
