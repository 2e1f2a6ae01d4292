/**
 * TLS of the database links, on real mariadbd instances that require it
 * (require_secure_transport=ON, certificates of a throwaway CA made here with
 * openssl): the transfer copies and follows Uold's binlog with every
 * connection over TLS (mysql2 and the binlog reader), and each way a link can
 * be wrong is refused with its own code, naming the link:
 * DB_TLS_REQUIRED (no TLS in the plan for a server that requires it),
 * DB_TLS_UNVERIFIED (a certificate another CA signed), DB_TLS_FAILED (TLS asked of a server without it); the
 * preflight reports the first two in its Uold check.
 */
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { checkUoldServer } from '../../activities/preflight/uold';
import { ReportBuilder } from '../../activities/preflight/report';
import { openDb, withDbTls, type DbEndpoint, type DbTlsRefs } from '../../lib/db-tls';
import { isImagoError } from '../../lib/errors';
import type { MariaDbInstance } from '../../lib/mariadb';
import { CertificateAuthority } from '../../lib/x509';
import { identityConversion } from '../../transfer/conversion';
import { flushTo, readUoldPosition } from '../../transfer/flush';
import { Transfer } from '../../transfer/transfer';
import { verify } from '../../transfer/verify';
import { mariadbFixture, onTeardown } from '../fixtures/servers';
import { ITEMS_V1, readerServerId } from './setup';

