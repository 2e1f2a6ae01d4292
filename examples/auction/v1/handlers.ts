/**
 * Auction v1: flat handlers with their SQL inline, on schema v1 (money as
 * DECIMAL, one name column, max bid and bid count computed from `bids` at read
 * time). This is the "old implementation" that Imago upgrades from.
 */
import type { Db } from '../common/db';
import { badRequest, conflict, field, notFound, pathId, type Route } from '../common/http';

const money = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));
const iso = (d: unknown): string => (d instanceof Date ? d.toISOString() : String(d));
const nowSeconds = () => new Date(Math.floor(Date.now() / 1000) * 1000);

const ITEM_SUMMARY = `SELECT i.id, i.name, i.initial_price, i.buy_now, i.end_date,
  (SELECT MAX(b.amount) FROM bids b WHERE b.item_id = i.id) AS max_bid,
  (SELECT COUNT(*) FROM bids b WHERE b.item_id = i.id) AS bid_count FROM items i`;

function summary(r: any) {
  return {
    id: r.id, name: r.name, initialPrice: money(r.initial_price), maxBid: money(r.max_bid), bidCount: Number(r.bid_count),
    buyNow: Number(r.buy_now) > 0 ? money(r.buy_now) : null, endDate: iso(r.end_date),
  };
}

