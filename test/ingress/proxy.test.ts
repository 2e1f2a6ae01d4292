import { strict as assert } from 'node:assert';
import * as http from 'node:http';
import * as net from 'node:net';
import { freePort } from '../../lib/ports';
import { isImagoError } from '../../lib/errors';
import { startIngress } from '../../interceptors/ingress/ingress';
import { IngressControlClient } from '../../interceptors/ingress/control-client';
import { ingressFor, RecordingComparer, request, startUpstream, TOKEN, until } from './helpers';

/** Sends raw bytes and returns what came back before the server closed (bounded). */
function raw(url: string, bytes: string, holdOpenMs = 0): Promise<string> {
  const u = new URL(url);
  return new Promise((resolve) => {
    const s = net.connect(Number(u.port), u.hostname, () => { s.write(bytes); });
    let out = '';
    s.on('data', (d) => { out += d; });
    s.on('close', () => resolve(out));
    s.on('error', () => resolve(out));
    setTimeout(() => s.destroy(), 5_000 + holdOpenMs);
  });
}

describe('ingress: the reverse proxy', () => {
  it('forwards over a keep-alive pool, streams bodies, drops hop-by-hop headers and adds X-Forwarded-*', async () => {
    const up = await startUpstream('uold');
    const { ingress } = await ingressFor(up);
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    for (let i = 0; i < 30; i += 1) {
      const r = await request(`${ingress.url}/k/${i}`, { agent, headers: { connection: 'keep-alive, x-secret', 'x-secret': 'hop', te: 'trailers', 'x-forwarded-for': '10.0.0.9' } });
      assert.equal(r.status, 200);
      assert.equal(r.headers['x-upstream'], 'uold');
      assert.equal(r.headers['x-hop'], undefined, 'a header the upstream named in Connection is dropped');
    }
    agent.destroy();
    assert.ok(up.connections <= 2, `30 requests used ${up.connections} upstream connection(s)`);
    const h = up.seen[0].headers;
    assert.equal(h['x-secret'], undefined);
    assert.equal(h.te, undefined);
    assert.equal(h['x-forwarded-for'], '10.0.0.9, 127.0.0.1');
    assert.equal(h['x-forwarded-proto'], 'http');

    const body = Buffer.alloc(3 * 1024 * 1024, 7);
    const echo = await new Promise<Buffer>((resolve, reject) => {
      const req = http.request(`${ingress.url}/echo`, { method: 'POST', headers: { 'transfer-encoding': 'chunked' } }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve(Buffer.concat(chunks)));
      });
      req.on('error', reject);
      for (let i = 0; i < 3; i += 1) req.write(body.subarray(i * 1024 * 1024, (i + 1) * 1024 * 1024));
      req.end();
    });
    assert.equal(echo.length, body.length);
    assert.ok(echo.equals(body));
  });

  it('answers bad input itself (400, 431, 413, 408) and keeps serving', async () => {
    const up = await startUpstream('uold');
    const { ingress, control } = await ingressFor(up, { limits: { maxHeaderBytes: 2048, maxBodyBytes: 1000, headerTimeoutMs: 300, bodyTimeoutMs: 600 } });
    assert.match(await raw(ingress.url, 'THIS IS NOT HTTP\r\n\r\n'), /^HTTP\/1\.1 400 /);
    assert.match(await raw(ingress.url, `GET / HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(4000)}\r\n\r\n`), /^HTTP\/1\.1 431 /);
    const big = await request(`${ingress.url}/echo`, { method: 'POST', body: Buffer.alloc(5000) });
    assert.equal(big.status, 413);
    const chunked = await new Promise<number>((resolve) => {
      // /sink answers only after the whole body, so the reply has not begun
      // when the limit is crossed mid-stream: the interceptor answers 413.
      const req = http.request(`${ingress.url}/sink`, { method: 'POST', headers: { 'transfer-encoding': 'chunked' } }, (res) => { res.resume(); resolve(res.statusCode ?? 0); });
      req.on('error', () => resolve(-1));
      req.write(Buffer.alloc(800));
      setTimeout(() => req.end(Buffer.alloc(800)), 50);
    });
    assert.equal(chunked, 413, 'chunked body over the limit');
    // Slow clients: a head that never ends, a body that never ends. nginx (the
    // data plane) closes such a connection without writing a 408 (RFC 9110
    // §15.5.9 allows either); it is counted in `timeouts` below.
    for (const bytes of ['GET / HTTP/1.1\r\nHost: x\r\n', 'POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc']) {
      const t0 = Date.now();
      assert.equal(await raw(ingress.url, bytes, 1_000), '', 'closed without a reply');
      assert.ok(Date.now() - t0 < 3_000, `closed by the interceptor's timeout, after ${Date.now() - t0} ms`);
    }
    // Still serving.
    const ok = await request(`${ingress.url}/after`);
    assert.equal(ok.status, 200);
    const st = await control.status();
    assert.ok(st.counters.badRequests >= 1 && st.counters.tooLarge >= 2 && st.counters.timeouts >= 2, JSON.stringify(st.counters));
    assert.ok(!up.seen.some((s) => s.body > 1000), 'no oversized body reached the upstream');
  });

  it('answers 502 quickly when the upstream is down, and 501 to protocol upgrades', async () => {
    const port = await freePort();
    const ingress = await startIngress({ upstream: { name: 'uold', url: `http://127.0.0.1:${port}` }, token: TOKEN });
    try {
      const r = await request(`${ingress.url}/x`);
      assert.equal(r.status, 502);
      assert.match(r.body, /upstream 'uold' failed/);
      const up = await request(`${ingress.url}/ws`, { headers: { connection: 'upgrade', upgrade: 'websocket' } });
      assert.equal(up.status, 501);
      const st = await ingress.status();
      assert.equal(st.counters.upstreamErrors, 1);
    } finally { await ingress.close(); }
  });

  it('listens and forwards over IPv6 too, mirroring included', async () => {
    const server = http.createServer((req, res) => res.end(JSON.stringify({ upstream: 'v6', url: req.url })));
    await new Promise<void>((r) => server.listen(0, '::1', () => r()));
    const shadow = http.createServer((req, res) => res.end(JSON.stringify({ upstream: 'shadow6', url: req.url })));
    await new Promise<void>((r) => shadow.listen(0, '::1', () => r()));
    const ingress = await startIngress({ upstream: { name: 'uold', url: `http://[::1]:${(server.address() as { port: number }).port}` }, token: TOKEN, listen: { host: '::1', port: 0 },
      upstreamAllowlist: ['::1'], comparerFactory: (cfg) => { comparer = new RecordingComparer(cfg); return comparer; } });
    let comparer: RecordingComparer | undefined;
    try {
      assert.match(ingress.url, /^http:\/\/\[::1\]:\d+$/);
      const control = new IngressControlClient(ingress.controlUrl, TOKEN);
      await control.addUpstream('unew', `http://[::1]:${(shadow.address() as { port: number }).port}`);
      await control.mirror({ on: true, shadow: 'unew' });
      const r = await request(`${ingress.url}/six`);
      assert.deepEqual([r.status, JSON.parse(r.body).upstream], [200, 'v6']);
      await until(() => (comparer?.pairs.length ?? 0) === 1, 'the mirrored pair');
      assert.equal(JSON.parse(comparer!.pairs[0].shadow.body.toString()).upstream, 'shadow6');
    } finally {
      await ingress.close();
      server.close();
      shadow.close();
    }
  });

  it('validates options once, reporting every error together', async () => {
    await assert.rejects(
      startIngress({ upstream: { name: 'Uold', url: 'https://x' }, token: 'short', limits: { holdQueueSize: -1, bogus: 1 } as never, extra: true } as never),
      (e: unknown) => {
        assert.ok(isImagoError(e, 'IMAGO_OPTIONS_INVALID'));
        for (const part of ["'extra'", '/upstream/name', '/upstream/url', '/token', '/limits/holdQueueSize', "'bogus'"]) assert.ok(e.message.includes(part), `${part} in ${e.message}`);
        return true;
      });
    await assert.rejects(startIngress({ upstream: { name: 'uold', url: 'http://127.0.0.1:9' }, token: TOKEN, runDir: `/tmp/${'x'.repeat(100)}` }),
      (e: unknown) => isImagoError(e, 'IMAGO_OPTIONS_INVALID') && /runDir must be at most 90 characters/.test(e.message));
  });
});
