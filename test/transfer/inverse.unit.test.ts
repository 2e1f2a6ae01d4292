import { strict as assert } from 'node:assert';
import conversion, { fromCents, joinName, splitName, toCents } from '../../examples/auction/conversion';
import { isImagoError } from '../../lib/errors';
import type { ConversionModule, Row } from '../../transfer/conversion';
import { checkRoundTrip, comparable, reverseCoverageProblems, roundTripError } from '../../transfer/inverse';

const at = new Date('2026-11-30T10:00:00.000Z');
/** One v1 row per table, as mysql2 reads them (DECIMAL as text, DATETIME as Date). */
const v1: Record<string, { key: string[]; rows: Row[] }> = {
  regions: { key: ['id'], rows: [{ id: 1, name: 'AZ--Phoenix' }] },
  categories: { key: ['id'], rows: [{ id: 2, name: 'Antiques & Art' }] },
  users: {
    key: ['id'],
    rows: [
      { id: 3, name: 'Ada Lovelace', nickname: 'ada', password: 'pw', email: 'a@x', rating: 4, balance: '12.30', region_id: 1, created_at: at },
      { id: 4, name: 'Mary Ann van Rossum', nickname: 'mary', password: 'pw', email: 'm@x', rating: 0, balance: '0.00', region_id: 1, created_at: at },
      { id: 5, name: 'Grace', nickname: 'g', password: 'pw', email: 'g@x', rating: -1, balance: '-0.29', region_id: 1, created_at: at },
    ],
  },
  items: {
    key: ['id'],
    rows: [{ id: 6, name: 'Red lamp', description: 'd', initial_price: '10.05', quantity: 1, reserve_price: '0.00', buy_now: '1234567.89', start_date: at, end_date: at, seller_id: 3, category_id: 2 }],
  },
  bids: { key: ['id'], rows: [{ id: 7, user_id: 3, item_id: 6, qty: 1, amount: '0.29', created_at: at }] },
  comments: { key: ['id'], rows: [{ id: 8, from_user_id: 3, to_user_id: 4, item_id: 6, rating: 5, created_at: at, comment: 'ok' }] },
  buy_now: { key: ['id'], rows: [{ id: 9, buyer_id: 3, item_id: 6, qty: 1, created_at: at }] },
};

describe('the inverse conversion (rollback)', () => {
  it("the auction's reverse covers every table its conversion writes", () => {
    assert.deepEqual(reverseCoverageProblems(conversion), []);
  });

  it("forward then reverse gives back every v1 row of the auction's sample, column by column", () => {
    for (const t of conversion.tables) {
      const s = v1[t.source];
      const r = checkRoundTrip(conversion, t, s.key, s.rows);
      assert.equal(r.diff, null, `${t.source}: ${r.diff?.detail}`);
      assert.equal(r.checked, s.rows.length);
    }
  });

  it('cents back to DECIMAL text exactly, and names joined back', () => {
    for (const d of ['0.00', '0.29', '-0.29', '12.30', '1234567.89', '-5.00']) assert.equal(fromCents(toCents(d)), d);
    assert.equal(fromCents(5n), '0.05');
    assert.equal(fromCents('123'), '1.23');
    assert.throws(() => fromCents('1.5'), /not an integer amount of cents/);
    const { first_name, last_name } = splitName('Mary Ann van Rossum');
    assert.equal(joinName(first_name, last_name), 'Mary Ann van Rossum');
    assert.equal(joinName('Grace', ''), 'Grace');
  });

  it('values compare exactly: decimals by their digits, dates by their instant', () => {
    assert.equal(comparable('12.30'), comparable(12.3));
    assert.equal(comparable('007'), comparable(7));
    assert.notEqual(comparable('0.29'), comparable('0.28'));
    assert.equal(comparable(new Date(at.getTime())), comparable(at));
    assert.notEqual(comparable(null), comparable('null'));
  });

  it('a Unew table without a reverse is named, with the old table that writes it', () => {
    const noBids: ConversionModule = { ...conversion, reverse: conversion.reverse!.filter((r) => r.source !== 'item_bids') };
    assert.deepEqual(reverseCoverageProblems(noBids), ["Unew table 'item_bids' (written from 'bids') has no reverse"]);
    assert.match(reverseCoverageProblems({ ...conversion, reverse: undefined })[0], /declares no reverse: each Unew table it writes \(regions, categories, users, items, item_bids, comments, purchases\) needs one/);
    const stray: ConversionModule = { ...conversion, reverse: [...conversion.reverse!, { source: 'bid_sequence', targets: [{ table: 'nope', key: ['id'] }], convert: () => ({}) }] };
    assert.deepEqual(reverseCoverageProblems(stray), [
      "reverse[7]: source 'bid_sequence' is not a Unew table the conversion writes (regions, categories, users, items, item_bids, comments, purchases)",
      "reverse[7]: target 'nope' is not a Uold table the conversion reads",
    ]);
  });

  it('a reverse that is not the inverse: the table, the first differing row and column are named', () => {
    // Loses the cents: 0.29 comes back as 0.00.
    const lossy: ConversionModule = {
      ...conversion,
      reverse: conversion.reverse!.map((r) => (r.source !== 'item_bids' ? r : { ...r, convert: (n: Row) => ({ bids: [{ ...r.convert(n).bids[0], amount: fromCents(Math.trunc(Number(n.amount_cents) / 100) * 100) }] }) })),
    };
    const bids = conversion.tables.find((t) => t.source === 'bids')!;
    const ok = { id: 1, user_id: 3, item_id: 6, qty: 1, amount: '3.00', created_at: at };
    const r = checkRoundTrip(lossy, bids, ['id'], [ok, ...v1.bids.rows]);
    assert.equal(r.checked, 1, 'the first row (whole units) round-trips; the second does not');
    assert.equal(r.diff?.column, 'amount');
    assert.deepEqual(r.diff?.key, [7]);
    const err = roundTripError(r.diff!);
    assert.ok(isImagoError(err, 'ROLLBACK_REVERSE_NOT_INVERSE'));
    assert.match(err.message, /table 'bids', key \[7\]: column 'amount' comes back as "0.00", was "0.29"; row \{"id":7,/);
  });

  it('a row the reverse drops, or a column it leaves out, is a difference', () => {
    const users = conversion.tables.find((t) => t.source === 'users')!;
    const dropping: ConversionModule = { ...conversion, reverse: conversion.reverse!.map((r) => (r.source === 'users' ? { ...r, convert: () => ({ users: [] }) } : r)) };
    assert.match(checkRoundTrip(dropping, users, ['id'], v1.users.rows).diff!.detail, /gives no 'users' row with key \[3\]: the row would be lost/);
    const noEmail: ConversionModule = { ...conversion, reverse: conversion.reverse!.map((r) => (r.source === 'users' ? { ...r, convert: (n: Row) => { const u = { ...r.convert(n).users[0] }; delete u.email; return { users: [u] }; } } : r)) };
    assert.equal(checkRoundTrip(noEmail, users, ['id'], v1.users.rows).diff!.column, 'email');
  });

  it("a name v1 holds with two spaces does not survive the split: the check says so (v2 normalises it)", () => {
    const users = conversion.tables.find((t) => t.source === 'users')!;
    const r = checkRoundTrip(conversion, users, ['id'], [{ ...v1.users.rows[0], name: 'Ada  Lovelace' }]);
    assert.match(r.diff!.detail, /column 'name' comes back as "Ada Lovelace", was "Ada  Lovelace"/);
  });
});