export function routes(db: Db): Route[] {
  return [
    { method: 'GET', pattern: /^\/regions$/, handler: async () => [200, { regions: await db.query('SELECT id, name FROM regions ORDER BY id') }] },
    { method: 'GET', pattern: /^\/categories$/, handler: async () => [200, { categories: await db.query('SELECT id, name FROM categories ORDER BY id') }] },

    {
      method: 'GET', pattern: /^\/categories\/([^/]+)\/items$/,
      handler: async ({ url, params }) => {
        const id = pathId(params[0], 'category');
        const page = field.query(url, 'page', 0, 0, 10_000);
        const size = field.query(url, 'size', 20, 1, 100);
        const cat = await db.query('SELECT id FROM categories WHERE id = ?', [id]);
        if (cat.length === 0) throw notFound(`category ${id} does not exist`);
        const rows = await db.query(`${ITEM_SUMMARY} WHERE i.category_id = ? ORDER BY i.end_date, i.id LIMIT ? OFFSET ?`, [id, size, page * size]);
        return [200, { categoryId: id, page, size, items: rows.map(summary) }];
      },
    },

    {
      method: 'GET', pattern: /^\/search$/,
      handler: async ({ url }) => {
        const q = (url.searchParams.get('q') ?? '').trim();
        if (q.length < 2 || q.length > 50) throw badRequest("query parameter 'q' must be 2 to 50 characters");
        const page = field.query(url, 'page', 0, 0, 10_000);
        const size = field.query(url, 'size', 20, 1, 100);
        const like = `%${q.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
        const rows = await db.query(`${ITEM_SUMMARY} WHERE i.name LIKE ? ORDER BY i.id LIMIT ? OFFSET ?`, [like, size, page * size]);
        return [200, { q, page, size, items: rows.map(summary) }];
      },
    },

    {
      method: 'GET', pattern: /^\/items\/([^/]+)$/,
      handler: async ({ params }) => {
        const id = pathId(params[0], 'item');
        const [item] = await db.query(`SELECT i.*, u.nickname AS seller_nickname FROM items i JOIN users u ON u.id = i.seller_id WHERE i.id = ?`, [id]);
        if (!item) throw notFound(`item ${id} does not exist`);
        const bids = await db.query(`SELECT b.id, b.user_id, u.nickname, b.amount, b.qty, b.created_at FROM bids b JOIN users u ON u.id = b.user_id
          WHERE b.item_id = ? ORDER BY b.amount DESC, b.id DESC LIMIT 50`, [id]);
        const [agg] = await db.query('SELECT MAX(amount) AS max_bid, COUNT(*) AS n FROM bids WHERE item_id = ?', [id]);
        return [200, {
          id: item.id, name: item.name, description: item.description, categoryId: item.category_id,
          seller: { id: item.seller_id, nickname: item.seller_nickname },
          initialPrice: money(item.initial_price), quantity: item.quantity,
          buyNow: Number(item.buy_now) > 0 ? money(item.buy_now) : null,
          startDate: iso(item.start_date), endDate: iso(item.end_date),
          maxBid: money(agg.max_bid), bidCount: Number(agg.n),
          bids: bids.map((b) => ({ id: b.id, userId: b.user_id, nickname: b.nickname, amount: money(b.amount), qty: b.qty, date: iso(b.created_at) })),
        }];
      },
    },

    {
      method: 'GET', pattern: /^\/users\/([^/]+)$/,
      handler: async ({ params }) => {
        const id = pathId(params[0], 'user');
        const [u] = await db.query('SELECT u.*, r.name AS region FROM users u JOIN regions r ON r.id = u.region_id WHERE u.id = ?', [id]);
        if (!u) throw notFound(`user ${id} does not exist`);
        const comments = await db.query(`SELECT c.id, c.from_user_id, f.nickname, c.item_id, c.rating, c.created_at, c.comment FROM comments c
          JOIN users f ON f.id = c.from_user_id WHERE c.to_user_id = ? ORDER BY c.created_at DESC, c.id DESC LIMIT 20`, [id]);
        return [200, {
          id: u.id, nickname: u.nickname, name: u.name, rating: u.rating, regionId: u.region_id, region: u.region, createdAt: iso(u.created_at),
          comments: comments.map((c) => ({ id: c.id, fromUserId: c.from_user_id, fromNickname: c.nickname, itemId: c.item_id, rating: c.rating, date: iso(c.created_at), text: c.comment })),
        }];
      },
    },

    {
      method: 'GET', pattern: /^\/users\/([^/]+)\/about-me$/,
      handler: async ({ params }) => {
        const id = pathId(params[0], 'user');
        const [u] = await db.query('SELECT * FROM users WHERE id = ?', [id]);
        if (!u) throw notFound(`user ${id} does not exist`);
        const bids = await db.query(`SELECT b.id, b.item_id, i.name, b.amount, b.created_at FROM bids b JOIN items i ON i.id = b.item_id
          WHERE b.user_id = ? ORDER BY b.id DESC LIMIT 20`, [id]);
        const selling = await db.query(`${ITEM_SUMMARY} WHERE i.seller_id = ? ORDER BY i.id DESC LIMIT 20`, [id]);
        const purchases = await db.query('SELECT id, item_id, qty, created_at FROM buy_now WHERE buyer_id = ? ORDER BY id DESC LIMIT 20', [id]);
        return [200, {
          user: { id: u.id, nickname: u.nickname, name: u.name, email: u.email, rating: u.rating, balance: money(u.balance) },
          bids: bids.map((b) => ({ id: b.id, itemId: b.item_id, itemName: b.name, amount: money(b.amount), date: iso(b.created_at) })),
          selling: selling.map(summary),
          purchases: purchases.map((p) => ({ id: p.id, itemId: p.item_id, qty: p.qty, date: iso(p.created_at) })),
        }];
      },
    },

    {
      method: 'POST', pattern: /^\/users$/,
      handler: async ({ body }) => {
        const b = await body();
        const nickname = field.str(b, 'nickname', 3, 50, /^[A-Za-z0-9_.-]+$/);
        const name = field.str(b, 'name', 1, 101, /^[^ ]{1,50}( .{1,50})?$/);
        const email = field.str(b, 'email', 3, 100, /^[^@\s]+@[^@\s]+$/);
        const password = field.str(b, 'password', 4, 64);
        const regionId = field.int(b, 'regionId', { min: 1 });
        return db.tx(async (q) => {
          if ((await q('SELECT id FROM regions WHERE id = ?', [regionId])).length === 0) throw notFound(`region ${regionId} does not exist`);
          if ((await q('SELECT id FROM users WHERE nickname = ? FOR UPDATE', [nickname])).length > 0) throw conflict(`nickname '${nickname}' is taken`);
          const r: any = await q('INSERT INTO users (name, nickname, password, email, rating, balance, region_id, created_at) VALUES (?, ?, ?, ?, 0, 0, ?, ?)',
            [name, nickname, password, email, regionId, nowSeconds()]);
          return [201, { id: r.insertId, nickname, name, regionId }];
        });
      },
    },

    {
      method: 'POST', pattern: /^\/items\/([^/]+)\/bids$/,
      handler: async ({ params, body }) => {
        const itemId = pathId(params[0], 'item');
        const b = await body();
        const userId = field.int(b, 'userId', { min: 1 });
        const cents = field.cents(b, 'amount');
        const qty = field.int(b, 'qty', { min: 1, max: 100, optional: 1 });
        return db.tx(async (q) => {
          // Why FOR UPDATE: two concurrent bids on one item must not both pass the "beats the max" check.
          const [item] = await q('SELECT id, initial_price FROM items WHERE id = ? FOR UPDATE', [itemId]);
          if (!item) throw notFound(`item ${itemId} does not exist`);
          if ((await q('SELECT id FROM users WHERE id = ?', [userId])).length === 0) throw notFound(`user ${userId} does not exist`);
          const [agg] = await q('SELECT MAX(amount) AS max_bid, COUNT(*) AS n FROM bids WHERE item_id = ?', [itemId]);
          const amount = cents / 100;
          const max = money(agg.max_bid);
          const initial = Number(item.initial_price);
          if (amount < initial || (max !== null && amount <= max)) {
            throw conflict(`a bid on item ${itemId} must be at least ${initial.toFixed(2)} and above the current maximum ${max === null ? 'none' : max.toFixed(2)}`, { currentMax: max, minimum: initial });
          }
          const r: any = await q('INSERT INTO bids (user_id, item_id, qty, amount, created_at) VALUES (?, ?, ?, ?, ?)', [userId, itemId, qty, (cents / 100).toFixed(2), nowSeconds()]);
          return [201, { id: r.insertId, itemId, userId, amount, qty, maxBid: amount, bidCount: Number(agg.n) + 1 }];
        });
      },
    },

    {
      method: 'POST', pattern: /^\/items\/([^/]+)\/buy-now$/,
      handler: async ({ params, body }) => {
        const itemId = pathId(params[0], 'item');
        const b = await body();
        const userId = field.int(b, 'userId', { min: 1 });
        const qty = field.int(b, 'qty', { min: 1, max: 100, optional: 1 });
        return db.tx(async (q) => {
          const [item] = await q('SELECT id, quantity, buy_now FROM items WHERE id = ? FOR UPDATE', [itemId]);
          if (!item) throw notFound(`item ${itemId} does not exist`);
          if ((await q('SELECT id FROM users WHERE id = ?', [userId])).length === 0) throw notFound(`user ${userId} does not exist`);
          if (Number(item.buy_now) <= 0) throw conflict(`item ${itemId} has no buy-now price`);
          if (item.quantity < qty) throw conflict(`item ${itemId} has only ${item.quantity} left`, { remaining: item.quantity });
          await q('UPDATE items SET quantity = quantity - ? WHERE id = ?', [qty, itemId]);
          const r: any = await q('INSERT INTO buy_now (buyer_id, item_id, qty, created_at) VALUES (?, ?, ?, ?)', [userId, itemId, qty, nowSeconds()]);
          return [201, { id: r.insertId, itemId, userId, qty, price: money(item.buy_now), remaining: item.quantity - qty }];
        });
      },
    },

    {
      method: 'POST', pattern: /^\/comments$/,
      handler: async ({ body }) => {
        const b = await body();
        const fromUserId = field.int(b, 'fromUserId', { min: 1 });
        const toUserId = field.int(b, 'toUserId', { min: 1 });
        const itemId = field.int(b, 'itemId', { min: 1 });
        const rating = field.int(b, 'rating', { min: -5, max: 5 });
        const text = field.str(b, 'text', 1, 2000);
        return db.tx(async (q) => {
          const users = await q('SELECT id FROM users WHERE id IN (?, ?) FOR UPDATE', [fromUserId, toUserId]);
          for (const id of [fromUserId, toUserId]) if (!users.some((u) => u.id === id)) throw notFound(`user ${id} does not exist`);
          if ((await q('SELECT id FROM items WHERE id = ?', [itemId])).length === 0) throw notFound(`item ${itemId} does not exist`);
          const r: any = await q('INSERT INTO comments (from_user_id, to_user_id, item_id, rating, created_at, comment) VALUES (?, ?, ?, ?, ?, ?)',
            [fromUserId, toUserId, itemId, rating, nowSeconds(), text]);
          await q('UPDATE users SET rating = rating + ? WHERE id = ?', [rating, toUserId]);
          return [201, { id: r.insertId, fromUserId, toUserId, itemId, rating, text }];
        });
      },
    },
  ];
}
