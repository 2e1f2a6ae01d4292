import { strict as assert } from 'node:assert';
import { prepare, start, type AuctionDbs } from './helpers';
import { runWorkload, type LedgerEntry } from '../../examples/auction/workload/generator';
import { checkLedger } from '../../examples/auction/ledger-checker';
import { setupDatabase } from '../../examples/auction/database';
import { copyConverted } from '../../examples/auction/convert-copy';

describe('auction: workload generator and ledger checker', function () {
  let dbs: AuctionDbs;
  let ledger: LedgerEntry[];

  before(async () => {
    dbs = await prepare();
    const v1 = await start('v1', dbs.v1.app);
    const r = await runWorkload({ baseUrl: v1.url, mix: 'bidding', clients: 6, durationMs: 3_000, maxRequests: 800, users: [1, 300], items: [1, 800], seed: 11 });
    ledger = r.ledger;
    await v1.stop();
    assert.equal(r.errors, 0, JSON.stringify(r.byStatus));
    assert.ok(r.requests > 50 && r.requests <= 800, `${r.requests} requests`);
    assert.equal(r.requests, Object.values(r.byStatus).reduce((a, b) => a + b, 0), 'every request is counted once by status');
    const writes = (r.byStatus['201'] ?? 0);
    assert.equal(ledger.length, writes, 'one ledger entry per acknowledged write');
    const kinds = new Set(ledger.map((e) => e.kind));
    assert.ok(kinds.has('bid') && kinds.has('comment'), `kinds ${[...kinds]}`);
    // The mix is about 15% writes (409s are refused bids, not writes).
    const share = (writes + r.rejected) / r.requests;
    assert.ok(share > 0.07 && share < 0.25, `write share ${share}`);
    assert.ok(r.timeline.length > 10 && r.timeline.every((b) => b.t % 100 === 0 && b.count > 0 && b.p50 <= b.p99 && b.p99 <= b.max));
    assert.equal(r.timeline.reduce((a, b) => a + b.count, 0), r.requests, 'the timeline accounts for every request');
  });

  it('finds every acknowledged write in v1, and in v2 after conversion', async () => {
    const clean = await checkLedger(dbs.v1.admin, 'v1', ledger);
    assert.equal(clean.checked, ledger.length);
    assert.deepEqual([clean.missing, clean.duplicated, clean.altered], [[], [], []]);
    await setupDatabase(dbs.db, 'v2', { database: 'ledger_v2', appUser: 'ledger_app', appPassword: 'pw' });
    await copyConverted(dbs.v1.admin, `${dbs.db.rootUrl}ledger_v2`);
    const v2 = await checkLedger(`${dbs.db.rootUrl}ledger_v2`, 'v2', ledger);
    assert.equal(v2.checked, ledger.length);
    assert.deepEqual([v2.missing, v2.duplicated, v2.altered], [[], [], []]);
  });

  it('catches an injected missing write, a duplicate and an altered amount', async () => {
    const bids = ledger.filter((e) => e.kind === 'bid');
    const comment = ledger.find((e) => e.kind === 'comment')!;
    const reg = ledger.find((e) => e.kind === 'register');
    assert.ok(bids.length >= 3);
    const db = dbs.v1.name;
    await dbs.db.query(`DELETE FROM ${db}.bids WHERE id = ?`, [bids[0].id]);
    await dbs.db.query(`INSERT INTO ${db}.bids (user_id, item_id, qty, amount, created_at) SELECT user_id, item_id, qty, amount, created_at FROM ${db}.bids WHERE id = ?`, [bids[1].id]);
    await dbs.db.query(`UPDATE ${db}.bids SET amount = amount + 0.01 WHERE id = ?`, [bids[2].id]);
    await dbs.db.query(`UPDATE ${db}.comments SET comment = CONCAT(comment, '!') WHERE id = ?`, [comment.id]);
    const withRepeat = reg ? [...ledger, reg] : ledger;
    const r = await checkLedger(dbs.v1.admin, 'v1', withRepeat);
    assert.equal(r.checked, withRepeat.length);
    assert.deepEqual(r.missing.map((e) => e.id), [bids[0].id]);
    const dupIds = r.duplicated.map((d) => `${d.entry.kind}:${d.entry.id}`).sort();
    assert.deepEqual(dupIds, [`bid:${bids[1].id}`, ...(reg ? [`register:${reg.id}`, `register:${reg.id}`] : [])].sort());
    assert.deepEqual(r.altered.map((a) => [a.entry.kind, a.entry.id, a.fields]).sort(),
      [['bid', bids[2].id, ['amount']], ['comment', comment.id, ['text']]].sort());

    const v2 = await checkLedger(`${dbs.db.rootUrl}ledger_v2`, 'v2', ledger);
    assert.deepEqual([v2.missing, v2.duplicated, v2.altered], [[], [], []], 'v2 copy was made before the damage');
    await dbs.db.query('UPDATE ledger_v2.item_bids SET amount_cents = amount_cents - 1 WHERE bid_id = ?', [bids[3]?.id ?? bids[2].id]);
    assert.equal((await checkLedger(`${dbs.db.rootUrl}ledger_v2`, 'v2', ledger)).altered.length, 1);
  });
});
