import { strict as assert } from 'node:assert';
import * as http from 'node:http';
import { isImagoError } from '../../lib/errors';
import { fleetSwitchover } from '../../interceptors/ingress/fleet';
import type { IngressControlClient } from '../../interceptors/ingress/control-client';
import type { Ingress } from '../../interceptors/ingress/ingress';
import { ingressFor, request, sleep, startUpstream, until, type Outcome } from './helpers';

async function fleetOf(n: number): Promise<{ ingresses: Ingress[]; clients: IngressControlClient[]; uold: Awaited<ReturnType<typeof startUpstream>>; unew: Awaited<ReturnType<typeof startUpstream>> }> {
  const uold = await startUpstream('uold');
  const unew = await startUpstream('unew');
  const ingresses: Ingress[] = [];
  const clients: IngressControlClient[] = [];
  for (let i = 0; i < n; i += 1) {
    const { ingress, control } = await ingressFor(uold);
    await control.addUpstream('unew', unew.url);
    ingresses.push(ingress);
    clients.push(control);
  }
  return { ingresses, clients, uold, unew };
}

/** Steady traffic through every interceptor until stop() (bounded). */
function traffic(ingresses: Ingress[]): { stop: () => Promise<Outcome[]> } {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 30 });
  const out: Outcome[] = [];
  let stopped = false;
  const loops = ingresses.flatMap((ing, i) => Array.from({ length: 10 }, async (_, j) => {
    for (let n = 0; !stopped && n < 300; n += 1) out.push(await request(`${ing.url}/f/${i}/${j}/${n}`, { agent }));
  }));
  return { stop: async () => { stopped = true; await Promise.all(loops); agent.destroy(); return out; } };
}

describe('ingress: fleet coordination', () => {
  it('switches three interceptors atomically and reports each phase', async () => {
    const { ingresses, clients } = await fleetOf(3);
    const load = traffic(ingresses);
    await sleep(200);
    let flushed = false;
    const t = await fleetSwitchover(clients, { target: 'unew', holdTimeoutMs: 10_000, drainTimeoutMs: 5_000, flush: async () => { await sleep(30); flushed = true; } });
    await sleep(200);
    const outcomes = await load.stop();
    assert.ok(flushed);
    assert.ok(t.flushMs >= 25 && t.totalMs >= t.holdMs + t.drainMs + t.flushMs + t.switchMs + t.releaseMs - 1, JSON.stringify(t));
    assert.deepEqual(outcomes.filter((o) => o.status !== 200), []);
    // Across the whole fleet: every uold reply ended before any unew request began.
    const served = (await Promise.all(clients.map((c) => c.servedAll()))).flat();
    const lastOld = Math.max(...served.filter((r) => r.upstream === 'uold').map((r) => r.end));
    const firstNew = Math.min(...served.filter((r) => r.upstream === 'unew').map((r) => r.start));
    assert.ok(lastOld <= firstNew, `${lastOld} <= ${firstNew}`);
    for (const c of clients) { const s = await c.status(); assert.equal(s.target, 'unew'); assert.equal(s.state, 'forward'); }
  });

  it('releases every interceptor to the old target when one dies mid-way', async () => {
    const { ingresses, clients, unew } = await fleetOf(3);
    const held: Array<Promise<Outcome>> = [];
    const err = await fleetSwitchover(clients, {
      target: 'unew', holdTimeoutMs: 10_000, drainTimeoutMs: 5_000,
      flush: async () => {
        // Requests arrive during the hold; then interceptor #1 dies.
        for (const ing of [ingresses[0], ingresses[2]]) held.push(request(`${ing.url}/during-hold`));
        await until(async () => (await clients[0].status()).held === 1 && (await clients[2].status()).held === 1, 'held requests');
        await ingresses[1].close(100);
      },
    }).then(() => undefined, (e: unknown) => e);
    assert.ok(isImagoError(err, 'INGRESS_FLEET_ABORTED'), String(err));
    assert.match(err.message, /switch failed at 1 of 3/);
    for (const c of [clients[0], clients[2]]) { const s = await c.status(); assert.equal(s.target, 'uold'); assert.equal(s.state, 'forward'); }
    const outcomes = await Promise.all(held);
    assert.deepEqual(outcomes.map((o) => [o.status, JSON.parse(o.body).upstream]), [[200, 'uold'], [200, 'uold']]);
    assert.equal(unew.seen.length, 0, 'nothing was served by unew');
  });

  it('aborts to the old target when one interceptor does not drain in time, or when the flush fails', async () => {
    const { ingresses, clients, unew } = await fleetOf(2);
    const slow = request(`${ingresses[1].url}/slow?delay=1500`);
    await until(async () => (await clients[1].status()).inFlight === 1, 'slow request in flight');
    const err = await fleetSwitchover(clients, { target: 'unew', holdTimeoutMs: 10_000, drainTimeoutMs: 300, flush: async () => undefined }).then(() => undefined, (e: unknown) => e);
    assert.ok(isImagoError(err, 'INGRESS_FLEET_ABORTED'), String(err));
    assert.match(err.message, /INGRESS_DRAIN_TIMEOUT/);
    assert.equal((await slow).status, 200);

    const err2 = await fleetSwitchover(clients, { target: 'unew', holdTimeoutMs: 10_000, drainTimeoutMs: 2_000, flush: async () => { throw new Error('flush: E lags'); } }).then(() => undefined, (e: unknown) => e);
    assert.ok(isImagoError(err2, 'INGRESS_FLEET_ABORTED'));
    assert.match(err2.message, /flush: E lags/);
    for (const c of clients) { const s = await c.status(); assert.equal(s.target, 'uold'); assert.equal(s.state, 'forward'); }
    assert.equal(unew.seen.length, 0);
  });
});
