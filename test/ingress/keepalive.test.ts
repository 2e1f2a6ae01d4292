/**
 * The keep-alive race: I reuses an idle pooled upstream connection at the
 * moment the upstream closes it, and the request fails before any reply byte.
 * The race is made deterministic with an upstream that closes a connection
 * when a request arrives on it after `idleMs` of idleness (what a server with
 * keepAliveTimeout = idleMs does when the request and its timer cross), and
 * that sends no Keep-Alive hint.
 */
import { strict as assert } from 'node:assert';
import * as http from 'node:http';
import type { Socket } from 'node:net';
import { onTeardown } from '../fixtures/servers';
import { ingressFor, request, sleep, startUpstream, until, type TestUpstream } from './helpers';

interface IdleKiller extends TestUpstream { killed: number; served: string[] }

async function startIdleKiller(name: string, idleMs: number): Promise<IdleKiller> {
  const lastEnd = new WeakMap<Socket, number>();
  const up = { name, url: '', seen: [], connections: 0, delayMs: 0, killed: 0, served: [] as string[] } as unknown as IdleKiller;
  // keepAliveTimeout 0: no Keep-Alive header, no server-side timer; the close happens here.
  const server = http.createServer({ keepAliveTimeout: 0 }, (req, res) => {
    const t = lastEnd.get(req.socket);
    if (t !== undefined && Date.now() - t >= idleMs) { up.killed += 1; req.socket.destroy(); return; }
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      up.served.push(`${req.method} ${req.url} ${Buffer.concat(chunks).length}`);
      const body = JSON.stringify({ upstream: name, url: req.url });
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
      res.on('finish', () => lastEnd.set(req.socket, Date.now()));
      res.end(req.method === 'HEAD' ? undefined : body);
    });
  });
  server.on('connection', () => { up.connections += 1; });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  up.server = server;
  up.url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  up.close = () => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); });
  onTeardown(up.close);
  return up;
}

/** `n` requests at once through I, each on its own client connection. */
function burst(url: string, n: number, round: number, method = 'GET', body?: string): Promise<number[]> {
  return Promise.all(Array.from({ length: n }, async (_, i) => {
    const agent = new http.Agent({ keepAlive: false });
    const r = await request(`${url}/r${round}/${i}`, { method, agent, body, headers: body ? { 'content-length': String(Buffer.byteLength(body)) } : {} });
    agent.destroy();
    return r.status;
  }));
}

