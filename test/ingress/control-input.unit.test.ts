import { strict as assert } from 'node:assert';
import { isImagoError } from '../../lib/errors';
import { HoldRequest, MirrorRequest, UpstreamRequest } from '../../interceptors/ingress/api';
import { bearerToken, bodyValidator } from '../../interceptors/ingress/control';
import { parseIngressArgs } from '../../interceptors/ingress/main';

describe('control API input (pure parts)', () => {
  it('reads a bearer token with the scheme in any case and nothing else', () => {
    assert.equal(bearerToken('Bearer abc'), 'abc');
    assert.equal(bearerToken('bearer abc'), 'abc');
    assert.equal(bearerToken('BEARER \tabc '), 'abc');
    for (const h of [undefined, '', 'Bearer', 'Bearer ', 'Basic abc', 'Bearer a b', 'Bearerabc']) assert.equal(bearerToken(h), undefined, String(h));
  });

  it('validates bodies against the declared shapes, listing unknown fields and every error in words', () => {
    const hold = bodyValidator<{ timeoutMs?: number }>(HoldRequest, 'POST /hold');
    assert.deepEqual(hold({ timeoutMs: 5 }), { timeoutMs: 5 });
    assert.throws(() => hold({ timeout: 5 }), (e: unknown) => isImagoError(e, 'INGRESS_BAD_REQUEST') && /POST \/hold: unknown field\(s\) timeout; allowed: timeoutMs/.test(e.message));
    assert.throws(() => hold({ timeoutMs: 0 }), /timeoutMs must be an integer in 1\.\.600000/);
    const mirror = bodyValidator(MirrorRequest, 'POST /mirror');
    assert.throws(() => mirror({ on: 'yes', percent: 300, methods: ['G E T'], x: 1 }),
      /POST \/mirror: unknown field\(s\) x; allowed: on, shadow, percent, methods, writeShadow, writePercent, writeMethods, compare; on must be true or false; percent must be a number in 0\.\.100; methods\.0 must be an HTTP method name/);
    const up = bodyValidator(UpstreamRequest, 'POST /upstreams');
    assert.throws(() => up({ name: 'Bad Name', url: 'ftp://x' }), /name must match .*; url must be http:\/\/host:port/);
  });

  it('parses the command line, reporting every problem at once', () => {
    const o = parseIngressArgs(['--upstream', 'uold=http://127.0.0.1:9001', '--listen', '[::1]:8080', '--health', '0.0.0.0:8082', '--upstream-allow', '10.0.0.0/8,127.0.0.1', '--upstream-allow', '::1', '--hold-timeout-ms', '9000', '--workers', '4'], { IMAGO_INGRESS_TOKEN: 'a-token-of-16-chars!' });
    assert.deepEqual(o.listen, { host: '::1', port: 8080 });
    assert.deepEqual(o.health, { host: '0.0.0.0', port: 8082 });
    assert.deepEqual(o.upstreamAllowlist, ['10.0.0.0/8', '127.0.0.1', '::1']);
    assert.deepEqual([o.limits?.defaultHoldTimeoutMs, o.workers, o.stateFile, o.tokenSource], [9000, 4, undefined, 'IMAGO_INGRESS_TOKEN']);
    assert.throws(() => parseIngressArgs(['--upstream', 'x', '--listen', 'nope', '--workers', 'two'], {}),
      (e: unknown) => isImagoError(e, 'IMAGO_OPTIONS_INVALID') && /--upstream must be .*; no control token.*; --workers must be a whole number, got 'two'; --listen must be host:port, got 'nope'/.test(e.message));
  });
});
