/**
 * The auction's v1 -> v2 conversion, written against the generic interface in
 * transfer/conversion.ts. Each function maps one v1 row to its v2 rows and is
 * pure: the bulk copy and the change stream may both call it, in any order.
 *
 * items.max_bid_cents / bid_count are derived from many bids, so no single old
 * row can produce them: they are declared as `refresh` statements (recomputed
 * in Unew from its own converted item_bids: set-based once after the bulk
 * copy, per item for each batch of the change stream) and as
 * `preserveColumns` of items, so re-converting an item row never resets them.
 */
import type { ConversionModule, Row } from '../../transfer/conversion';

/** DECIMAL(12,2) as mysql2 returns it ('12.30', a string) or as a number -> integer cents, exactly. */
export function toCents(v: unknown): number {
  if (v === null || v === undefined) return 0;
  const s = typeof v === 'number' ? v.toFixed(2) : String(v).trim();
  const m = /^(-?)(\d+)(?:\.(\d{0,2})\d*)?$/.exec(s);
  // Parse the digits rather than multiply a float: 0.29 * 100 is 28.999999999999996.
  if (!m) throw new Error(`not a decimal amount: ${JSON.stringify(v)}`);
  const cents = Number(m[2]) * 100 + Number((m[3] ?? '').padEnd(2, '0'));
  return m[1] === '-' ? -cents : cents;
}

/** v1 stores 'First Last'; v2 splits at the first space (v2's register does the same). */
export function splitName(name: unknown): { first_name: string; last_name: string } {
  const s = String(name ?? '').trim().replace(/\s+/g, ' ');
  const at = s.indexOf(' ');
  return at < 0 ? { first_name: s, last_name: '' } : { first_name: s.slice(0, at), last_name: s.slice(at + 1) };
}

export function slugOf(name: unknown): string {
  return String(name ?? '').toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '');
}

export function searchNameOf(name: unknown): string {
  return String(name ?? '').toLowerCase();
}

/** Integer cents (a number, a bigint or its text) -> the DECIMAL(12,2) text v1 stores ('12.30'), exactly: digits, never a float division. */
export function fromCents(v: unknown): string {
  const s = typeof v === 'bigint' ? v.toString() : typeof v === 'number' ? Math.trunc(v).toString() : String(v ?? '0').trim();
  if (!/^-?\d+$/.test(s)) throw new Error(`not an integer amount of cents: ${JSON.stringify(v)}`);
  const neg = s.startsWith('-');
  const digits = (neg ? s.slice(1) : s).padStart(3, '0');
  return `${neg ? '-' : ''}${digits.slice(0, -2).replace(/^0+(?=\d)/, '')}.${digits.slice(-2)}`;
}

/** v2's two name columns -> v1's one (the inverse of splitName for names v1 holds with single spaces). */
export function joinName(first: unknown, last: unknown): string {
  const l = String(last ?? '');
  return l ? `${String(first ?? '')} ${l}` : String(first ?? '');
}

const same = (table: string) => (row: Row) => ({ [table]: [{ ...row }] });

