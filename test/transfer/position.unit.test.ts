import { strict as assert } from 'node:assert';
import { binlogFileIndex, packCoordinate, unpackCoordinate } from '../../transfer/coordinate';
import { GtidPosition } from '../../transfer/position';

describe('GtidPosition (MariaDB GTID positions)', () => {
  it('parses, orders domains and prints back', () => {
    assert.equal(GtidPosition.parse('1-2-30, 0-1-5').toString(), '0-1-5,1-2-30');
    assert.equal(GtidPosition.parse('').toString(), '');
    assert.equal(GtidPosition.parse(null).toString(), '');
  });

  it('advance never moves a domain backwards and keeps the newer server id', () => {
    const p = GtidPosition.parse('0-1-10');
    p.advance('0-2-9');
    assert.equal(p.toString(), '0-1-10');
    p.advance('0-2-11');
    assert.equal(p.toString(), '0-2-11');
    p.advance('3-7-1');
    assert.equal(p.toString(), '0-2-11,3-7-1');
  });

  it('covers: every domain of the other at or below, missing domains not covered', () => {
    const p = GtidPosition.parse('0-1-10,1-1-4');
    assert.ok(p.covers('0-1-10'));
    assert.ok(p.covers('0-1-3,1-1-4'));
    assert.ok(!p.covers('0-1-11'));
    assert.ok(!p.covers('2-1-1'));
    assert.ok(p.covers(''));
    assert.ok(!GtidPosition.parse('').covers('0-1-1'));
  });

  it('compares sequence numbers beyond 2^53 exactly', () => {
    const big = '0-1-18446744073709551615';
    const p = GtidPosition.parse('0-1-18446744073709551614');
    assert.ok(!p.covers(big));
    p.advance(big);
    assert.ok(p.covers(big));
    assert.equal(p.toString(), big);
    assert.equal(GtidPosition.parse('0-1-9007199254740993').behind('0-1-9007199254740995'), 2);
  });

  it('behind counts uncovered transactions summed over domains', () => {
    assert.equal(GtidPosition.parse('0-1-10,1-1-5').behind('0-1-12,1-1-5,2-1-3'), 5);
    assert.equal(GtidPosition.parse('0-1-10').behind('0-1-3'), 0);
  });

  it('clone is independent', () => {
    const a = GtidPosition.parse('0-1-1');
    const b = a.clone();
    b.advance('0-1-2');
    assert.equal(a.toString(), '0-1-1');
    assert.equal(b.toString(), '0-1-2');
  });

  it('rejects what is not a GTID', () => {
    assert.throws(() => GtidPosition.parse('abc'), /not a MariaDB GTID/);
    assert.throws(() => GtidPosition.parse('0-1'), /not a MariaDB GTID/);
  });
});

describe('binlog coordinates', () => {
  it('orders by file index, then offset, in one number', () => {
    const a = packCoordinate({ file: 'binlog.000001', pos: 4_000_000 });
    const b = packCoordinate({ file: 'binlog.000002', pos: 256 });
    const c = packCoordinate({ file: 'binlog.000002', pos: 257 });
    assert.ok(a < b && b < c);
    assert.deepEqual(unpackCoordinate(c), { file: 'binlog.000002', pos: 257 });
  });

  it('reads the index from a path or a plain name, and refuses other names', () => {
    assert.equal(binlogFileIndex('/var/lib/mysql/mariadb-bin.001234'), 1234);
    assert.equal(binlogFileIndex('binlog.1000000'), 1_000_000);
    assert.throws(() => binlogFileIndex('binlog'), /not a binlog file name/);
  });

  it('keeps offsets up to 4 GiB and refuses larger ones', () => {
    const max = packCoordinate({ file: 'b.000009', pos: 2 ** 32 - 1 });
    assert.ok(max < packCoordinate({ file: 'b.000010', pos: 0 }));
    assert.throws(() => packCoordinate({ file: 'b.000009', pos: 2 ** 32 }), /out of range/);
  });
});
