/**
 * The RUBiS-like request mixes and what each operation sends and acknowledges.
 * Browsing: read-only. Bidding: about 85% reads and 15% writes (bid 9%,
 * comment 3%, buy-now 1.5%, register 1.5%), as in RUBiS's bidding mix.
 */
import { CATEGORIES, FIRST_NAMES, LAST_NAMES, NOUNS } from '../data';

export type Endpoint = 'browse' | 'search' | 'view-item' | 'view-user' | 'bid' | 'buy-now' | 'comment' | 'register';
export type WriteKind = 'bid' | 'buy-now' | 'comment' | 'register';

export interface LedgerEntry {
  kind: WriteKind;
  /** The id the reply gave (bid, purchase, comment or user id). */
  id: number;
  /** Wall-clock ms when the acknowledgement arrived. */
  at: number;
  itemId?: number;
  userId?: number;
  toUserId?: number;
  amount?: number;
  qty?: number;
  rating?: number;
  text?: string;
  nickname?: string;
  name?: string;
}

export interface Op {
  endpoint: Endpoint;
  method: 'GET' | 'POST';
  path: string;
  body?: Record<string, unknown>;
  /** Turns a 201 reply into the ledger entry of what was acknowledged. */
  ack?: (reply: any, at: number) => LedgerEntry;
}

export interface MixState {
  rand: () => number;
  users: [number, number];
  items: [number, number];
  /** What this client knows of an item's current max (cents), learnt from replies. */
  knownMax: Map<number, number>;
  buyNowItems: number[];
  runTag: string;
  counter: number;
}

export type MixName = 'browsing' | 'bidding' | 'bidding-indexed';

const WEIGHTS: Record<MixName, Array<[number, (s: MixState) => Op]>> = {
  browsing: [[5, regions], [10, categories], [30, categoryItems], [15, search], [30, viewItem], [10, viewUser]],
  bidding: [[5, regions], [5, categories], [20, categoryItems], [10, search], [30, viewItem], [10, viewUser], [5, aboutMe],
    [9, bid], [3, comment], [1.5, buyNow], [1.5, register]],
  // The bidding mix without the two reads whose cost in v1 grows with the table (a category's
  // listing sorts all its items; search scans them): at millions of items v1 cannot serve those
  // at any useful rate on a small host, whatever the upgrade does.
  'bidding-indexed': [[5, regions], [5, categories], [30, viewItem], [10, viewUser], [5, aboutMe],
    [9, bid], [3, comment], [1.5, buyNow], [1.5, register]],
};

export function nextOp(mix: MixName, s: MixState): Op {
  const table = WEIGHTS[mix];
  const total = table.reduce((a, [w]) => a + w, 0);
  let x = s.rand() * total;
  for (const [w, make] of table) { if ((x -= w) < 0) return make(s); }
  return table[0][1](s);
}

const between = (s: MixState, [lo, hi]: [number, number]) => lo + Math.floor(s.rand() * (hi - lo + 1));

function regions(): Op { return { endpoint: 'browse', method: 'GET', path: '/regions' }; }
function categories(): Op { return { endpoint: 'browse', method: 'GET', path: '/categories' }; }
function categoryItems(s: MixState): Op {
  return { endpoint: 'browse', method: 'GET', path: `/categories/${1 + Math.floor(s.rand() * CATEGORIES.length)}/items?page=${Math.floor(s.rand() * 3)}&size=20` };
}
function search(s: MixState): Op { return { endpoint: 'search', method: 'GET', path: `/search?q=${NOUNS[Math.floor(s.rand() * NOUNS.length)]}&size=20` }; }
function viewItem(s: MixState): Op { return { endpoint: 'view-item', method: 'GET', path: `/items/${between(s, s.items)}` }; }
function viewUser(s: MixState): Op { return { endpoint: 'view-user', method: 'GET', path: `/users/${between(s, s.users)}` }; }
function aboutMe(s: MixState): Op { return { endpoint: 'view-user', method: 'GET', path: `/users/${between(s, s.users)}/about-me` }; }

function bid(s: MixState): Op {
  const itemId = between(s, s.items);
  const userId = between(s, s.users);
  // Unknown items get a generous opening bid; afterwards beat what we last saw.
  const base = s.knownMax.get(itemId) ?? 20_000;
  const cents = base + 100 + Math.floor(s.rand() * 400);
  return {
    endpoint: 'bid', method: 'POST', path: `/items/${itemId}/bids`, body: { userId, amount: cents / 100 },
    ack: (r, at) => ({ kind: 'bid', id: r.id, at, itemId: r.itemId, userId: r.userId, amount: r.amount, qty: r.qty }),
  };
}
function buyNow(s: MixState): Op {
  const itemId = s.buyNowItems.length > 0 && s.rand() < 0.8 ? s.buyNowItems[Math.floor(s.rand() * s.buyNowItems.length)] : between(s, s.items);
  return {
    endpoint: 'buy-now', method: 'POST', path: `/items/${itemId}/buy-now`, body: { userId: between(s, s.users), qty: 1 },
    ack: (r, at) => ({ kind: 'buy-now', id: r.id, at, itemId: r.itemId, userId: r.userId, qty: r.qty, amount: r.price }),
  };
}
function comment(s: MixState): Op {
  const rating = Math.floor(s.rand() * 6);
  const text = `workload ${s.runTag} comment ${++s.counter}`;
  return {
    endpoint: 'comment', method: 'POST', path: '/comments',
    body: { fromUserId: between(s, s.users), toUserId: between(s, s.users), itemId: between(s, s.items), rating, text },
    ack: (r, at) => ({ kind: 'comment', id: r.id, at, userId: r.fromUserId, toUserId: r.toUserId, itemId: r.itemId, rating: r.rating, text: r.text }),
  };
}
function register(s: MixState): Op {
  const nickname = `w${s.runTag}_${++s.counter}`;
  const name = `${FIRST_NAMES[Math.floor(s.rand() * FIRST_NAMES.length)]} ${LAST_NAMES[Math.floor(s.rand() * LAST_NAMES.length)]}`;
  return {
    endpoint: 'register', method: 'POST', path: '/users',
    body: { nickname, name, email: `${nickname}@example.test`, password: 'secret1', regionId: 1 + Math.floor(s.rand() * 10) },
    ack: (r, at) => ({ kind: 'register', id: r.id, at, nickname: r.nickname, name: r.name }),
  };
}

/** Learns from replies: current max bids, items that offer buy-now. */
export function learn(s: MixState, op: Op, status: number, reply: any): void {
  if (!reply) return;
  if (op.endpoint === 'view-item' && status === 200) {
    s.knownMax.set(reply.id, Math.round(((reply.maxBid ?? reply.initialPrice) as number) * 100));
    if (reply.buyNow && reply.quantity > 0 && s.buyNowItems.length < 1000) s.buyNowItems.push(reply.id);
  } else if (op.endpoint === 'bid') {
    const itemId = Number(op.path.split('/')[2]);
    const max = status === 201 ? reply.amount : reply.error?.currentMax ?? reply.error?.minimum;
    if (typeof max === 'number') s.knownMax.set(itemId, Math.round(max * 100));
  }
}
