import { strict as assert } from 'node:assert';
import { isImagoError, type ErrorCode } from '../../lib/errors';
import { identityConversion, type ConversionModule } from '../../transfer/conversion';
import { Transfer } from '../../transfer/transfer';
import { mariadbFixture } from '../fixtures/servers';
import { ITEMS_V1, readerServerId, seedItems, startPair, type Pair } from './setup';

const tableConv = (convert: ConversionModule['tables'][0]['convert']): ConversionModule =>
  ({ name: 'bad', tables: [{ source: 'items', targets: [{ table: 'items', key: ['id'] }], convert }] });

async function expectRefused(p: Pair, conversion: ConversionModule, code: ErrorCode, detail: RegExp, sourceUrl = p.sourceUrl): Promise<void> {
  const t = new Transfer({ source: { url: sourceUrl, database: 'shop' }, target: { url: p.targetUrl, database: 'shop2' }, conversion, serverId: readerServerId() });
  await assert.rejects(t.run(new AbortController().signal), (e: unknown) => {
    assert.ok(isImagoError(e, code), `expected ${code}, got ${(e as Error).message}`);
    assert.match((e as Error).message, detail);
    return true;
  });
  // Refused before anything was written: no transfer state, no rows in Unew.
  const meta = await p.unew.query("SELECT COUNT(*) AS n FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'shop2' AND TABLE_NAME LIKE '\\_imago%'") as any[];
  assert.equal(Number(meta[0].n), 0);
  const rows = await p.unew.query('SELECT COUNT(*) AS n FROM shop2.items') as any[];
  assert.equal(Number(rows[0].n), 0);
}

describe('transfer: bad input is refused at preflight, naming table, key and what to do', () => {
  let p: Pair;
  before(async () => {
    p = await startPair([ITEMS_V1, 'CREATE TABLE nokey (a INT, b INT)'], [ITEMS_V1]);
    await seedItems(p.rootOld, 50);
  });
  const ident = identityConversion([{ table: 'items', key: ['id'] }]);

  it('rejects invalid options, every error together, unknown keys included', () => {
    assert.throws(() => new Transfer({ source: { url: 'http://x', database: 'a b' }, target: { url: p.targetUrl, database: 'shop2' }, conversion: ident, serverId: 0, chunkSize: -1, bogus: 1 } as never),
      (e: unknown) => isImagoError(e, 'IMAGO_OPTIONS_INVALID') && /source\/url/.test((e as Error).message) && /source\/database/.test((e as Error).message) && /serverId/.test((e as Error).message) && /chunkSize/.test((e as Error).message) && /'bogus'/.test((e as Error).message));
    const t = new Transfer({ source: { url: p.sourceUrl, database: 'shop' }, target: { url: p.targetUrl, database: 'shop2' }, conversion: ident, serverId: 1 });
    assert.throws(() => t.setThrottle({ maxLagMs: 0 }), (e: unknown) => isImagoError(e, 'IMAGO_OPTIONS_INVALID'));
    assert.throws(() => t.setChunkSize(0), (e: unknown) => isImagoError(e, 'IMAGO_OPTIONS_INVALID'));
  });

  it('a table without a primary key', async () => {
    const conv = { ...ident, tables: [...ident.tables, { source: 'nokey', targets: [{ table: 'items', key: ['id'] }], convert: () => ({}) }] };
    await expectRefused(p, conv, 'TRANSFER_NO_PRIMARY_KEY', /shop\.nokey/);
  });

  it('a table neither converted nor ignored', async () => {
    await expectRefused(p, ident, 'TRANSFER_CONVERSION_INCOMPLETE', /nokey/);
  });

  it('a conversion that throws (table and key named)', async () => {
    await expectRefused(p, { ...tableConv((r) => { if (r.id === 7) throw new Error('boom'); return { items: [r] }; }), ignoreTables: ['nokey'] }, 'TRANSFER_CONVERSION_FAILED', /table 'items', key \[7\].*boom/);
  });

  it('a conversion that returns rows without their key', async () => {
    await expectRefused(p, { ...tableConv((r) => ({ items: [{ ...r, id: undefined }] })), ignoreTables: ['nokey'] }, 'TRANSFER_CONVERSION_FAILED', /key \[1\].*lacks its key column\(s\) id/);
  });

  it("conversion output that does not fit Unew's schema: unknown column, then a value Unew refuses", async () => {
    await expectRefused(p, { ...tableConv((r) => ({ items: [{ ...r, colour: 'red' }] })), ignoreTables: ['nokey'] }, 'TRANSFER_SCHEMA_MISMATCH', /colour/);
    await expectRefused(p, { ...tableConv((r) => ({ items: [{ ...r, name: 'x'.repeat(100) }] })), ignoreTables: ['nokey'] }, 'TRANSFER_SCHEMA_MISMATCH', /key \[1\].*(too long|Data too long)/i);
  });

  it('missing replication privileges', async () => {
    await p.uold.createUser('weak', 'pw', ['SELECT ON shop.*']);
    await expectRefused(p, { ...ident, ignoreTables: ['nokey'] }, 'IMAGO_PREFLIGHT_PRIVILEGES', /REPLICATION SLAVE.*REPLICATION CLIENT/, p.uold.urlFor('weak', 'pw'));
  });

  it('a binlog not in ROW format', async () => {
    const mixed = await mariadbFixture({ extraArgs: ['--binlog-format=MIXED'] });
    await mixed.createDatabase('shop');
    await mixed.query(`CREATE TABLE shop.${ITEMS_V1.slice('CREATE TABLE '.length)}`);
    await mixed.createUser('repl', 'pw', ['REPLICATION SLAVE, REPLICATION CLIENT ON *.*', 'SELECT ON shop.*']);
    await expectRefused(p, ident, 'IMAGO_PREFLIGHT_BINLOG', /binlog_format is MIXED/, mixed.urlFor('repl', 'pw'));
  });
});