describe('ingress: the upstream keep-alive race', () => {
  it('retries idempotent requests that fail on a reused connection before any reply byte (once per stale connection met)', async () => {
    const up = await startIdleKiller('uold', 100);
    // An idle timeout longer than the upstream's: I keeps stale connections, as with an upstream that gives no hint.
    const { ingress, control } = await ingressFor(up, { limits: { upstreamIdleTimeoutMs: 60_000 } });
    const statuses: number[] = [];
    statuses.push(...await burst(ingress.url, 5, 0)); // fills the pool with 5 connections
    for (let round = 1; round <= 3; round += 1) {
      await sleep(150); // every pooled connection is now past the upstream's idle limit
      statuses.push(...await burst(ingress.url, 5, round, ['GET', 'PUT', 'DELETE'][round - 1], round === 2 ? 'x'.repeat(1000) : undefined));
    }
    await sleep(150);
    statuses.push(...await burst(ingress.url, 2, 4, 'HEAD'), ...await burst(ingress.url, 2, 5, 'OPTIONS'));
    assert.deepEqual(statuses, Array(24).fill(200), 'no request failed');
    assert.ok(up.killed >= 10, `the race happened (${up.killed} requests met a closing connection)`);
    const st = await control.status();
    assert.equal(st.counters.upstreamErrors, 0);
    assert.equal(st.counters.upstreamRetries, up.killed, 'each failure on a reused connection was retried once');
    assert.ok(up.served.includes('PUT /r2/0 1000'), 'a retried PUT carries its whole body');
    const m = await control.metrics();
    assert.match(m, new RegExp(`imago_ingress_upstream_retries_total ${up.killed}\\n`));
  });

  it('mirroring: a shadow request that meets a closing pooled connection is sent again, so Unew is not blamed for the race', async () => {
    const uold = await startUpstream('uold');
    const unew = await startIdleKiller('unew', 100);
    const { ingress, control, comparers } = await ingressFor(uold, { limits: { upstreamIdleTimeoutMs: 60_000 } });
    await control.addUpstream('unew', unew.url);
    await control.mirror({ on: true, shadow: 'unew' });
    const statuses: number[] = [];
    for (let round = 0; round < 3; round += 1) {
      statuses.push(...await burst(ingress.url, 4, round));
      await until(() => comparers[0].pairs.length === 4 * (round + 1), `the pairs of round ${round}`);
      await sleep(150); // the shadow's pooled connections are now past its idle limit
    }
    assert.deepEqual(statuses, Array(12).fill(200));
    assert.ok(unew.killed >= 4, `the race happened on the shadow path (${unew.killed})`);
    assert.deepEqual(comparers[0].pairs.map((p) => p.shadow.status), Array(12).fill(200), 'every shadow reply arrived');
    assert.equal((await control.status()).counters.shadowErrors, 0);
  });

  it('does not retry a POST the upstream may have read (connection reset after the request arrived): 502, counted', async () => {
    const up = await startIdleKiller('uold', 100);
    const { ingress, control } = await ingressFor(up, { limits: { upstreamIdleTimeoutMs: 60_000 } });
    // Every worker process keeps its own pool: fill them (a burst lands on both workers)...
    assert.deepEqual(await burst(ingress.url, 6, 0, 'POST', '{"bid":1}'), Array(6).fill(200));
    await sleep(150);
    // ...so that POSTs now meet connections the upstream closes as they arrive.
    const statuses = await burst(ingress.url, 6, 1, 'POST', '{"bid":2}');
    const seen = `statuses ${statuses.join(',')}, killed ${up.killed}, served ${up.served.join(' | ')}`;
    assert.ok(up.killed >= 1, `the race happened (${seen})`);
    assert.equal(statuses.filter((s) => s === 502).length, up.killed, `each POST that met the race got 502 (${seen})`);
    assert.equal(statuses.filter((s) => s === 200).length, 6 - up.killed);
    const st = await control.status();
    assert.equal(st.counters.upstreamRetries, 0);
    assert.equal(st.counters.upstreamErrors, up.killed);
    assert.equal(up.served.length, 12 - up.killed, 'no failed POST was sent twice');
    assert.equal(new Set(up.served).size, up.served.filter((x) => x.startsWith('POST /r1/')).length + 6);
  });

  it('closes idle pooled connections before the upstream does (limits.upstreamIdleTimeoutMs): no race, no retry', async () => {
    const up = await startIdleKiller('uold', 300);
    const { ingress, control } = await ingressFor(up, { limits: { upstreamIdleTimeoutMs: 100 } });
    const statuses: number[] = [];
    for (let i = 0; i < 4; i += 1) { statuses.push(...await burst(ingress.url, 3, i)); await sleep(400); }
    assert.deepEqual(statuses, Array(12).fill(200));
    assert.equal(up.killed, 0, 'I never reused a connection the upstream was closing');
    assert.equal((await control.status()).counters.upstreamRetries, 0);
    assert.ok(up.connections >= 10, `idle connections were closed by I (${up.connections} connections for 12 requests)`);
  });

  // nginx (the data plane) does not read the upstream's Keep-Alive: timeout=N
  // hint: limits.upstreamIdleTimeoutMs must be below the upstream's own
  // keep-alive timeout (docs/ingress.md); the retry above covers the rest.
  it('keeps a pooled connection for upstreamIdleTimeoutMs, then closes it before the upstream does; a slow reply is not cut', async () => {
    let connections = 0;
    const server = http.createServer({ keepAliveTimeout: 2_000 }, (req, res) => {
      setTimeout(() => res.end(req.url === '/slow' ? 'slow' : 'ok'), req.url === '/slow' ? 1_500 : 0);
    });
    server.on('connection', () => { connections += 1; });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    onTeardown(() => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }));
    const up = { name: 'uold', url: `http://127.0.0.1:${(server.address() as { port: number }).port}` } as TestUpstream;
    const { ingress, control } = await ingressFor(up, { limits: { upstreamIdleTimeoutMs: 1_000 } });
    // One client connection: one worker process, hence one upstream pool.
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    assert.equal((await request(`${ingress.url}/a`, { agent })).status, 200);
    await sleep(300);
    assert.equal((await request(`${ingress.url}/b`, { agent })).status, 200);
    assert.equal(connections, 1, 'reused within the idle timeout');
    await sleep(1_300); // past I's 1 s, before the upstream's 2 s
    assert.equal((await request(`${ingress.url}/c`, { agent })).status, 200);
    assert.equal(connections, 2, 'not reused past the idle timeout: I closed it first');
    const slow = await request(`${ingress.url}/slow`, { agent });
    assert.equal(slow.body, 'slow', 'a reply slower than the idle timeout still arrives');
    agent.destroy();
    assert.equal((await control.status()).counters.upstreamRetries, 0);
  });
});
