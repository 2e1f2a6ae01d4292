/**
 * The data plane survives its own crashes: a worker process killed (SIGKILL)
 * while idle, while forwarding and while holding is replaced by nginx's
 * master; clients see no error beyond the requests that process had (in
 * flight or held), nothing reaches Unew before the release, and the
 * interceptor's counters match what the clients saw. Also: the supervisor
 * restarts a data plane whose master died.
 *
 * Clients open a new connection per request here, so that every request a
 * dead worker had is one it had started (an idle keep-alive connection of a
 * dead worker would fail the next request sent on it, which no interceptor
 * could count).
 */
import { strict as assert } from 'node:assert';
import * as http from 'node:http';
import type { Ingress } from '../../interceptors/ingress/ingress';
import type { IngressControlClient } from '../../interceptors/ingress/control-client';
import { ingressFor, request, sleep, startUpstream, until, type Outcome, type TestUpstream } from './helpers';

interface Stamped extends Outcome { sentAt: number }

/** `n` clients sending requests one after another (a new connection each) until stop(). */
function traffic(url: string, n: number, path = '/t'): { stop: () => Promise<Stamped[]>; outcomes: Stamped[] } {
  const outcomes: Stamped[] = [];
  let stopped = false;
  const loops = Array.from({ length: n }, async (_, i) => {
    for (let k = 0; !stopped && k < 2_000; k += 1) {
      const sentAt = Date.now();
      const agent = new http.Agent({ keepAlive: false });
      const r = await request(`${url}${path}/${i}/${k}`, { agent });
      agent.destroy();
      outcomes.push({ ...r, sentAt });
    }
  });
  return { outcomes, stop: async () => { stopped = true; await Promise.all(loops); return outcomes; } };
}

async function workers(control: IngressControlClient): Promise<Array<{ id: number; pid: number; inFlight: number; held: number }>> {
  return (await control.status()).dataPlane.workers;
}

/** Kills worker `id` and waits until nginx's master has replaced it. */
async function killWorker(control: IngressControlClient, id: number): Promise<{ pid: number; replacedBy: number }> {
  const before = (await workers(control)).find((w) => w.id === id)!;
  process.kill(before.pid, 'SIGKILL');
  let now = before.pid;
  await until(async () => {
    now = (await workers(control)).find((w) => w.id === id)!.pid;
    return now !== before.pid && now > 0;
  }, `worker ${id} replaced`);
  return { pid: before.pid, replacedBy: now };
}

/** Upstream receive times, to check nothing reached it before a moment. */
function arrivals(up: TestUpstream): number[] {
  return (up as TestUpstream & { arrivedAt: number[] }).arrivedAt;
}

async function stampedUpstream(name: string, delayMs = 0): Promise<TestUpstream> {
  const up = await startUpstream(name, delayMs);
  const stamps: number[] = [];
  up.server.prependListener('request', () => { stamps.push(Date.now()); });
  (up as TestUpstream & { arrivedAt: number[] }).arrivedAt = stamps;
  return up;
}

const errorsOf = (o: Outcome[]): Outcome[] => o.filter((x) => x.status !== 200);

