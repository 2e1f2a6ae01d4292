/** The rules Imago holds Uold's MariaDB to (lib/uold-requirements.ts): pure, on SHOW GLOBAL VARIABLES and SHOW GRANTS text. */
import { strict as assert } from 'node:assert';
import { binlogChecks, grantChecks, parseGrant, quoteAccount, throwOnFailure } from '../../lib/uold-requirements';
import { isImagoError } from '../../lib/errors';

const GOOD = { version: '10.11.19-MariaDB-0+deb12u1', log_bin: 'ON', binlog_format: 'ROW', binlog_row_image: 'FULL', server_id: '1', binlog_expire_logs_seconds: '0' };
const by = (checks: ReturnType<typeof binlogChecks>, name: string) => checks.find((c) => c.name === name)!;

describe('uold requirements: the binary log', () => {
  it('a MariaDB with ROW, FULL images, a server id: every check ok', () => {
    const checks = binlogChecks(GOOD);
    assert.deepEqual(checks.map((c) => [c.name, c.status]), [['server', 'ok'], ['log_bin', 'ok'], ['binlog_format', 'ok'], ['binlog_row_image', 'ok'], ['server_id', 'ok'], ['binlog retention', 'ok']]);
  });

  it('each wrong setting is its own failure, with its fix; all at once', () => {
    const checks = binlogChecks({ ...GOOD, log_bin: 'OFF', binlog_format: 'STATEMENT', binlog_row_image: 'MINIMAL', server_id: '0' });
    const failed = checks.filter((c) => c.status === 'fail');
    assert.deepEqual(failed.map((c) => c.name), ['log_bin', 'binlog_format', 'binlog_row_image', 'server_id']);
    assert.ok(failed.every((c) => c.code === 'IMAGO_PREFLIGHT_BINLOG' && c.fix));
    assert.match(by(checks, 'log_bin').fix!, /log_bin {10}= mariadb-bin {6}# restart needed/);
    assert.match(by(checks, 'binlog_row_image').fix!, /^SET GLOBAL binlog_row_image = 'FULL';.*reconnect the application/);
    assert.match(by(checks, 'binlog_format').detail, /binlog_format is STATEMENT, not ROW/);
  });

  it('MySQL is refused (Imago follows MariaDB GTIDs); a short binlog retention is a warning', () => {
    assert.equal(by(binlogChecks({ ...GOOD, version: '8.0.36' }), 'server').status, 'fail');
    const short = by(binlogChecks({ ...GOOD, binlog_expire_logs_seconds: '3600' }), 'binlog retention');
    assert.equal(short.status, 'warn');
    assert.match(short.detail, /expire after 3600 s/);
    assert.equal(by(binlogChecks({ ...GOOD, binlog_expire_logs_seconds: undefined as never, expire_logs_days: '7' }), 'binlog retention').detail, '168 h');
  });
});

describe('uold requirements: the replication user', () => {
  const ACCOUNT = 'imago_repl@%';
  const status = (grants: string[]) => grantChecks(grants, 'shop', ACCOUNT).map((c) => `${c.name}:${c.status}`);

  it('parses privileges (column lists dropped), the target, GRANT OPTION; skips role grants', () => {
    assert.deepEqual(parseGrant("GRANT SELECT (a, b), INSERT ON `shop`.`t` TO `u`@`%` WITH GRANT OPTION"), { privileges: ['SELECT', 'INSERT', 'GRANT OPTION'], on: 'shop.t' });
    assert.deepEqual(parseGrant('GRANT REPLICATION SLAVE, BINLOG MONITOR ON *.* TO `imago_repl`@`%`'), { privileges: ['REPLICATION SLAVE', 'BINLOG MONITOR'], on: '*.*' });
    assert.equal(parseGrant('GRANT `reader_role` TO `u`@`%`'), undefined);
    assert.equal(quoteAccount("o'brien@10.0.0.%"), "'o''brien'@'10.0.0.%'");
  });

  it('REPLICATION SLAVE + BINLOG MONITOR (how MariaDB 10.5+ shows REPLICATION CLIENT) + SELECT on the database: ok', () => {
    assert.deepEqual(status(['GRANT USAGE ON *.* TO `imago_repl`@`%`', 'GRANT REPLICATION SLAVE, BINLOG MONITOR ON *.* TO `imago_repl`@`%`', 'GRANT SELECT ON `shop`.* TO `imago_repl`@`%`']), ['replication privileges:ok']);
    assert.deepEqual(status(['GRANT SELECT, REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO `imago_repl`@`%`']), ['replication privileges:ok'], 'a global SELECT covers the database');
  });

  it('what is missing is named, with the GRANT statements for this account', () => {
    const [c] = grantChecks(['GRANT SELECT ON `other`.* TO `imago_repl`@`%`'], 'shop', ACCOUNT);
    assert.equal(c.code, 'IMAGO_PREFLIGHT_PRIVILEGES');
    assert.match(c.detail, /^'imago_repl'@'%' lacks REPLICATION SLAVE, REPLICATION CLIENT ON \*\.\*; SELECT ON shop\.\*/);
    assert.equal(c.fix, "GRANT REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO 'imago_repl'@'%';\nGRANT SELECT ON `shop`.* TO 'imago_repl'@'%';");
  });

  it('table-level SELECT does not count (tables added later would be unreadable); more than needed is a warning with the REVOKE', () => {
    assert.deepEqual(status(['GRANT REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO `imago_repl`@`%`', 'GRANT SELECT ON `shop`.`items` TO `imago_repl`@`%`']), ['replication privileges:fail']);
    const checks = grantChecks(['GRANT REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO `imago_repl`@`%`', 'GRANT SELECT, INSERT, DELETE ON `shop`.* TO `imago_repl`@`%`'], 'shop', ACCOUNT);
    assert.deepEqual(checks.map((c) => `${c.name}:${c.status}`), ['replication privileges:ok', 'least privilege:warn']);
    assert.equal(checks[1].fix, "REVOKE INSERT, DELETE ON `shop`.* FROM 'imago_repl'@'%';");
  });

  it('throwOnFailure: the first failure\'s code, every failure\'s detail; nothing on warnings', () => {
    assert.throws(() => throwOnFailure([...binlogChecks({ ...GOOD, binlog_format: 'MIXED' }), ...grantChecks([], 'shop', ACCOUNT)]),
      (e: unknown) => isImagoError(e, 'IMAGO_PREFLIGHT_BINLOG') && /binlog_format is MIXED.*; 'imago_repl'@'%' lacks/.test(e.message));
    throwOnFailure(binlogChecks({ ...GOOD, binlog_expire_logs_seconds: '60' }));
  });
});
