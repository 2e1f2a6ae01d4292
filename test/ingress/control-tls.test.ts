/**
 * The interceptor's control API over HTTPS with client certificates required
 * (real interceptor, certificates of a throwaway CA made here with openssl):
 * the fleet client verifies the interceptor and presents its certificate;
 * a client without a certificate, with the wrong CA, or with a certificate
 * another CA signed is refused in the handshake (INGRESS_TLS_FAILED, naming
 * the link), and plain HTTP on a non-loopback address is refused before
 * anything starts (INGRESS_CONTROL_INSECURE).
 */
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { IngressControlClient } from '../../interceptors/ingress/control-client';
import { startIngress } from '../../interceptors/ingress/ingress';
import { isImagoError } from '../../lib/errors';
import { CertificateAuthority, type CertFiles } from '../../lib/x509';
import { onTeardown } from '../fixtures/servers';
import { ingressFor, startUpstream, TOKEN } from './helpers';

describe('ingress: the control API over HTTPS, client certificates required', function () {
  this.timeout(60_000);
  let dir: string;
  let ca: CertificateAuthority;
  let client: CertFiles;
  let rogue: CertFiles;
  let controlUrl: string;
  const pem = (f: string) => fs.readFileSync(f, 'utf8');

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'imago-control-tls-'));
    onTeardown(async () => fs.rmSync(dir, { recursive: true, force: true }));
    ca = await CertificateAuthority.create(path.join(dir, 'ca'), 'control-ca');
    const server = await ca.issue('interceptor', { usage: 'server', names: ['127.0.0.1', 'localhost'] });
    client = await ca.issue('imago-worker', { usage: 'client' });
    rogue = await (await CertificateAuthority.create(path.join(dir, 'rogue'), 'rogue-ca')).issue('intruder', { usage: 'client' });
    const up = await startUpstream('uold');
    const { ingress } = await ingressFor(up, { controlTls: { certFile: server.cert, keyFile: server.key, clientCaFile: ca.certFile } });
    controlUrl = ingress.controlUrl;
  });

  it('serves https:// only; the fleet client with the CA and its certificate is answered', async () => {
    assert.match(controlUrl, /^https:\/\/127\.0\.0\.1:\d+$/);
    const c = new IngressControlClient(controlUrl, TOKEN, 5_000, { ca: pem(ca.certFile), cert: pem(client.cert), key: pem(client.key) });
    const st = await c.status();
    assert.equal(st.target, 'uold');
  });

  it('refuses a client that presents no certificate, naming the link and the setting', async () => {
    const c = new IngressControlClient(controlUrl, TOKEN, 5_000, { ca: pem(ca.certFile) });
    await assert.rejects(c.status(), (e) => {
      assert.ok(isImagoError(e, 'INGRESS_TLS_FAILED'), String(e));
      assert.match(e.message, /control API of the interceptor at https:\/\/127\.0\.0\.1:\d+: it requires a client certificate, and this client presents none \(tls\.certRef, tls\.keyRef\)/);
      return true;
    });
  });

  it("refuses a client certificate another CA signed, and a client that does not trust the interceptor's CA", async () => {
    const intruder = new IngressControlClient(controlUrl, TOKEN, 5_000, { ca: pem(ca.certFile), cert: pem(rogue.cert), key: pem(rogue.key) });
    await assert.rejects(intruder.status(), (e) => isImagoError(e, 'INGRESS_TLS_FAILED') && /refused this client's certificate/.test(e.message));
    const noCa = new IngressControlClient(controlUrl, TOKEN, 5_000, { cert: pem(client.cert), key: pem(client.key) });
    await assert.rejects(noCa.status(), (e) => isImagoError(e, 'INGRESS_TLS_FAILED') && /its certificate does not verify/.test(e.message));
  });

  it('refuses plain HTTP control on an address other hosts can reach, before anything starts', async () => {
    const up = await startUpstream('uold2');
    const lines: string[] = [];
    await assert.rejects(startIngress({ upstream: { name: up.name, url: up.url }, token: TOKEN, control: { host: '0.0.0.0', port: 0 }, log: (l) => lines.push(l) }), (e) => {
      assert.ok(isImagoError(e, 'INGRESS_CONTROL_INSECURE'), String(e));
      assert.match(e.message, /control API on 0\.0\.0\.0:0 is not a loopback address, and no certificate was given/);
      return true;
    });
    assert.deepEqual(lines, [], 'nothing started, nothing logged');
  });
});
