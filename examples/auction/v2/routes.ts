/** v2 controllers: parse and validate the request, call the service, render with the views. */
import { badRequest, field, notFound, pathId, type Route } from '../common/http';
import type { AuctionService } from './service';
import type { Views } from './views';

export function routes(svc: AuctionService, views: Views): Route[] {
  const paging = (url: URL) => ({ page: field.query(url, 'page', 0, 0, 10_000), size: field.query(url, 'size', 20, 1, 100) });
  const get = (pattern: RegExp, handler: Route['handler']): Route => ({ method: 'GET', pattern, handler });
  const post = (pattern: RegExp, handler: Route['handler']): Route => ({ method: 'POST', pattern, handler });

  return [
    get(/^\/regions$/, async () => [200, { regions: await svc.catalog.regions() }]),
    get(/^\/categories$/, async () => [200, { categories: (await svc.catalog.categories()).map((c: any) => ({ id: c.id, name: c.name })) }]),
    get(/^\/categories\/([^/]+)\/items$/, async ({ url, params }) => {
      const categoryId = pathId(params[0], 'category');
      const { page, size } = paging(url);
      if (!(await svc.catalog.categoryExists(categoryId))) throw notFound(`category ${categoryId} does not exist`);
      const items = await svc.catalog.itemsInCategory(categoryId, size, page * size);
      return [200, { categoryId, page, size, items: items.map((i) => views.summary(i)) }];
    }),
    get(/^\/search$/, async ({ url }) => {
      const q = (url.searchParams.get('q') ?? '').trim();
      if (q.length < 2 || q.length > 50) throw badRequest("query parameter 'q' must be 2 to 50 characters");
      const { page, size } = paging(url);
      const items = await svc.catalog.search(q, size, page * size);
      return [200, { q, page, size, items: items.map((i) => views.summary(i)) }];
    }),
    get(/^\/items\/([^/]+)$/, async ({ params }) => {
      const id = pathId(params[0], 'item');
      const item = await svc.catalog.item(id);
      if (!item) throw notFound(`item ${id} does not exist`);
      const bids = await svc.bids.history(id, 50, views.fault === 'ordering');
      return [200, views.item(item, bids)];
    }),
    get(/^\/users\/([^/]+)$/, async ({ params }) => {
      const id = pathId(params[0], 'user');
      const u = await svc.users.byId(id);
      if (!u) throw notFound(`user ${id} does not exist`);
      return [200, views.user(u, await svc.users.commentsAbout(id, 20))];
    }),
    get(/^\/users\/([^/]+)\/about-me$/, async ({ params }) => {
      const id = pathId(params[0], 'user');
      const u = await svc.users.byId(id);
      if (!u) throw notFound(`user ${id} does not exist`);
      const [bids, selling, purchases] = await Promise.all([svc.bids.byUser(id, 20), svc.catalog.itemsBySeller(id, 20), svc.bids.purchasesBy(id, 20)]);
      return [200, views.aboutMe(u, bids, selling, purchases)];
    }),
    post(/^\/users$/, async ({ body }) => {
      const b = await body();
      const u = await svc.register({
        nickname: field.str(b, 'nickname', 3, 50, /^[A-Za-z0-9_.-]+$/),
        name: field.str(b, 'name', 1, 101, /^[^ ]{1,50}( .{1,50})?$/),
        email: field.str(b, 'email', 3, 100, /^[^@\s]+@[^@\s]+$/),
        password: field.str(b, 'password', 4, 64),
        regionId: field.int(b, 'regionId', { min: 1 }),
      });
      return [201, { id: u.id, nickname: u.nickname, name: views.name({ first_name: u.firstName, last_name: u.lastName }), regionId: u.regionId, firstName: u.firstName, lastName: u.lastName }];
    }),
    post(/^\/items\/([^/]+)\/bids$/, async ({ params, body }) => {
      const itemId = pathId(params[0], 'item');
      const b = await body();
      const userId = field.int(b, 'userId', { min: 1 });
      const cents = field.cents(b, 'amount');
      const qty = field.int(b, 'qty', { min: 1, max: 100, optional: 1 });
      const r = await svc.placeBid(itemId, userId, cents, qty);
      return [201, { id: r.bidId, itemId, userId, amount: views.amount(r.amountCents), qty, maxBid: views.amount(r.amountCents), bidCount: r.bidCount }];
    }),
    post(/^\/items\/([^/]+)\/buy-now$/, async ({ params, body }) => {
      const itemId = pathId(params[0], 'item');
      const b = await body();
      const userId = field.int(b, 'userId', { min: 1 });
      const qty = field.int(b, 'qty', { min: 1, max: 100, optional: 1 });
      const r = await svc.buyNow(itemId, userId, qty);
      return [201, { id: r.id, itemId, userId, qty, price: views.amount(r.priceCents), remaining: r.remaining }];
    }),
    post(/^\/comments$/, async ({ body }) => {
      const b = await body();
      const c = await svc.comment({
        fromUserId: field.int(b, 'fromUserId', { min: 1 }), toUserId: field.int(b, 'toUserId', { min: 1 }),
        itemId: field.int(b, 'itemId', { min: 1 }), rating: field.int(b, 'rating', { min: -5, max: 5 }), text: field.str(b, 'text', 1, 2000),
      });
      return [201, c];
    }),
  ];
}