describe('transfer: every database link over TLS, servers that require it', function () {
  this.timeout(120_000);
  let dir: string;
  let ca: CertificateAuthority;
  let other: CertificateAuthority;
  let uold: MariaDbInstance;
  let unew: MariaDbInstance;
  let plain: MariaDbInstance;
  let tls: DbTlsRefs;

  const uoldDb = (t?: DbTlsRefs): DbEndpoint => ({ url: withDbTls(uold.urlFor('repl', 'pw'), t), link: "Uold's database (replication account, uold.db)", tlsPath: '/uold/db/tls' });

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'imago-db-tls-'));
    onTeardown(async () => fs.rmSync(dir, { recursive: true, force: true }));
    ca = await CertificateAuthority.create(path.join(dir, 'ca'), 'db-ca');
    other = await CertificateAuthority.create(path.join(dir, 'other'), 'other-ca');
    const serverTls = async (name: string) => {
      // mysql2 checks the certificate of an IP-address URL against the name 'localhost' (it sends no SNI for an IP): both are named.
      const c = await ca.issue(name, { usage: 'server', names: ['127.0.0.1', 'localhost'] });
      return { caFile: ca.certFile, certFile: c.cert, keyFile: c.key, requireSecureTransport: true };
    };
    [uold, unew, plain] = await Promise.all([
      serverTls('uold-db').then((t) => mariadbFixture({ tls: t })),
      serverTls('unew-db').then((t) => mariadbFixture({ tls: t })),
      mariadbFixture(),
    ]);
    await uold.createDatabase('shop');
    await unew.createDatabase('shop2');
    const co = await uold.connect('shop');
    await co.query(ITEMS_V1);
    await co.query('INSERT INTO items (id, name, qty, price) VALUES ?', [Array.from({ length: 2_000 }, (_, i) => [i + 1, `item ${i + 1}`, i % 17, 1.5])]);
    await co.end();
    const cn = await unew.connect('shop2');
    await cn.query(ITEMS_V1);
    await cn.end();
    await uold.createUser('repl', 'pw', ['REPLICATION SLAVE, REPLICATION CLIENT ON *.*', 'SELECT ON shop.*']);
    await unew.createUser('admin', 'pw', ['ALL PRIVILEGES ON shop2.*']);
    await plain.createUser('repl', 'pw', ['SELECT ON *.*']);
    // As the plan gives it: references, resolved when a connection opens.
    tls = { caRef: `file:${ca.certFile}` };
  });

  it('copies and follows the binlog with every connection over TLS; flush and verify agree (0 differences)', async () => {
    // The TLS travels in the URLs (ssl-mode, ssl-ca): the transfer, its binlog reader, flush and verify all take it from there.
    const source = { url: withDbTls(uold.urlFor('repl', 'pw'), tls), database: 'shop' };
    const target = { url: withDbTls(unew.urlFor('admin', 'pw'), tls), database: 'shop2' };
    assert.match(source.url, /\?ssl-mode=VERIFY_IDENTITY&ssl-ca=file%3A/);
    const ident = identityConversion([{ table: 'items', key: ['id'] }]);
    const t = new Transfer({ source, target, conversion: ident, serverId: readerServerId(), chunkSize: 500 });
    const ac = new AbortController();
    const running = t.run(ac.signal);
    try {
      const deadline = Date.now() + 60_000;
      while (t.progress().phase !== 'following') {
        assert.ok(Date.now() < deadline, `not following: ${JSON.stringify(t.progress())}`);
        await new Promise((r) => setTimeout(r, 50));
      }
      // Changes after the copy reach Unew only through the binlog reader, itself over TLS.
      const w = await uold.connect('shop');
      await w.query("INSERT INTO items (id, name, qty, price) VALUES (5001, 'after copy', 1, 2.5)");
      await w.query('DELETE FROM items WHERE id <= 10');
      await w.end();
      const pos = await readUoldPosition(source.url);
      await flushTo(target.url, 'shop2', pos, 20_000);
      const p = t.progress();
      assert.equal(p.rowsCopied, 2_000);
      assert.ok(p.eventsApplied >= 11, `events applied from the stream: ${p.eventsApplied}`);
      const report = await verify({ source, target, conversion: ident, serverId: readerServerId() });
      assert.deepEqual([report.missing.length, report.extra.length, report.different.length, report.rowsChecked], [0, 0, 0, 1_991]);
      // The sessions really are encrypted: the server says so for the replication account's.
      const c = await openDb(uoldDb(tls));
      const [[row]] = await c.query("SHOW SESSION STATUS LIKE 'Ssl_version'") as [Array<{ Value: string }>, unknown];
      await c.end();
      assert.match(row.Value, /^TLSv1\.[23]$/);
    } finally { ac.abort(); await running; }
  });

  it('a plan without TLS against a server that requires it: DB_TLS_REQUIRED, naming the link and the plan key', async () => {
    await assert.rejects(openDb(uoldDb()), (e) => {
      assert.ok(isImagoError(e, 'DB_TLS_REQUIRED'), String(e));
      assert.match(e.message, /Uold's database \(replication account, uold\.db\) at mysql:\/\/repl:\*+@127\.0\.0\.1:\d+/);
      assert.match(e.message, /set \/uold\/db\/tls \(caRef/);
      assert.match(e.message, /CN=uold-db/);
      assert.doesNotMatch(e.message, /:pw@/);
      return true;
    });
    const r = new ReportBuilder();
    assert.equal(await checkUoldServer(r, uold.urlFor('repl', 'pw'), 'shop'), undefined);
    const check = r.report().checks.find((c) => c.group === 'uold' && c.name === 'reachable');
    assert.deepEqual([check?.status, check?.code], ['fail', 'DB_TLS_REQUIRED'], JSON.stringify(check));
  });

  it("a server certificate another CA signed: DB_TLS_UNVERIFIED, with or without verifyIdentity", async () => {
    await assert.rejects(openDb(uoldDb({ caRef: `file:${other.certFile}` })), (e) => {
      assert.ok(isImagoError(e, 'DB_TLS_UNVERIFIED'), String(e));
      assert.match(e.message, /does not verify against the CA of caRef/);
      return true;
    });
    const r = new ReportBuilder();
    await checkUoldServer(r, withDbTls(uold.urlFor('repl', 'pw'), { caRef: `file:${other.certFile}` }), 'shop');
    assert.equal(r.report().checks.find((c) => c.name === 'reachable')?.code, 'DB_TLS_UNVERIFIED');
    // verifyIdentity: false checks the CA's signature only: the right CA connects, the wrong one still does not.
    await (await openDb(uoldDb({ caRef: `file:${ca.certFile}`, verifyIdentity: false }))).end();
    await assert.rejects(openDb(uoldDb({ caRef: `file:${other.certFile}`, verifyIdentity: false })), (e) => isImagoError(e, 'DB_TLS_UNVERIFIED'));
  });

  it('TLS asked of a server that has none: DB_TLS_FAILED', async () => {
    await assert.rejects(openDb({ url: withDbTls(plain.urlFor('repl', 'pw'), tls), link: "Unew's database (admin account)", tlsPath: '/unew/tls' }), (e) => {
      assert.ok(isImagoError(e, 'DB_TLS_FAILED'), String(e));
      assert.match(e.message, /^DB_TLS_FAILED: .*Unew's database \(admin account\).*does not offer TLS/);
      return true;
    });
  });
});
