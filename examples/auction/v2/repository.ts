/**
 * v2 data access: every SQL statement of v2 lives here, on schema v2 (integer
 * cents, split names, item_bids keyed by (item_id, bid_id), denormalised
 * max_bid_cents / bid_count). Returns plain records in cents; no HTTP here.
 */
import type { Db } from '../common/db';

type Q = <R = any>(sql: string, params?: unknown[]) => Promise<R[]>;

export interface ItemRecord {
  id: number; name: string; description: string; categoryId: number; sellerId: number; sellerNickname?: string;
  initialPriceCents: number; quantity: number; buyNowCents: number; maxBidCents: number; bidCount: number;
  startDate: Date; endDate: Date;
}

export interface BidRecord { bidId: number; itemId: number; userId: number; nickname?: string; itemName?: string; qty: number; amountCents: number; createdAt: Date }

const ITEM_COLUMNS = `i.id, i.name, i.description, i.category_id, i.seller_id, i.initial_price_cents, i.quantity, i.buy_now_cents,
  i.max_bid_cents, i.bid_count, i.start_date, i.end_date`;

function toItem(r: any): ItemRecord {
  return {
    id: r.id, name: r.name, description: r.description, categoryId: r.category_id, sellerId: r.seller_id, sellerNickname: r.seller_nickname,
    initialPriceCents: Number(r.initial_price_cents), quantity: r.quantity, buyNowCents: Number(r.buy_now_cents),
    maxBidCents: Number(r.max_bid_cents), bidCount: r.bid_count, startDate: r.start_date, endDate: r.end_date,
  };
}

