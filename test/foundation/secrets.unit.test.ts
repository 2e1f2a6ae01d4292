import { strict as assert } from 'node:assert';
import { redactGrant, redactUrl } from '../../lib/secrets';

describe('secrets never leave the worker', () => {
  it('a grant statement loses its password hash, whatever form SHOW GRANTS prints it in', () => {
    const cases: Array<[string, string]> = [
      ["GRANT REPLICATION SLAVE ON *.* TO `imago_repl`@`127.0.0.1` IDENTIFIED BY PASSWORD '*F1DE92BF5C37541115D45ECD8AA172468CAB84B6'", 'GRANT REPLICATION SLAVE ON *.* TO `imago_repl`@`127.0.0.1`'],
      ["GRANT USAGE ON *.* TO `u`@`%` IDENTIFIED VIA mysql_native_password USING '*AAAA' OR unix_socket", 'GRANT USAGE ON *.* TO `u`@`%`'],
      ["GRANT USAGE ON *.* TO 'u'@'h' IDENTIFIED VIA ed25519 USING PASSWORD('secret')", "GRANT USAGE ON *.* TO 'u'@'h'"],
      ['GRANT SELECT ON `auction`.* TO `imago_repl`@`127.0.0.1`', 'GRANT SELECT ON `auction`.* TO `imago_repl`@`127.0.0.1`'],
    ];
    for (const [grant, want] of cases) {
      const got = redactGrant(grant);
      assert.equal(got, want);
      assert.doesNotMatch(got, /PASSWORD|USING|\*[0-9A-F]{40}/);
    }
  });

  it('a database URL loses its password', () => {
    assert.equal(redactUrl('mysql://imago_repl:s3cr3t@10.0.0.5:3306/auction'), 'mysql://imago_repl:***@10.0.0.5:3306/auction');
  });
});
