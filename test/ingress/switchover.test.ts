import { strict as assert } from 'node:assert';
import * as http from 'node:http';
import { ingressFor, request, sleep, startUpstream, until } from './helpers';

describe('ingress: hold → switch → release under 200 concurrent clients', () => {
  it('loses no request, fails none, and serves nothing from uold after unew served', async () => {
    const uold = await startUpstream('uold', 2);
    const unew = await startUpstream('unew', 2);
    const { ingress, control } = await ingressFor(uold);
    await control.addUpstream('unew', unew.url);

    const agent = new http.Agent({ keepAlive: true, maxSockets: 200 });
    const outcomes: Array<{ status: number; upstream: string; error?: string; sentAt: number }> = [];
    let stop = false;
    const client = async (i: number): Promise<void> => {
      for (let n = 0; !stop && n < 40; n += 1) {
        const sentAt = Date.now();
        const r = await request(`${ingress.url}/item/${i}/${n}`, { agent });
        outcomes.push({ status: r.status, upstream: r.status === 200 ? JSON.parse(r.body).upstream : '', error: r.error, sentAt });
      }
    };
    const clients = Array.from({ length: 200 }, (_, i) => client(i));

    await until(() => outcomes.length >= 400, 'traffic to flow');
    const hold = await control.hold(10_000);
    assert.equal(hold.changed, true);
    // Requests keep arriving while held; wait until some are queued.
    await until(async () => (await control.status()).held >= 50, 'requests to be held');
    const drained = await control.drained(5_000);
    assert.equal(drained.drained, true);
    assert.equal(drained.held, true);
    const heldBefore = (await control.status()).held;
    await control.switch('unew');
    const rel = await control.release();
    assert.equal(rel.target, 'unew');
    assert.ok(rel.released >= heldBefore, `released ${rel.released} ≥ ${heldBefore} held`);
    await sleep(300);
    stop = true;
    await Promise.all(clients);
    agent.destroy();

    // No request lost or failed: every client request got a 200.
    const failed = outcomes.filter((o) => o.status !== 200);
    assert.deepEqual(failed, [], 'no failed requests');

    // The served log agrees with the clients, and shows the order.
    const served = await control.servedAll();
    assert.equal(served.length, outcomes.length, 'one served record per client request');
    assert.equal(served.length, uold.seen.length + unew.seen.length);
    const old = served.filter((r) => r.upstream === 'uold');
    const neu = served.filter((r) => r.upstream === 'unew');
    assert.ok(old.length > 0 && neu.length >= rel.released, `uold ${old.length}, unew ${neu.length}`);
    const lastOldEnd = Math.max(...old.map((r) => r.end));
    const firstNewStart = Math.min(...neu.map((r) => r.start));
    assert.ok(lastOldEnd <= firstNewStart, `last uold reply ended ${lastOldEnd} before first unew request started ${firstNewStart}`);
    // Seq order too: every uold record precedes every unew record.
    assert.ok(Math.max(...old.map((r) => r.seq)) < Math.min(...neu.map((r) => r.seq)));

    const st = await control.status();
    assert.equal(st.state, 'forward');
    assert.equal(st.target, 'unew');
    assert.equal(st.counters.held, rel.released);
    assert.equal(st.counters.upstreamErrors, 0);
    assert.equal(st.counters.autoReleases, 0);
  });
});
