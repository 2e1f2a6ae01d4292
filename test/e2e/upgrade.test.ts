import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { temporalFixture, onTeardown, workflowBundleFixture } from '../fixtures/servers';
import { createWorker } from '../../worker/run';
import { IngressControlClient } from '../../interceptors/ingress';
import { checkLedger } from '../../examples/auction/ledger-checker';
import type { UpgradeStatus } from '../../workflows/status';
import { mixedStateViolations, stage, startUpgrade, unewDbUrl, workload, writesByOthersThanApp } from './harness';

describe('end to end: auction v1 → v2 under the bidding mix, local provider', function () {
  this.timeout(300_000);
  let stopWorker: () => Promise<void>;

  before(async () => {
    const t = await temporalFixture();
    // Its own task queue: other suites run workers (e.g. the client's test double) on the default one.
    const { worker, close } = await createWorker({ address: t.address, taskQueue: 'imago-e2e', workflowBundlePath: await workflowBundleFixture() });
    const running = worker.run();
    stopWorker = async () => { worker.shutdown(); await running; await close(); };
    onTeardown(async () => { if (worker.getState() === 'RUNNING') await stopWorker(); });
  });

  it('completes: no acknowledged write lost, no failed request, no mixed state, Uold untouched', async () => {
    const { client } = await temporalFixture();
    const s = await stage({ generalLog: true });
    onTeardown(() => s.stop());
    const load = workload(s, 180_000);
    const id = `e2e-complete-${Date.now()}`;
    const handle = await startUpgrade(client, s, id, undefined, 'imago-e2e');
    let status: UpgradeStatus;
    try {
      status = await handle.result();
    } finally {
      load.stop();
    }
    const w = await load.done;
    assert.equal(status.outcome, 'completed', status.lastError ?? '');
    assert.ok(status.pointOfNoReturnPassed);
    assert.deepEqual(status.timings.map((t) => t.phase).filter((p) => p !== 'awaiting-approval'),
      ['bootstrapping', 'data-transfer', 'testing', 'termination', 'switchover', 'post-switchover', 'completed']);
    assert.equal(status.gate?.pass, true, JSON.stringify(status.gate));
    assert.equal(status.verification?.differences, 0);
    const cut = status.cutovers.at(-1)!;
    assert.equal(cut.switched, true);

    // Every acknowledged write is in Unew, converted; none duplicated or altered.
    assert.ok(w.ledger.length > 20, `the workload wrote (${w.ledger.length} acknowledged writes)`);
    const ledger = await checkLedger(await unewDbUrl(s, id), 'v2', w.ledger);
    assert.deepEqual({ missing: ledger.missing.length, duplicated: ledger.duplicated.length, altered: ledger.altered.length }, { missing: 0, duplicated: 0, altered: 0 });
    // No client request failed because of the upgrade.
    if (w.errors) {
      const recs = await new IngressControlClient(s.controlUrl, s.token).servedAll(0);
      const t0 = status.timings.find((t) => t.phase === 'termination')!.startedAt;
      console.log('failed requests:', JSON.stringify(recs.filter((r) => r.status >= 500).map((r) => ({ ...r, relToTermination: r.start - t0 }))));
      console.log(status.timings.map((t) => `${t.phase}@${t.startedAt - t0}`).join(' '));
    }
    assert.equal(w.errors, 0, JSON.stringify(w.byStatus));
    // No request was served by Uold after the first one served by Unew.
    const served = await mixedStateViolations(s);
    assert.ok(served.unew > 0, 'Unew served after the switch');
    assert.equal(served.violations, 0);
    // Uold's database received no write from the upgrade.
    assert.deepEqual(await writesByOthersThanApp(s), []);
    // Shadow writes: live writes were mirrored into the sandbox (never into Unew: the ledger above finds no
    // duplicate and verification no difference), read back in both universes, and the sandbox is gone.
    const sb = status.sandbox;
    assert.ok(sb && 'appUrl' in sb && sb.destroyedAt !== null, JSON.stringify(sb));
    const writes = status.compare!.endpoints.filter((e) => e.kind === 'write');
    assert.ok(writes.reduce((n, e) => n + e.samples, 0) > 0, 'writes were mirrored and judged');
    assert.ok(writes.some((e) => (e.readBacks ?? 0) > 0), 'what they stored was read back');
    assert.ok(!fs.existsSync(path.join(s.dir, 'universes', id, 'sandbox')), "no sandbox data left");
    assert.equal((await fetch(`${sb.appUrl}/health`).then((r) => r.status, () => 'gone')), 'gone', 'no sandbox process left');
    // The pause clients saw, for the record.
    const pauseMs = Math.max(0, ...w.timeline.map((b) => b.max));
    console.log(`      pause: cut-over total ${cut.totalMs.toFixed(1)} ms (hold ${cut.holdMs.toFixed(1)}, drain ${cut.drainMs.toFixed(1)}, flush ${cut.flushMs.toFixed(1)}, verify ${cut.verifyMs} ms); largest client latency ${pauseMs} ms; ${w.requests} requests, ${w.ledger.length} writes`);
    fs.writeFileSync(path.join(s.dir, 'status.json'), JSON.stringify(status));
  });
});
