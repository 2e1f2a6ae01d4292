/**
 * Bad and hostile input at both of the interceptor's ports: answered with a
 * status the client can read (413, 431) rather than a reset; the bearer
 * scheme in any case; upstream registration limited to the allowlist, with
 * link-local and cloud metadata addresses always refused; absolute-form
 * request targets normalised.
 */
import { strict as assert } from 'node:assert';
import * as net from 'node:net';
import { isImagoError } from '../../lib/errors';
import { startIngress } from '../../interceptors/ingress/ingress';
import { ingressFor, startUpstream, TOKEN, until } from './helpers';

/**
 * Sends `head`, then `bodyBytes` of body in 64 KiB writes while the server
 * reads, and returns what came back and whether the connection was reset
 * before the whole answer was read.
 */
function exchange(url: string, head: string, bodyBytes = 0): Promise<{ text: string; reset: boolean }> {
  const u = new URL(url);
  return new Promise((resolve) => {
    const s = net.connect(Number(u.port), u.hostname);
    let text = '';
    let reset = false;
    const done = (): void => { resolve({ text, reset }); s.destroy(); };
    s.on('data', (d) => {
      text += d.toString('latin1');
      // A complete answer ends the exchange (the server may keep the connection open).
      const end = text.indexOf('\r\n\r\n');
      const len = /\r\ncontent-length: *(\d+)/i.exec(text.slice(0, end));
      if (end >= 0 && len && text.length >= end + 4 + Number(len[1])) done();
    });
    s.on('error', (e: NodeJS.ErrnoException) => { if (e.code === 'ECONNRESET') reset = true; });
    s.on('close', () => resolve({ text, reset }));
    s.on('connect', async () => {
      s.write(head);
      const chunk = Buffer.alloc(64 * 1024, 97);
      for (let sent = 0; sent < bodyBytes && !s.destroyed && s.writable;) {
        const n = Math.min(chunk.length, bodyBytes - sent);
        sent += n;
        if (!s.write(chunk.subarray(0, n))) await new Promise((r) => { s.once('drain', r); s.once('close', r); });
      }
    });
    setTimeout(() => s.destroy(), 10_000);
  });
}

const bigHeader = (path: string, extra = ''): string => `GET ${path} HTTP/1.1\r\nHost: x\r\n${extra}X-Big: ${'a'.repeat(1024 * 1024)}\r\n\r\n`;