const conversion: ConversionModule = {
  name: 'auction v1->v2',
  tables: [
    { source: 'regions', targets: [{ table: 'regions', key: ['id'] }], convert: same('regions') },
    {
      source: 'categories',
      targets: [{ table: 'categories', key: ['id'] }],
      convert: (r) => ({ categories: [{ id: r.id, name: r.name, slug: slugOf(r.name) }] }),
    },
    {
      source: 'users',
      targets: [{ table: 'users', key: ['id'] }],
      convert: (r) => ({
        users: [{
          id: r.id, ...splitName(r.name), nickname: r.nickname, password: r.password, email: r.email,
          rating: r.rating, balance_cents: toCents(r.balance), region_id: r.region_id, created_at: r.created_at,
        }],
      }),
    },
    {
      source: 'items',
      targets: [{ table: 'items', key: ['id'] }],
      convert: (r) => ({
        items: [{
          id: r.id, name: r.name, search_name: searchNameOf(r.name), description: r.description,
          initial_price_cents: toCents(r.initial_price), quantity: r.quantity,
          reserve_price_cents: toCents(r.reserve_price), buy_now_cents: toCents(r.buy_now),
          max_bid_cents: 0, bid_count: 0,
          start_date: r.start_date, end_date: r.end_date, seller_id: r.seller_id, category_id: r.category_id,
        }],
      }),
      // Owned by the bids' refresh below: an item update in Uold (e.g. quantity
      // after a buy-now) must not zero the counters Unew already computed.
      preserveColumns: { items: ['max_bid_cents', 'bid_count'] },
      // A newly inserted item row starts at 0/0 above; if its bids were applied
      // first (the copy and the stream run in any order) recompute at once.
      refresh: [{ table: 'items', keysOf: (r) => [[r.id]], sql: REFRESH_ITEM_SQL(), setSql: REFRESH_ITEMS_SET_SQL() }],
    },
    {
      source: 'bids',
      // New key: (item_id, bid_id). An update that moves a bid to another
      // item changes the target key; the transfer deletes the old one.
      targets: [{ table: 'item_bids', key: ['item_id', 'bid_id'] }],
      convert: (r) => ({
        item_bids: [{
          item_id: r.item_id, bid_id: r.id, user_id: r.user_id, qty: r.qty,
          amount_cents: toCents(r.amount), created_at: r.created_at,
        }],
      }),
      refresh: [{ table: 'items', keysOf: (r) => [[r.item_id]], sql: REFRESH_ITEM_SQL(), setSql: REFRESH_ITEMS_SET_SQL() }],
    },
    {
      source: 'comments',
      targets: [{ table: 'comments', key: ['id'] }],
      convert: (r) => ({
        comments: [{
          id: r.id, from_user_id: r.from_user_id, to_user_id: r.to_user_id, item_id: r.item_id,
          rating: r.rating, created_at: r.created_at, body: r.comment,
        }],
      }),
    },
    { source: 'buy_now', targets: [{ table: 'purchases', key: ['id'] }], convert: same('purchases') },
  ],
  // The inverse, for a rollback after the switchover: v2's writes replicated
  // back into v1's schema. Derived v2 columns (slug, search_name,
  // max_bid_cents, bid_count) are dropped: v1 computes them at read time.
  reverse: [
    { source: 'regions', targets: [{ table: 'regions', key: ['id'] }], convert: same('regions') },
    { source: 'categories', targets: [{ table: 'categories', key: ['id'] }], convert: (r) => ({ categories: [{ id: r.id, name: r.name }] }) },
    {
      source: 'users',
      targets: [{ table: 'users', key: ['id'] }],
      convert: (r) => ({
        users: [{
          id: r.id, name: joinName(r.first_name, r.last_name), nickname: r.nickname, password: r.password, email: r.email,
          rating: r.rating, balance: fromCents(r.balance_cents), region_id: r.region_id, created_at: r.created_at,
        }],
      }),
    },
    {
      source: 'items',
      targets: [{ table: 'items', key: ['id'] }],
      convert: (r) => ({
        items: [{
          id: r.id, name: r.name, description: r.description, initial_price: fromCents(r.initial_price_cents), quantity: r.quantity,
          reserve_price: fromCents(r.reserve_price_cents), buy_now: fromCents(r.buy_now_cents),
          start_date: r.start_date, end_date: r.end_date, seller_id: r.seller_id, category_id: r.category_id,
        }],
      }),
    },
    {
      source: 'item_bids',
      targets: [{ table: 'bids', key: ['id'] }],
      convert: (r) => ({ bids: [{ id: r.bid_id, user_id: r.user_id, item_id: r.item_id, qty: r.qty, amount: fromCents(r.amount_cents), created_at: r.created_at }] }),
    },
    {
      source: 'comments',
      targets: [{ table: 'comments', key: ['id'] }],
      convert: (r) => ({
        comments: [{ id: r.id, from_user_id: r.from_user_id, to_user_id: r.to_user_id, item_id: r.item_id, rating: r.rating, created_at: r.created_at, comment: r.body }],
      }),
    },
    { source: 'purchases', targets: [{ table: 'buy_now', key: ['id'] }], convert: same('buy_now') },
  ],
};

/** Recomputes one item's derived bid columns from Unew's own item_bids (idempotent). */
export function REFRESH_ITEM_SQL(): string {
  return 'UPDATE items SET max_bid_cents = (SELECT COALESCE(MAX(amount_cents), 0) FROM item_bids WHERE item_id = items.id), '
    + 'bid_count = (SELECT COUNT(*) FROM item_bids WHERE item_id = items.id) WHERE id = ?';
}

/**
 * The same for a set of items (the bulk copy's form: `?` is the list of item
 * ids). Why per item, by the primary key of item_bids, rather than one
 * grouped read of the list's bids joined back: MariaDB turns an IN list of
 * 1,000 values or more into a derived table, and the grouped read then scans
 * all of item_bids for every batch (55 ms per 2,000 items at 150,000 bids,
 * growing with the table); two index lookups per item cost 10 ms, whatever
 * the table's size.
 */
export function REFRESH_ITEMS_SET_SQL(): string {
  return 'UPDATE items i SET i.max_bid_cents = (SELECT COALESCE(MAX(b.amount_cents), 0) FROM item_bids b WHERE b.item_id = i.id), '
    + 'i.bid_count = (SELECT COUNT(*) FROM item_bids b WHERE b.item_id = i.id) WHERE i.id IN (?)';
}

export default conversion;
