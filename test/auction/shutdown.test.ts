import { strict as assert } from 'node:assert';
import * as http from 'node:http';
import { prepare, start, type AuctionDbs } from './helpers';
import { startWorkload, type LedgerEntry } from '../../examples/auction/workload/generator';
import { checkLedger } from '../../examples/auction/ledger-checker';

function postJson(url: string, body: unknown): Promise<{ status: number; body: any }> {
  return new Promise((resolve, reject) => {
    const payload = JSON.stringify(body);
    const req = http.request(url, { method: 'POST', agent: false, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } }, (res) => {
      let t = '';
      res.on('data', (d) => { t += d; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: t ? JSON.parse(t) : undefined }));
    });
    req.on('error', reject);
    req.end(payload);
  });
}

const until = async (cond: () => Promise<boolean>, ms = 10_000) => {
  const end = Date.now() + ms;
  while (!(await cond())) { if (Date.now() > end) throw new Error('condition not met'); await new Promise((r) => setTimeout(r, 50)); }
};

describe('auction: graceful shutdown under load', function () {
  let dbs: AuctionDbs;
  before(async () => { dbs = await prepare({ v2: true, seed: { users: 200, items: 400, bids: 1200, seed: 3 } }); });

  for (const version of ['v1', 'v2'] as const) {
    it(`${version}: SIGTERM lets an in-flight bid finish and loses no acknowledged write`, async () => {
      const target = version === 'v1' ? dbs.v1 : dbs.v2!;
      // A long query timeout: the held row lock below must outlast a busy machine, not the service's patience.
      const svc = await start(version, target.app, { AUCTION_QUERY_TIMEOUT_MS: '120000' });
      // Long enough to outlast the shutdown; stopped explicitly once the service is gone.
      const w = startWorkload({ baseUrl: svc.url, mix: 'bidding', rate: 50, durationMs: 60_000, users: [1, 200], items: [10, 400], seed: 5 });
      // Hold item 5's row so a bid on it is provably in flight when SIGTERM arrives.
      const lock = await dbs.db.connect(target.name);
      await lock.query('BEGIN');
      await lock.query('SELECT id FROM items WHERE id = 5 FOR UPDATE');
      await new Promise((r) => setTimeout(r, 1_000));
      let slowOutcome = 'pending';
      const slow = postJson(`${svc.url}/items/5/bids`, { userId: 1, amount: 99_999 });
      slow.then((r) => { slowOutcome = `status ${r.status}`; }, (e) => { slowOutcome = `error ${e.message}`; });
      // The bid is in flight once the app's connection is running the locking read of item 5.
      const waiting = async () => ((await dbs.db.query(
        "SELECT info FROM information_schema.processlist WHERE user <> 'root' AND info LIKE '%FROM items WHERE id = 5 FOR UPDATE%'")) as any[]).length > 0;
      await until(waiting, 30_000).catch(async (e) => {
        const pl = await dbs.db.query("SELECT user, state, info FROM information_schema.processlist WHERE info IS NOT NULL");
        throw new Error(`${e.message}: the bid on item 5 never waited for the lock (its request: ${slowOutcome}); processlist ${JSON.stringify(pl)}`);
      });
      const exited = svc.proc.waitExit();
      svc.proc.child.kill('SIGTERM');
      await new Promise((r) => setTimeout(r, 500));
      assert.equal(svc.proc.exitedAlready, false, 'the service waits for its in-flight request');
      await lock.query('COMMIT');
      await lock.end();
      const bid = await slow;
      assert.equal(bid.status, 201, JSON.stringify(bid.body));
      assert.equal(await exited, 0, 'clean exit after draining');
      await new Promise((r) => setTimeout(r, 300));
      w.stop();
      const r = await w.done;
      const acked: LedgerEntry[] = [...r.ledger, { kind: 'bid', id: bid.body.id, at: Date.now(), itemId: 5, userId: 1, amount: 99_999, qty: 1 }];
      const report = await checkLedger(target.admin, version, acked);
      assert.equal(report.checked, acked.length);
      assert.deepEqual([report.missing, report.duplicated, report.altered], [[], [], []]);
      assert.ok(r.ledger.length > 5, `${r.ledger.length} writes acknowledged under load`);
      // After SIGTERM new connections are refused: that is the only failure allowed.
      // A 5xx or a reply cut in the middle would be a dropped request.
      for (const [status, n] of Object.entries(r.byStatus)) {
        assert.ok(/^(200|201|409|ECONNREFUSED|ECONNRESET)$/.test(status), `unexpected outcome ${status} x${n}`);
      }
      assert.ok((r.byStatus.ECONNREFUSED ?? 0) > 0, 'load continued after the service stopped');
    });
  }
});
