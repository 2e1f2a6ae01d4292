/**
 * v2 business rules: bidding, buying, registering, commenting. Works in
 * integer cents and domain records; transactions are opened here, SQL lives
 * in the repositories, and the JSON shape is views.ts's business.
 */
import type { Db } from '../common/db';
import { conflict, notFound } from '../common/http';
import { splitName } from '../conversion';
import { BidRepository, CatalogRepository, UserRepository } from './repository';

const now = () => new Date(Math.floor(Date.now() / 1000) * 1000);
const fmt = (cents: number) => (cents / 100).toFixed(2);

export class AuctionService {
  readonly catalog: CatalogRepository;
  readonly bids: BidRepository;
  readonly users: UserRepository;

  constructor(private readonly db: Db) {
    this.catalog = new CatalogRepository(db);
    this.bids = new BidRepository(db);
    this.users = new UserRepository(db);
  }

  async placeBid(itemId: number, userId: number, amountCents: number, qty: number) {
    return this.db.tx(async (q) => {
      const item = await this.bids.lockItem(q, itemId);
      if (!item) throw notFound(`item ${itemId} does not exist`);
      if (!(await this.users.exists(q, [userId])).has(userId)) throw notFound(`user ${userId} does not exist`);
      const max = item.bidCount > 0 ? item.maxBidCents : null;
      if (amountCents < item.initialPriceCents || (max !== null && amountCents <= max)) {
        throw conflict(`a bid on item ${itemId} must be at least ${fmt(item.initialPriceCents)} and above the current maximum ${max === null ? 'none' : fmt(max)}`,
          { currentMax: max === null ? null : max / 100, minimum: item.initialPriceCents / 100 });
      }
      const bidId = await this.bids.nextBidId(q);
      await this.bids.insert(q, { bidId, itemId, userId, qty, amountCents, createdAt: now() });
      return { bidId, itemId, userId, qty, amountCents, bidCount: item.bidCount + 1 };
    });
  }

  async buyNow(itemId: number, userId: number, qty: number) {
    return this.db.tx(async (q) => {
      const item = await this.bids.lockItem(q, itemId);
      if (!item) throw notFound(`item ${itemId} does not exist`);
      if (!(await this.users.exists(q, [userId])).has(userId)) throw notFound(`user ${userId} does not exist`);
      if (item.buyNowCents <= 0) throw conflict(`item ${itemId} has no buy-now price`);
      if (item.quantity < qty) throw conflict(`item ${itemId} has only ${item.quantity} left`, { remaining: item.quantity });
      const id = await this.bids.purchase(q, { buyerId: userId, itemId, qty, createdAt: now() });
      return { id, itemId, userId, qty, priceCents: item.buyNowCents, remaining: item.quantity - qty };
    });
  }

  async register(u: { nickname: string; name: string; email: string; password: string; regionId: number }) {
    const { first_name: firstName, last_name: lastName } = splitName(u.name);
    return this.db.tx(async (q) => {
      if (!(await this.users.regionExists(q, u.regionId))) throw notFound(`region ${u.regionId} does not exist`);
      if (await this.users.nicknameTaken(q, u.nickname)) throw conflict(`nickname '${u.nickname}' is taken`);
      const id = await this.users.insert(q, { firstName, lastName, nickname: u.nickname, password: u.password, email: u.email, regionId: u.regionId, createdAt: now() });
      return { id, nickname: u.nickname, firstName, lastName, regionId: u.regionId };
    });
  }

  async comment(c: { fromUserId: number; toUserId: number; itemId: number; rating: number; text: string }) {
    return this.db.tx(async (q) => {
      const found = await this.users.exists(q, [c.fromUserId, c.toUserId], true);
      for (const id of [c.fromUserId, c.toUserId]) if (!found.has(id)) throw notFound(`user ${id} does not exist`);
      if (!(await this.users.itemExists(q, c.itemId))) throw notFound(`item ${c.itemId} does not exist`);
      const id = await this.users.addComment(q, { ...c, createdAt: now() });
      return { id, ...c };
    });
  }
}
