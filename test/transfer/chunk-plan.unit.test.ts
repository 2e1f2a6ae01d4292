import { strict as assert } from 'node:assert';
import { planChunk, upsertStatements, upsertTail } from '../../transfer/chunk-plan';
import type { Row, TableConversion } from '../../transfer/conversion';
import { mapTable } from '../../transfer/mapper';

const people: TableConversion = {
  source: 'people',
  targets: [{ table: 'persons', key: ['pid'] }, { table: 'cities', key: ['pid'] }],
  convert: (r: Row) => ({ persons: [{ pid: r.id, name: r.name }], cities: r.city ? [{ pid: r.id, city: r.city }] : [] }),
};

describe('Applier.planChunk (planChunk): a chunk as multi-row upserts', () => {
  it('the usual case: rows grouped per target table, same columns, distinct keys', () => {
    const plan = planChunk(mapTable(people, ['id']), [{ id: 1, name: 'a', city: 'x' }, { id: 2, name: 'b', city: null }]);
    assert.deepEqual(plan.ops, []);
    assert.deepEqual(plan.fast, [
      { table: 'persons', cols: ['pid', 'name'], rows: [{ pid: 1, name: 'a' }, { pid: 2, name: 'b' }] },
      { table: 'cities', cols: ['pid', 'city'], rows: [{ pid: 1, city: 'x' }] },
    ]);
  });

  it('a repeated target key takes the generic path, in order (the later image wins there)', () => {
    const merge = mapTable({ source: 's', targets: [{ table: 't', key: ['k'] }], convert: (r) => ({ t: [{ k: r.group, v: r.id }] }) }, ['id']);
    const plan = planChunk(merge, [{ id: 1, group: 'g' }, { id: 2, group: 'g' }]);
    assert.equal(plan.fast, null);
    assert.deepEqual(plan.ops, [{ kind: 'upsert', table: 't', row: { k: 'g', v: 1 } }, { kind: 'upsert', table: 't', row: { k: 'g', v: 2 } }]);
  });

  it('rows with differing column sets take the generic path', () => {
    const ragged = mapTable({ source: 's', targets: [{ table: 't', key: ['k'] }], convert: (r) => ({ t: [r.id === 1 ? { k: 1, a: 1 } : { k: r.id, b: 2 }] }) }, ['id']);
    const plan = planChunk(ragged, [{ id: 1 }, { id: 2 }]);
    assert.equal(plan.fast, null);
    assert.equal(plan.ops.length, 2);
  });

  it('a composite target key is deduplicated by its whole value', () => {
    const comp = mapTable({ source: 's', targets: [{ table: 't', key: ['a', 'b'] }], convert: (r) => ({ t: [{ a: r.a, b: r.b }] }) }, ['id']);
    assert.notEqual(planChunk(comp, [{ id: 1, a: 1, b: 1 }, { id: 2, a: 1, b: 2 }]).fast, null);
    assert.equal(planChunk(comp, [{ id: 1, a: 1, b: 1 }, { id: 2, a: 1, b: 1 }]).fast, null);
  });

  it('an empty chunk plans nothing', () => {
    assert.deepEqual(planChunk(mapTable(people, ['id']), []), { fast: [], ops: [] });
  });
});

describe('upsert statements', () => {
  it('keep preserved and key columns out of the update list, quote identifiers, escape values', async () => {
    assert.equal(upsertTail(['id', 'n', 'max'], ['id'], new Set(['max'])), ' ON DUPLICATE KEY UPDATE `n` = VALUES(`n`)');
    assert.equal(upsertTail(['id'], ['id'], new Set()), ' ON DUPLICATE KEY UPDATE `id` = VALUES(`id`)');
    const [sql] = await upsertStatements([{ table: 'we`ird', cols: ['id', 'name'], rows: [{ id: 1, name: "O'Brien" }, { id: 2, name: null }] }], () => ' TAIL');
    assert.equal(sql, "INSERT INTO `we``ird` (`id`, `name`) VALUES (1, 'O\\'Brien'), (2, NULL) TAIL");
  });

  it('split a large chunk into statements of about 256 KiB', async () => {
    const rows = Array.from({ length: 3000 }, (_, i) => ({ id: i, pad: 'x'.repeat(200) }));
    const out = await upsertStatements([{ table: 't', cols: ['id', 'pad'], rows }], () => '');
    assert.ok(out.length >= 2, `${out.length} statements`);
    assert.ok(out.every((s) => s.length < 300 * 1024));
    assert.equal(out.join('').match(/\(\d+, 'x+'\)/g)!.length, 3000);
  });
});
