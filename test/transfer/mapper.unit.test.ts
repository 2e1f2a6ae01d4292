import { strict as assert } from 'node:assert';
import { isImagoError } from '../../lib/errors';
import type { Row, TableConversion } from '../../transfer/conversion';
import { changeOps, convertRaw, keyText, mapTable, refreshKeys } from '../../transfer/mapper';
import { refreshId } from '../../transfer/refresh';

// bids(id, item_id, amount) -> item_bids(item_id, bid_id, cents): the target key moves with item_id.
const bids: TableConversion = {
  source: 'bids',
  targets: [{ table: 'item_bids', key: ['item_id', 'bid_id'] }],
  convert: (r: Row) => ({ item_bids: [{ item_id: r.item_id, bid_id: r.id, cents: Number(r.amount) * 100 }] }),
  refresh: [{ table: 'items', keysOf: (r) => [[r.item_id]], sql: 'UPDATE items SET n = 1 WHERE id = ?', setSql: 'UPDATE items SET n = 1 WHERE id IN (?)' }],
};
const m = mapTable(bids, ['id']);

describe('changeOps: a binlog change as writes on Unew', () => {
  it('an insert upserts convert(after)', () => {
    assert.deepEqual(changeOps(m, null, { id: 7, item_id: 3, amount: 2 }), [{ kind: 'upsert', table: 'item_bids', row: { item_id: 3, bid_id: 7, cents: 200 } }]);
  });

  it('a delete deletes the target keys convert(before) produced', () => {
    assert.deepEqual(changeOps(m, { id: 7, item_id: 3, amount: 2 }, null), [{ kind: 'delete', table: 'item_bids', key: [3, 7] }]);
  });

  it('an update keeping the target key only upserts', () => {
    assert.deepEqual(changeOps(m, { id: 7, item_id: 3, amount: 2 }, { id: 7, item_id: 3, amount: 5 }), [{ kind: 'upsert', table: 'item_bids', row: { item_id: 3, bid_id: 7, cents: 500 } }]);
  });

  it('an update moving the target key deletes the old key first, then upserts the new one', () => {
    assert.deepEqual(changeOps(m, { id: 7, item_id: 3, amount: 2 }, { id: 7, item_id: 4, amount: 2 }), [
      { kind: 'delete', table: 'item_bids', key: [3, 7] },
      { kind: 'upsert', table: 'item_bids', row: { item_id: 4, bid_id: 7, cents: 200 } },
    ]);
  });

  it('a conversion that produces nothing for a row (a filter) deletes what the before image produced', () => {
    const filtered = mapTable({ source: 'p', targets: [{ table: 'c', key: ['id'] }], convert: (r) => ({ c: r.city ? [{ id: r.id, city: r.city }] : [] }) }, ['id']);
    assert.deepEqual(changeOps(filtered, { id: 1, city: 'x' }, { id: 1, city: null }), [{ kind: 'delete', table: 'c', key: [1] }]);
    assert.deepEqual(changeOps(filtered, { id: 1, city: null }, { id: 1, city: 'y' }), [{ kind: 'upsert', table: 'c', row: { id: 1, city: 'y' } }]);
  });

  it('a conversion error names the table and the old key', () => {
    const bad = mapTable({ ...bids, convert: () => { throw new Error('boom'); } }, ['id']);
    assert.throws(() => changeOps(bad, null, { id: 9, item_id: 1, amount: 1 }), (e: unknown) => isImagoError(e, 'TRANSFER_CONVERSION_FAILED') && /table 'bids', key \[9\].*boom/.test((e as Error).message));
  });

  it('convertRaw refuses undeclared targets and rows without their key', () => {
    const undeclared = mapTable({ ...bids, convert: () => ({ other: [{ a: 1 }] }) }, ['id']);
    assert.throws(() => convertRaw(undeclared, { id: 1 }), /'other', which is not among its declared targets/);
    const keyless = mapTable({ ...bids, convert: (r) => ({ item_bids: [{ bid_id: r.id }] }) }, ['id']);
    assert.throws(() => convertRaw(keyless, { id: 1 }), /lacks its key column\(s\) item_id/);
  });
});

describe('refreshKeys', () => {
  it('collects the affected keys once per spec, from before and after images, only for active specs', () => {
    const into = new Map<string, { sql: string; keys: Map<string, unknown[]> }>();
    refreshKeys(m, [{ id: 1, item_id: 3 }, { id: 1, item_id: 4 }, null, { id: 2, item_id: 3 }], into);
    const id = refreshId('items', bids.refresh![0].sql, bids.refresh![0].setSql);
    assert.deepEqual([...into.get(id)!.keys.values()], [[3], [4]]);
    const none = new Map<string, { sql: string; keys: Map<string, unknown[]> }>();
    refreshKeys(m, [{ id: 1, item_id: 3 }], none, new Set());
    assert.equal(none.size, 0);
  });

  it('keyText is stable across value types', () => {
    assert.equal(keyText([1, 'a']), '[1,"a"]');
    assert.equal(keyText([new Date('2026-01-01T00:00:00Z')]), '["2026-01-01T00:00:00.000Z"]');
    assert.equal(keyText([Buffer.from('ab')]), '["6162"]');
    assert.equal(keyText([10n]), '["10"]');
  });
});