describe('ingress: the data plane survives its own crashes', () => {
  let ingress: Ingress;
  let control: IngressControlClient;

  /** Uold and Unew (echo upstreams that stamp their name), an interceptor in front of Uold that knows Unew. */
  async function twoUpstreams(opts: Parameters<typeof ingressFor>[1]) {
    const uold = await stampedUpstream('uold');
    const unew = await stampedUpstream('unew');
    ({ ingress, control } = await ingressFor(uold, opts));
    await control.addUpstream('unew', unew.url);
    return { uold, unew };
  }

  it('a worker killed while idle is replaced; nothing fails, counters say so', async () => {
    const uold = await stampedUpstream('uold');
    ({ ingress, control } = await ingressFor(uold, { workers: 2 }));
    assert.equal((await workers(control)).length, 2, 'two worker processes');
    assert.equal((await request(`${ingress.url}/before`)).status, 200);
    const { pid, replacedBy } = await killWorker(control, 0);
    assert.notEqual(pid, replacedBy);
    const after = await Promise.all(Array.from({ length: 20 }, (_, i) => request(`${ingress.url}/after/${i}`, { agent: new http.Agent({ keepAlive: false }) })));
    assert.deepEqual(after.map((o) => o.status), Array(20).fill(200));
    const st = await control.status();
    assert.equal(st.counters.workerRestarts, 1);
    assert.equal(st.counters.lostInFlight, 0);
    assert.equal(st.counters.lostHeld, 0);
    assert.equal(st.counters.requests, 21);
    assert.equal(st.counters.served, 21);
    assert.match(st.transitions.map((t) => t.detail).join('\n'), new RegExp(`worker 0 \\(pid ${pid}\\) died with 0 in flight and 0 held; replaced by pid ${replacedBy}`));
  });

  it('a worker killed while forwarding: clients lose only the requests it had in flight, and the counters match', async () => {
    const uold = await stampedUpstream('uold', 150);
    ({ ingress, control } = await ingressFor(uold, { workers: 2, limits: { orphanGraceMs: 400 } }));
    const load = traffic(ingress.url, 16);
    await until(async () => (await workers(control)).every((w) => w.inFlight > 0), 'both workers forwarding');
    const { pid } = await killWorker(control, 0);
    await sleep(400);
    const outcomes = await load.stop();
    const errors = errorsOf(outcomes);
    const st = await control.status();
    assert.ok(st.counters.lostInFlight > 0, 'the dead worker had requests in flight');
    assert.equal(errors.length, st.counters.lostInFlight, `client errors (${errors.map((e) => e.error).join(', ')}) = requests in flight at worker pid ${pid}`);
    assert.ok(errors.every((e) => e.status === 0), 'the lost requests failed at the connection, no other error');
    assert.equal(st.counters.requests, outcomes.length, 'every request the clients sent was counted');
    assert.equal(st.counters.served, outcomes.length - errors.length, 'served = what the clients got');
    assert.equal(st.counters.upstreamErrors + st.counters.clientAborts, 0);
    // The dead worker's requests may still run at the upstream: drained waits orphanGraceMs for them.
    const d = await control.drained(0);
    assert.ok(d.drained || st.dataPlane.orphaned > 0);
    assert.equal((await control.drained(2_000)).drained, true);
  });

  it('a worker killed while holding: its held clients fail, nothing reaches Unew before the release, the rest is served by Unew', async () => {
    const { unew } = await twoUpstreams({ workers: 2, limits: { orphanGraceMs: 200 } });
    const load = traffic(ingress.url, 24);
    await until(() => load.outcomes.length > 50, 'traffic to flow');
    await control.hold(20_000);
    assert.equal((await control.drained(5_000)).drained, true);
    let seen: unknown;
    await until(async () => { const ws = await workers(control); seen = ws; return ws.every((w) => w.held >= 3); }, 'requests held at both workers')
      .catch((e: Error) => { throw new Error(`${e.message}: ${JSON.stringify(seen)}; ${load.outcomes.length} done`); });
    const heldAtKill = (await workers(control)).find((w) => w.id === 1)!.held;
    await killWorker(control, 1);
    const afterKill = await control.status();
    assert.equal(afterKill.state, 'held', 'the hold survived the worker');
    assert.equal(afterKill.counters.lostHeld, heldAtKill, 'the dead worker had these held');
    assert.equal(unew.seen.length, 0);
    // Requests keep arriving (the replacement worker holds them too); then the switchover.
    await sleep(200);
    assert.equal((await control.drained(5_000)).drained, true);
    await control.switch('unew');
    await control.commit();
    const releaseAt = Date.now();
    const rel = await control.release();
    await sleep(300);
    const outcomes = await load.stop();

    assert.ok(arrivals(unew).every((t) => t >= releaseAt), 'no request reached Unew before the release');
    assert.ok(rel.released > 0);
    const st = await control.status();
    const errors = errorsOf(outcomes);
    assert.equal(errors.length, st.counters.lostHeld + st.counters.lostInFlight, 'clients lost only what the dead worker had');
    assert.equal(st.counters.lostInFlight, 0, 'nothing was in flight (drained)');
    assert.equal(st.counters.requests, outcomes.length);
    assert.equal(st.counters.served, outcomes.length - errors.length);
    assert.equal(st.counters.held, rel.released + st.counters.lostHeld, 'every held request was released or lost with its worker');
    const served = await control.servedAll();
    const lastOld = Math.max(...served.filter((r) => r.upstream === 'uold').map((r) => r.end));
    const firstNew = Math.min(...served.filter((r) => r.upstream === 'unew').map((r) => r.start));
    assert.ok(lastOld <= firstNew, `last uold reply ${lastOld} ≤ first unew request ${firstNew}`);
    const byUpstream = outcomes.filter((o) => o.status === 200).map((o) => [o.sentAt, JSON.parse(o.body).upstream] as const);
    assert.ok(byUpstream.filter(([, u]) => u === 'unew').length >= rel.released);
  });

  it('the hard timeout survives the worker that took the hold: an uncommitted hold goes back to Uold', async () => {
    const { unew } = await twoUpstreams({ workers: 2 });
    await control.hold(1_000);
    const held = Array.from({ length: 8 }, (_, i) => request(`${ingress.url}/h/${i}`, { agent: new http.Agent({ keepAlive: false }) }));
    await until(async () => (await control.status()).held === 8, 'eight held');
    await control.switch('unew'); // the driver switches, then dies
    const heldAtKill = (await workers(control)).find((w) => w.id === 0)!.held;
    await killWorker(control, 0);
    const outcomes = await Promise.all(held);
    assert.equal(errorsOf(outcomes).length, heldAtKill);
    assert.ok(outcomes.filter((o) => o.status === 200).every((o) => JSON.parse(o.body).upstream === 'uold'));
    assert.equal(unew.seen.length, 0, 'nothing reached Unew');
    const st = await control.status();
    assert.deepEqual([st.state, st.target, st.counters.autoReleases], ['forward', 'uold', 1]);
  });

  it('the supervisor restarts a data plane whose master died, serving the target the hard timeout would choose', async () => {
    const { uold } = await twoUpstreams({ workers: 2 });
    await control.hold(10_000);
    await control.switch('unew');
    await control.commit(); // decided: the switch must survive anything now
    const master = Number((await import('node:fs')).readFileSync(`${ingress.runDir}/nginx.pid`, 'utf8'));
    const oldWorkers = (await workers(control)).map((w) => w.pid);
    process.kill(master, 'SIGKILL');
    await until(async () => {
      try { return (await control.status()).dataPlane.restarts === 1; } catch { return false; }
    }, 'the data plane restarted', 15_000);
    const st = await control.status();
    assert.deepEqual([st.state, st.target], ['forward', 'unew'], 'a committed switch comes back forward');
    const r = await request(`${ingress.url}/after-restart`);
    assert.equal(JSON.parse(r.body).upstream, 'unew');
    assert.equal(uold.seen.length, 0);
    // The dead master's workers quit by themselves (nothing left behind).
    await until(() => oldWorkers.every((pid) => { try { process.kill(pid, 0); return false; } catch { return true; } }), 'the old workers to quit', 10_000);
  });
});