describe('ingress: bad input and where traffic may go', () => {
  it('data port: a body over the limit gets 413 and a 1 MB header gets 431, both readable (no reset)', async () => {
    const up = await startUpstream('uold');
    const { ingress, control } = await ingressFor(up, { limits: { maxBodyBytes: 1024 * 1024 } });
    const body = await exchange(ingress.url, `POST /sink HTTP/1.1\r\nHost: x\r\nContent-Length: ${8 * 1024 * 1024}\r\n\r\n`, 8 * 1024 * 1024);
    assert.match(body.text, /^HTTP\/1\.1 413 /);
    assert.match(body.text, /request body larger than 1048576 bytes/);
    const head = await exchange(ingress.url, bigHeader('/x'));
    assert.match(head.text, /^HTTP\/1\.1 431 /);
    assert.equal(up.seen.length, 0, 'neither reached the upstream');
    // Counted when nginx closes the connection (after its lingering read).
    await until(async () => (await control.status()).counters.tooLarge === 2, 'both counted as too large', 5_000);
  });

  it('control port: a body over 64 KiB gets 413, a 1 MB header 431 (no reset); nothing changes', async () => {
    const up = await startUpstream('uold');
    const { ingress, control } = await ingressFor(up);
    const auth = `Authorization: Bearer ${TOKEN}\r\n`;
    const sized = await exchange(ingress.controlUrl, `POST /hold HTTP/1.1\r\nHost: x\r\n${auth}Content-Type: application/json\r\nContent-Length: ${1024 * 1024}\r\n\r\n`, 1024 * 1024);
    assert.match(sized.text, /^HTTP\/1\.1 413 /);
    assert.match(sized.text, /"error":"INGRESS_BAD_REQUEST".*body larger than 65536 bytes/);
    const chunked = await exchange(ingress.controlUrl, `POST /hold HTTP/1.1\r\nHost: x\r\n${auth}Transfer-Encoding: chunked\r\n\r\n${(200_000).toString(16)}\r\n${'{'.repeat(200_000)}\r\n0\r\n\r\n`);
    assert.match(chunked.text, /^HTTP\/1\.1 413 /);
    const head = await exchange(ingress.controlUrl, bigHeader('/status', auth));
    assert.match(head.text, /^HTTP\/1\.1 431 /);
    assert.equal(head.reset, false, 'the 431 was read before the connection closed');
    assert.equal((await control.status()).state, 'forward', 'no oversized call changed anything');
  });

  it('accepts the bearer scheme in any case (RFC 7235), refuses other schemes and wrong tokens', async () => {
    const up = await startUpstream('uold');
    const { ingress } = await ingressFor(up);
    const status = async (authorization: string): Promise<number> => (await fetch(`${ingress.controlUrl}/status`, { headers: { authorization } })).status;
    for (const ok of [`Bearer ${TOKEN}`, `bearer ${TOKEN}`, `BEARER ${TOKEN}`, `bEaReR  ${TOKEN}`]) assert.equal(await status(ok), 200, ok);
    for (const bad of [`Basic ${TOKEN}`, `Bearer ${TOKEN}x`, `Bearer`, TOKEN, `Bearer ${TOKEN} extra`]) assert.equal(await status(bad), 401, bad);
  });

  it('registers upstreams only inside the allowlist; link-local and metadata addresses never', async () => {
    const up = await startUpstream('uold');
    const code = async (p: Promise<unknown>): Promise<string> => { try { await p; return 'ok'; } catch (e) { assert.ok(isImagoError(e), String(e)); return `${e.code}: ${e.message}`; } };
    // Default allowlist: the start upstream's own address (127.0.0.1).
    const { control } = await ingressFor(up);
    assert.equal(await code(control.addUpstream('unew', 'http://127.0.0.1:9')), 'ok');
    assert.match(await code(control.addUpstream('other', 'http://127.0.0.2:9')), /^INGRESS_UPSTREAM_REFUSED: .*127\.0\.0\.2 is not in the upstream allowlist \(127\.0\.0\.1\)/);
    assert.match(await code(control.addUpstream('meta', 'http://169.254.169.254')), /^INGRESS_UPSTREAM_REFUSED: .*169\.254\.169\.254 is link-local \(cloud metadata services\): never allowed/);
    // A wide allowlist still never allows link-local and metadata addresses.
    const wide = await ingressFor(up, { upstreamAllowlist: ['127.0.0.0/8', '169.254.0.0/16', '::/0', '100.64.0.0/10'] });
    assert.equal(await code(wide.control.addUpstream('other', 'http://127.0.0.2:9')), 'ok');
    assert.equal(await code(wide.control.addUpstream('byname', 'http://localhost:9')), 'ok', 'a name is resolved and each of its addresses checked');
    for (const url of ['http://169.254.169.254', 'http://[fd00:ec2::254]:80', 'http://[fe80::1]:80', 'http://100.100.100.200', 'http://[::ffff:169.254.169.254]:80', 'http://0.0.0.0:80']) {
      assert.match(await code(wide.control.addUpstream('meta', url)), /^INGRESS_UPSTREAM_REFUSED: .*never allowed/, url);
    }
    assert.match(await code(wide.control.addUpstream('nowhere', 'http://no-such-host.invalid:80')), /^INGRESS_UPSTREAM_REFUSED: .*cannot resolve/);
    assert.deepEqual(Object.keys((await wide.control.status()).upstreams).sort(), ['byname', 'other', 'uold']);
    // The start upstream and the allowlist are checked at start too.
    await assert.rejects(startIngress({ upstream: { name: 'uold', url: 'http://169.254.169.254' }, token: TOKEN }), (e: unknown) => isImagoError(e, 'INGRESS_UPSTREAM_REFUSED'));
    await assert.rejects(startIngress({ upstream: { name: 'uold', url: up.url }, token: TOKEN, upstreamAllowlist: ['10.0.0.0/33', 'nonsense'] }),
      (e: unknown) => isImagoError(e, 'IMAGO_OPTIONS_INVALID') && /10\.0\.0\.0\/33, nonsense/.test(e.message));
  });

  it('normalises absolute-form request targets: origin form upstream, Host from the target (RFC 9112 §3.2.2)', async () => {
    const up = await startUpstream('uold');
    const { ingress } = await ingressFor(up);
    const r = await exchange(ingress.url, 'GET http://other.example:81/p?q=1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    assert.match(r.text, /^HTTP\/1\.1 200 /);
    assert.equal(up.seen[0].url, '/p?q=1');
    assert.equal(up.seen[0].headers.host, 'other.example:81');
    const plain = await exchange(ingress.url, 'GET /q HTTP/1.1\r\nHost: site.example\r\nConnection: close\r\n\r\n');
    assert.match(plain.text, /^HTTP\/1\.1 200 /);
    assert.equal(up.seen[1].headers.host, 'site.example', 'an origin-form request keeps its Host');
  });
});
