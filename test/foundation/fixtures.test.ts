import { strict as assert } from 'node:assert';
import { mariadbFixture, motoFixture, temporalFixture } from '../fixtures/servers';

describe('foundation: real server fixtures', () => {
  it('starts a Temporal dev server that knows the Imago search attributes', async () => {
    const { client, namespace } = await temporalFixture();
    const res = await client.connection.operatorService.listSearchAttributes({ namespace });
    assert.ok(res.customAttributes?.ImagoPhase !== undefined, 'ImagoPhase is registered');
    assert.ok(res.customAttributes?.ImagoSystem !== undefined, 'ImagoSystem is registered');
  });

  it('starts an independent MariaDB instance with a ROW binlog and GTIDs', async () => {
    const a = await mariadbFixture();
    const b = await mariadbFixture();
    assert.notEqual(a.port, b.port);
    assert.notEqual(a.serverId, b.serverId);
    const [row] = await a.query('SELECT @@binlog_format AS f, @@binlog_row_image AS i, @@log_bin AS l') as any[];
    assert.deepEqual({ ...row }, { f: 'ROW', i: 'FULL', l: 1 });
    await a.createDatabase('shop');
    await a.query('CREATE TABLE shop.t (id INT PRIMARY KEY)');
    await a.query('INSERT INTO shop.t VALUES (1)');
    const [pos] = await a.query('SELECT @@gtid_binlog_pos AS p') as any[];
    assert.match(pos.p, /^0-\d+-\d+$/);
    // b shares nothing with a
    const dbs = (await b.query('SHOW DATABASES') as any[]).map((r) => r.Database);
    assert.ok(!dbs.includes('shop'));
  });

  it('creates users with exactly the grants asked for', async () => {
    const db = await mariadbFixture();
    await db.createDatabase('shop');
    await db.createUser('repl', 'pw', ['REPLICATION SLAVE, REPLICATION CLIENT ON *.*', 'SELECT ON shop.*']);
    const mysql = await import('mysql2/promise');
    const c = await mysql.createConnection(db.urlFor('repl', 'pw', 'shop'));
    try {
      await assert.rejects(c.query('CREATE TABLE x (id INT)'), /command denied/);
    } finally { await c.end(); }
  });

  it('starts moto_server and resets it', async function () {
    const moto = await motoFixture();
    const { EC2Client, DescribeVpcsCommand } = await import('@aws-sdk/client-ec2');
    const ec2 = new EC2Client({ endpoint: moto.endpoint, region: 'us-east-1', credentials: { accessKeyId: 'test', secretAccessKey: 'test' } });
    const vpcs = await ec2.send(new DescribeVpcsCommand({}));
    assert.ok((vpcs.Vpcs ?? []).length >= 1, 'moto has a default VPC');
    await moto.reset();
  });
});