export class CatalogRepository {
  constructor(private readonly db: Db) {}
  regions() { return this.db.query('SELECT id, name FROM regions ORDER BY id'); }
  categories() { return this.db.query('SELECT id, name, slug FROM categories ORDER BY id'); }
  async categoryExists(id: number) { return (await this.db.query('SELECT 1 FROM categories WHERE id = ?', [id])).length > 0; }
  async itemsInCategory(categoryId: number, limit: number, offset: number): Promise<ItemRecord[]> {
    return (await this.db.query(`SELECT ${ITEM_COLUMNS} FROM items i WHERE i.category_id = ? ORDER BY i.end_date, i.id LIMIT ? OFFSET ?`, [categoryId, limit, offset])).map(toItem);
  }
  async search(needle: string, limit: number, offset: number): Promise<ItemRecord[]> {
    const like = `%${needle.toLowerCase().replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
    return (await this.db.query(`SELECT ${ITEM_COLUMNS} FROM items i WHERE i.search_name LIKE ? ORDER BY i.id LIMIT ? OFFSET ?`, [like, limit, offset])).map(toItem);
  }
  async item(id: number): Promise<ItemRecord | undefined> {
    const [r] = await this.db.query(`SELECT ${ITEM_COLUMNS}, u.nickname AS seller_nickname FROM items i JOIN users u ON u.id = i.seller_id WHERE i.id = ?`, [id]);
    return r ? toItem(r) : undefined;
  }
  async itemsBySeller(sellerId: number, limit: number): Promise<ItemRecord[]> {
    return (await this.db.query(`SELECT ${ITEM_COLUMNS} FROM items i WHERE i.seller_id = ? ORDER BY i.id DESC LIMIT ?`, [sellerId, limit])).map(toItem);
  }
}

export class BidRepository {
  constructor(private readonly db: Db) {}
  async history(itemId: number, limit: number, ascending: boolean): Promise<BidRecord[]> {
    const dir = ascending ? 'ASC' : 'DESC';
    const rows = await this.db.query(`SELECT b.bid_id, b.item_id, b.user_id, u.nickname, b.qty, b.amount_cents, b.created_at FROM item_bids b
      JOIN users u ON u.id = b.user_id WHERE b.item_id = ? ORDER BY b.amount_cents ${dir}, b.bid_id ${dir} LIMIT ?`, [itemId, limit]);
    return rows.map((r) => ({ bidId: r.bid_id, itemId: r.item_id, userId: r.user_id, nickname: r.nickname, qty: r.qty, amountCents: Number(r.amount_cents), createdAt: r.created_at }));
  }
  async byUser(userId: number, limit: number): Promise<BidRecord[]> {
    const rows = await this.db.query(`SELECT b.bid_id, b.item_id, i.name, b.user_id, b.qty, b.amount_cents, b.created_at FROM item_bids b
      JOIN items i ON i.id = b.item_id WHERE b.user_id = ? ORDER BY b.bid_id DESC LIMIT ?`, [userId, limit]);
    return rows.map((r) => ({ bidId: r.bid_id, itemId: r.item_id, itemName: r.name, userId: r.user_id, qty: r.qty, amountCents: Number(r.amount_cents), createdAt: r.created_at }));
  }
  /** Locks the item row: the caller's transaction then owns its max bid until commit. */
  async lockItem(q: Q, itemId: number) {
    const [r] = await q('SELECT id, initial_price_cents, max_bid_cents, bid_count, quantity, buy_now_cents FROM items WHERE id = ? FOR UPDATE', [itemId]);
    return r ? { initialPriceCents: Number(r.initial_price_cents), maxBidCents: Number(r.max_bid_cents), bidCount: r.bid_count as number, quantity: r.quantity as number, buyNowCents: Number(r.buy_now_cents) } : undefined;
  }
  /**
   * Allocates the next bid id. Lock order is always item row, then sequence,
   * so concurrent bids cannot deadlock. The MAX() guard covers ids copied in
   * by the upgrade (converted v1 bids) after the sequence was last advanced.
   */
  async nextBidId(q: Q): Promise<number> {
    const [seq] = await q('SELECT next_id FROM bid_sequence WHERE id = 1 FOR UPDATE');
    const [mx] = await q('SELECT COALESCE(MAX(bid_id), 0) + 1 AS n FROM item_bids');
    const id = Math.max(Number(seq.next_id), Number(mx.n));
    await q('UPDATE bid_sequence SET next_id = ? WHERE id = 1', [id + 1]);
    return id;
  }
  async insert(q: Q, b: Omit<BidRecord, 'nickname' | 'itemName'>) {
    await q('INSERT INTO item_bids (item_id, bid_id, user_id, qty, amount_cents, created_at) VALUES (?, ?, ?, ?, ?, ?)',
      [b.itemId, b.bidId, b.userId, b.qty, b.amountCents, b.createdAt]);
    // Why in the same transaction: the denormalised columns must never disagree with item_bids.
    await q('UPDATE items SET max_bid_cents = GREATEST(max_bid_cents, ?), bid_count = bid_count + 1 WHERE id = ?', [b.amountCents, b.itemId]);
  }
  async purchase(q: Q, p: { buyerId: number; itemId: number; qty: number; createdAt: Date }): Promise<number> {
    await q('UPDATE items SET quantity = quantity - ? WHERE id = ?', [p.qty, p.itemId]);
    const r: any = await q('INSERT INTO purchases (buyer_id, item_id, qty, created_at) VALUES (?, ?, ?, ?)', [p.buyerId, p.itemId, p.qty, p.createdAt]);
    return r.insertId;
  }
  purchasesBy(buyerId: number, limit: number) {
    return this.db.query('SELECT id, item_id, qty, created_at FROM purchases WHERE buyer_id = ? ORDER BY id DESC LIMIT ?', [buyerId, limit]);
  }
}

export class UserRepository {
  constructor(private readonly db: Db) {}
  async byId(id: number) {
    const [u] = await this.db.query('SELECT u.*, r.name AS region FROM users u JOIN regions r ON r.id = u.region_id WHERE u.id = ?', [id]);
    return u as any;
  }
  async exists(q: Q, ids: number[], lock = false): Promise<Set<number>> {
    const rows = await q(`SELECT id FROM users WHERE id IN (?)${lock ? ' FOR UPDATE' : ''}`, [ids]);
    return new Set(rows.map((r: any) => r.id));
  }
  commentsAbout(userId: number, limit: number) {
    return this.db.query(`SELECT c.id, c.from_user_id, f.nickname, c.item_id, c.rating, c.created_at, c.body FROM comments c
      JOIN users f ON f.id = c.from_user_id WHERE c.to_user_id = ? ORDER BY c.created_at DESC, c.id DESC LIMIT ?`, [userId, limit]);
  }
  async regionExists(q: Q, id: number) { return (await q('SELECT 1 FROM regions WHERE id = ?', [id])).length > 0; }
  async nicknameTaken(q: Q, nickname: string) { return (await q('SELECT 1 FROM users WHERE nickname = ? FOR UPDATE', [nickname])).length > 0; }
  async insert(q: Q, u: { firstName: string; lastName: string; nickname: string; password: string; email: string; regionId: number; createdAt: Date }): Promise<number> {
    const r: any = await q(`INSERT INTO users (first_name, last_name, nickname, password, email, rating, balance_cents, region_id, created_at)
      VALUES (?, ?, ?, ?, ?, 0, 0, ?, ?)`, [u.firstName, u.lastName, u.nickname, u.password, u.email, u.regionId, u.createdAt]);
    return r.insertId;
  }
  async addComment(q: Q, c: { fromUserId: number; toUserId: number; itemId: number; rating: number; text: string; createdAt: Date }): Promise<number> {
    const r: any = await q('INSERT INTO comments (from_user_id, to_user_id, item_id, rating, created_at, body) VALUES (?, ?, ?, ?, ?, ?)',
      [c.fromUserId, c.toUserId, c.itemId, c.rating, c.createdAt, c.text]);
    await q('UPDATE users SET rating = rating + ? WHERE id = ?', [c.rating, c.toUserId]);
    return r.insertId;
  }
  async itemExists(q: Q, id: number) { return (await q('SELECT 1 FROM items WHERE id = ?', [id])).length > 0; }
}
