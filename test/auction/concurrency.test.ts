import { strict as assert } from 'node:assert';
import { prepare, start, type AuctionDbs } from './helpers';

/** Concurrent registrations take InnoDB gap locks on the same nickname range: a classic deadlock that the app must retry, not answer with a 500. */
describe('auction: concurrent writes that deadlock in InnoDB are retried, not failed', function () {
  let dbs: AuctionDbs;
  before(async () => { dbs = await prepare({ v2: true, seed: { users: 50, items: 50, bids: 100, seed: 11 } }); });

  for (const version of ['v1', 'v2'] as const) {
    it(`${version}: 40 concurrent registrations all succeed`, async () => {
      const svc = await start(version, version === 'v1' ? dbs.v1.app : dbs.v2!.app);
      try {
        const stamp = `${version}${Date.now() % 100000}`;
        const replies = await Promise.all(Array.from({ length: 40 }, (_, i) => fetch(`${svc.url}/users`, {
          method: 'POST', headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ nickname: `${stamp}n${i}`, name: 'Ada Lovelace', email: `${stamp}n${i}@example.test`, password: 'secret1', regionId: 1 }),
        }).then((r) => r.status)));
        const counts = replies.reduce<Record<number, number>>((m, s) => ({ ...m, [s]: (m[s] ?? 0) + 1 }), {});
        assert.deepEqual(counts, { 201: 40 });
      } finally {
        await svc.stop();
      }
    });
  }
});
