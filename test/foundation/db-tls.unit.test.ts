/**
 * The pure parts of the database links' TLS (lib/db-tls.ts) and of the
 * sample's URL form (examples/auction/common/db.ts): the plan's references
 * resolved into PEM, turned into mysql2's options with verification always
 * on, and the URL parameters an application reads. No server.
 */
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { dbOptionsOf } from '../../examples/auction/common/db';
import { bareUrl, hostPortOf, mysqlOptionsOf, sslOptions, tlsOfUrl, withDbTls, withTlsParams } from '../../lib/db-tls';
import { isImagoError } from '../../lib/errors';

const PEM = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';

describe('database TLS settings (pure parts)', () => {
  let dir: string;
  before(() => { dir = fs.mkdtempSync(path.join(os.tmpdir(), 'imago-db-tls-unit-')); });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('a URL carries its TLS as references, read when a connection opens; a value that is not PEM is refused with its parameter', () => {
    const ca = path.join(dir, 'ca.pem');
    fs.writeFileSync(ca, PEM);
    assert.equal(withDbTls('mysql://u:p@h:3306/d', undefined), 'mysql://u:p@h:3306/d');
    const url = withDbTls('mysql://u:p@h:3306/d', { caRef: `file:${ca}` });
    assert.equal(url, `mysql://u:p@h:3306/d?ssl-mode=VERIFY_IDENTITY&ssl-ca=${encodeURIComponent(`file:${ca}`)}`);
    assert.deepEqual(tlsOfUrl(url), { ca: PEM.trim(), cert: undefined, key: undefined, verifyIdentity: true });
    assert.equal(tlsOfUrl('mysql://u:p@h/d'), undefined);
    assert.equal(tlsOfUrl(withDbTls('mysql://u@h/d', { caRef: `file:${ca}`, verifyIdentity: false }))?.verifyIdentity, false);
    // A bare value is a file path, as MySQL's clients read it.
    assert.equal(tlsOfUrl(withTlsParams('mysql://u@h/d', { ca }, true))?.ca, PEM);
    assert.deepEqual(mysqlOptionsOf(url), { uri: 'mysql://u:p@h:3306/d', ssl: { ca: PEM.trim(), rejectUnauthorized: true, verifyIdentity: true, minVersion: 'TLSv1.2' } });
    assert.equal(bareUrl(url), 'mysql://u:p@h:3306/d');
    const notPem = path.join(dir, 'x.txt');
    fs.writeFileSync(notPem, 'hello');
    assert.throws(() => tlsOfUrl(withDbTls('mysql://u@h/d', { caRef: `file:${notPem}` }), '/uold/db/tls'), (e) => isImagoError(e, 'IMAGO_SECRET_UNRESOLVED') && /\/uold\/db\/tls ssl-ca: .* does not hold PEM text/.test(e.message));
    assert.throws(() => tlsOfUrl('mysql://u@h/d?ssl-mode=PREFERRED'), (e) => isImagoError(e, 'IMAGO_OPTIONS_INVALID') && /expected VERIFY_IDENTITY or VERIFY_CA/.test(e.message));
  });

  it("mysql2's options always verify the server (the CA's signature; the name unless verifyIdentity is false), TLS 1.2 at least", () => {
    assert.equal(sslOptions(undefined), undefined);
    assert.deepEqual(sslOptions({ ca: PEM, verifyIdentity: true }), { ca: PEM, rejectUnauthorized: true, verifyIdentity: true, minVersion: 'TLSv1.2' });
    assert.deepEqual(sslOptions({ cert: 'C', key: 'K', verifyIdentity: false }), { cert: 'C', key: 'K', rejectUnauthorized: true, verifyIdentity: false, minVersion: 'TLSv1.2' });
    assert.deepEqual(hostPortOf('mysql://u:p@db.internal/x'), { host: 'db.internal', port: 3306 });
    assert.deepEqual(hostPortOf('mysql://u:p@[::1]:3307/'), { host: '::1', port: 3307 });
  });

  it("an application's URL carries its TLS as MySQL's clients spell it, and the sample reads it back, refusing unverified modes", () => {
    const ca = path.join(dir, 'ca.pem');
    const url = withTlsParams('mysql://app:pw@127.0.0.1:3306/shop', { ca }, true);
    assert.equal(url, `mysql://app:pw@127.0.0.1:3306/shop?ssl-mode=VERIFY_IDENTITY&ssl-ca=${encodeURIComponent(ca)}`);
    const o = dbOptionsOf(url);
    assert.equal(o.uri, 'mysql://app:pw@127.0.0.1:3306/shop');
    assert.deepEqual(o.ssl, { ca: PEM, cert: undefined, key: undefined, rejectUnauthorized: true, verifyIdentity: true });
    assert.equal(dbOptionsOf(withTlsParams('mysql://a@h/d', { ca }, false)).ssl?.verifyIdentity, false);
    assert.deepEqual(dbOptionsOf('mysql://a@h:1/d'), { uri: 'mysql://a@h:1/d' });
    assert.throws(() => dbOptionsOf('mysql://a@h/d?ssl-mode=REQUIRED'), /ssl-mode=REQUIRED is not supported/);
  });
});
