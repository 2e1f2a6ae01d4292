/**
 * v2 presentation: domain records (cents, split names) to the public JSON
 * contract shared with v1. The semantic faults that the compare engine's tests
 * need are injected here, and only when AUCTION_V2_FAULT selects one.
 */
import type { BidRecord, ItemRecord } from './repository';

export type Fault = 'cents-rounding' | 'missing-field' | 'ordering' | undefined;
export const FAULTS = ['cents-rounding', 'missing-field', 'ordering'] as const;

export class Views {
  constructor(readonly fault: Fault) {}

  /** Integer cents to the contract's decimal number (12.3 for 1230). */
  amount(cents: number | null): number | null {
    if (cents === null) return null;
    // Injected fault: truncates to ten cents, the kind of bug a rewrite of money code introduces.
    if (this.fault === 'cents-rounding') return Math.floor(cents / 10) / 10;
    return cents / 100;
  }

  name(u: { first_name: string; last_name: string }): string {
    return u.last_name ? `${u.first_name} ${u.last_name}` : u.first_name;
  }

  summary(i: ItemRecord) {
    return {
      id: i.id, name: i.name, initialPrice: this.amount(i.initialPriceCents),
      maxBid: i.bidCount > 0 ? this.amount(i.maxBidCents) : null, bidCount: i.bidCount,
      buyNow: i.buyNowCents > 0 ? this.amount(i.buyNowCents) : null, endDate: i.endDate.toISOString(),
    };
  }

  item(i: ItemRecord, bids: BidRecord[]) {
    const view: Record<string, unknown> = {
      id: i.id, name: i.name, description: i.description, categoryId: i.categoryId,
      seller: { id: i.sellerId, nickname: i.sellerNickname },
      initialPrice: this.amount(i.initialPriceCents), quantity: i.quantity,
      buyNow: i.buyNowCents > 0 ? this.amount(i.buyNowCents) : null,
      startDate: i.startDate.toISOString(), endDate: i.endDate.toISOString(),
      maxBid: i.bidCount > 0 ? this.amount(i.maxBidCents) : null, bidCount: i.bidCount,
      bids: bids.map((b) => ({ id: b.bidId, userId: b.userId, nickname: b.nickname, amount: this.amount(b.amountCents), qty: b.qty, date: b.createdAt.toISOString() })),
    };
    if (this.fault === 'missing-field') delete view.buyNow;
    return view;
  }

  user(u: any, comments: any[]) {
    return {
      id: u.id, nickname: u.nickname, name: this.name(u), rating: u.rating, regionId: u.region_id, region: u.region,
      createdAt: u.created_at.toISOString(),
      comments: comments.map((c) => ({ id: c.id, fromUserId: c.from_user_id, fromNickname: c.nickname, itemId: c.item_id, rating: c.rating, date: c.created_at.toISOString(), text: c.body })),
    };
  }

  aboutMe(u: any, bids: BidRecord[], selling: ItemRecord[], purchases: any[]) {
    return {
      user: { id: u.id, nickname: u.nickname, name: this.name(u), email: u.email, rating: u.rating, balance: this.amount(Number(u.balance_cents)) },
      bids: bids.map((b) => ({ id: b.bidId, itemId: b.itemId, itemName: b.itemName, amount: this.amount(b.amountCents), date: b.createdAt.toISOString() })),
      selling: selling.map((i) => this.summary(i)),
      purchases: purchases.map((p) => ({ id: p.id, itemId: p.item_id, qty: p.qty, date: p.created_at.toISOString() })),
    };
  }
}
