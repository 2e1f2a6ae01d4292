/**
 * How the control API is served and reached, as options (no server): plain
 * HTTP only on loopback, refused elsewhere unless allowed (with a warning),
 * HTTPS given a certificate; the command line's TLS flags and the plan's
 * uold.ingress[].tls checked once, every error at once.
 */
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { controlTransport, isLoopbackHost } from '../../interceptors/ingress/control';
import { IngressControlClient, controlTlsError } from '../../interceptors/ingress/control-client';
import { parseIngressArgs } from '../../interceptors/ingress/main';
import { validateIngressOptions } from '../../interceptors/ingress/options';
import { isImagoError } from '../../lib/errors';
import { checkPlan, loadPlanFile } from '../../plan/load';

const base = { upstream: { name: 'uold', url: 'http://127.0.0.1:9001' }, token: 'a-token-of-16-chars!' };
const EXAMPLE = path.join(__dirname, '..', '..', 'examples', 'auction', 'plan.yaml');

describe('control API transport (pure parts)', () => {
  it('knows loopback addresses: 127/8, ::1, localhost, v4-mapped; nothing else', () => {
    for (const h of ['127.0.0.1', '127.9.8.7', '::1', '[::1]', 'localhost', '::ffff:127.0.0.1']) assert.equal(isLoopbackHost(h), true, h);
    for (const h of ['0.0.0.0', '::', '10.0.0.5', 'example.com', '128.0.0.1', '::ffff:10.0.0.1']) assert.equal(isLoopbackHost(h), false, h);
  });

  it('plain HTTP on loopback; refused elsewhere (INGRESS_CONTROL_INSECURE) unless allowed, then warned', () => {
    const lines: string[] = [];
    assert.equal(controlTransport(validateIngressOptions({ ...base }), (l) => lines.push(l)), undefined);
    assert.throws(() => controlTransport(validateIngressOptions({ ...base, control: { host: '10.0.0.5', port: 8081 } }), (l) => lines.push(l)),
      (e) => isImagoError(e, 'INGRESS_CONTROL_INSECURE') && /control API on 10\.0\.0\.5:8081 is not a loopback address/.test(e.message));
    assert.equal(lines.length, 0);
    assert.equal(controlTransport(validateIngressOptions({ ...base, control: { host: '0.0.0.0', port: 8081 }, allowPlainControl: true }), (l) => lines.push(l)), undefined);
    assert.equal(lines.length, 1);
    assert.match(lines[0], /^WARNING: control API on 0\.0\.0\.0:8081 in plain HTTP, as allowed by --control-allow-plain-http/);
  });

  it('HTTPS given a certificate, on any address; unreadable files are named, all at once', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'imago-ctl-unit-'));
    try {
      for (const f of ['c.pem', 'k.pem']) fs.writeFileSync(path.join(dir, f), `${f}\n`);
      const t = controlTransport(validateIngressOptions({ ...base, control: { host: '0.0.0.0', port: 1 }, controlTls: { certFile: path.join(dir, 'c.pem'), keyFile: path.join(dir, 'k.pem') } }), () => undefined);
      assert.deepEqual(t, { cert: 'c.pem\n', key: 'k.pem\n' });
      assert.throws(() => controlTransport(validateIngressOptions({ ...base, controlTls: { certFile: path.join(dir, 'no.pem'), keyFile: path.join(dir, 'k.pem'), clientCaFile: path.join(dir, 'none.pem') } }), () => undefined),
        (e) => isImagoError(e, 'IMAGO_OPTIONS_INVALID') && /controlTls\.certFile .*no\.pem/.test(e.message) && /controlTls\.clientCaFile .*none\.pem/.test(e.message));
    } finally { fs.rmSync(dir, { recursive: true, force: true }); }
  });

  it('the command line: --control-cert with --control-key; --control-client-ca needs them; not with --control-allow-plain-http', () => {
    const env = { IMAGO_INGRESS_TOKEN: 'a-token-of-16-chars!' };
    const o = parseIngressArgs(['--upstream', 'uold=http://127.0.0.1:9001', '--control', '0.0.0.0:8443', '--control-cert', 'c.pem', '--control-key', 'k.pem', '--control-client-ca', 'ca.pem'], env);
    assert.deepEqual(o.controlTls, { certFile: 'c.pem', keyFile: 'k.pem', clientCaFile: 'ca.pem' });
    assert.throws(() => parseIngressArgs(['--upstream', 'uold=http://127.0.0.1:9001', '--control-cert', 'c.pem', '--control-client-ca', 'ca.pem', '--control-allow-plain-http'], env),
      (e) => isImagoError(e, 'IMAGO_OPTIONS_INVALID') && /--control-cert and --control-key: give both/.test(e.message) && /--control-allow-plain-http with --control-cert/.test(e.message));
    assert.equal(parseIngressArgs(['--upstream', 'uold=http://127.0.0.1:9001', '--control', '0.0.0.0:8081', '--control-allow-plain-http'], env).allowPlainControl, true);
  });

  it('the client: TLS settings for an http:// URL are refused; handshake failures are told apart', () => {
    assert.throws(() => new IngressControlClient('http://10.0.0.5:8081', 'a-token-of-16-chars!', 1_000, { ca: 'x' }), (e) => isImagoError(e, 'IMAGO_OPTIONS_INVALID') && /use https:\/\//.test(e.message));
    const err = (code: string, message: string, extra = {}) => Object.assign(new Error(message), { code, ...extra });
    const why = (e: Error, cert: boolean) => controlTlsError('L', e, cert)?.message ?? 'none';
    assert.match(why(err('UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'unable to verify the first certificate'), true), /its certificate does not verify/);
    assert.match(why(err('ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED', 'alert certificate required'), false), /requires a client certificate, and this client presents none/);
    assert.match(why(err('ERR_SSL_TLSV1_ALERT_UNKNOWN_CA', 'alert unknown ca'), true), /refused this client's certificate/);
    assert.match(why(err('ECONNRESET', 'socket hang up', { closedAfterHandshake: true }), true), /refused this client's certificate/);
    assert.match(why(err('ERR_SSL_WRONG_VERSION_NUMBER', 'wrong version number'), false), /does not speak TLS there/);
    assert.equal(controlTlsError('L', err('ECONNREFUSED', 'connect ECONNREFUSED'), false), undefined, 'a host that is down is not a TLS failure');
  });

  it("the plan: uold.ingress[].tls only with an https:// controlUrl, a client certificate with its key", () => {
    const p: any = structuredClone(loadPlanFile(EXAMPLE));
    const dir = p.planDir;
    delete p.planDir;
    p.unew.schemaFile = 'schema/v2.sql';
    p.unew.conversion = 'conversion.ts';
    p.uold.ingress[0] = { ...p.uold.ingress[0], controlUrl: 'http://10.0.0.5:8081', tls: { caRef: 'file:/etc/imago/ca.pem', certRef: 'env:CERT' } };
    const { errors } = checkPlan(p, dir);
    assert.ok(errors.some((e) => /\/uold\/ingress\/0\/tls: TLS settings for an http:\/\/ controlUrl; use https:\/\//.test(e)), errors.join('\n'));
    assert.ok(errors.some((e) => /\/uold\/ingress\/0\/tls.*keyRef/.test(e)), errors.join('\n'));
    p.uold.ingress[0] = { ...p.uold.ingress[0], controlUrl: 'https://10.0.0.5:8443', tls: { caRef: 'file:/etc/imago/ca.pem', certRef: 'env:CERT', keyRef: 'env:KEY' } };
    assert.deepEqual(checkPlan(p, dir).errors, []);
  });
});
