/**
 * The cut-over's dry run (`imago cutover check`): every check with its
 * figure, nobody held. It passes on a healthy upgrade, and fails, with the
 * reason, when an interceptor's token is wrong, when the hold budget is
 * below the measured drain + flush, and when Unew lags beyond the limit.
 */
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as mysql from 'mysql2/promise';
import { ImagoClient } from '../../client/api';
import { IngressControlClient } from '../../interceptors/ingress';
import { loadPlanFile } from '../../plan/load';
import type { CutoverCheckReport } from '../../workflows/status';
import type { UoldStage } from '../../examples/auction/stage';
import { onTeardown, temporalFixture, workerFixture } from '../fixtures/servers';
import { briefTesting, stage, universeDir, waitPhase, workload } from './harness';

const QUEUE = 'imago-cutover-check';
const failing = (r: CutoverCheckReport) => r.checks.filter((c) => !c.ok);

describe('cut-over dry run (imago cutover check)', function () {
  this.timeout(300_000);
  let s: UoldStage;
  let imago: ImagoClient;
  let tokenFile: string;

  before(async () => {
    const t = await temporalFixture();
    await workerFixture({ taskQueue: QUEUE });
    s = await stage();
    onTeardown(() => s.stop());
    tokenFile = path.join(s.dir, 'ingress.token');
    fs.writeFileSync(tokenFile, s.token);
    imago = ImagoClient.fromClient(t.client);
  });

  async function upgradeAwaitingApproval(name: string, over: (p: any) => void = () => undefined) {
    const plan = loadPlanFile(s.writePlan((p) => {
      p.name = name;
      p.approval.policy = 'manual';
      p.uold.ingress[0].tokenRef = `file:${tokenFile}`;
      briefTesting(p);
      over(p);
    }));
    const { workflowId } = await imago.start(plan, { taskQueue: QUEUE });
    const { client } = await temporalFixture();
    await waitPhase(client, workflowId, ['awaiting-approval'], 180_000);
    return workflowId;
  }

  it('passes on a healthy upgrade with each figure, holds nobody; fails naming a wrong token and a lagging Unew', async () => {
    const load = workload(s, 240_000, 40);
    try {
      const id = await upgradeAwaitingApproval('check-healthy');
      const control = new IngressControlClient(s.controlUrl, s.token);
      const heldBefore = (await control.status()).counters.held;

      const ok = await imago.cutoverCheck(id);
      assert.equal(ok.ok, true, JSON.stringify(failing(ok)));
      const names = ok.checks.map((c) => c.name);
      for (const n of ['drain', 'lag', 'smoke test', 'hold budget', "Uold's position"]) assert.ok(names.includes(n), `check '${n}' is reported: ${names.join(', ')}`);
      const figure = (n: string) => ok.checks.find((c) => c.name === n)!.ms!;
      assert.ok(figure('lag') >= 0 && figure('lag') <= 500, `lag measured: ${figure('lag')} ms`);
      assert.ok(figure('hold budget') >= figure('lag'), 'the budget check adds drain, flush and smoke test');
      const st = await control.status();
      assert.equal(st.hold, null, 'the dry run held nobody');
      assert.equal(st.counters.held, heldBefore, 'no request was held by the dry run');

      // A wrong token: the interceptor refuses it, and the check says which one.
      fs.writeFileSync(tokenFile, 'wrong-token-0123456789');
      const badToken = await imago.cutoverCheck(id);
      fs.writeFileSync(tokenFile, s.token);
      assert.equal(badToken.ok, false);
      const refused = failing(badToken).find((c) => c.name === `interceptor ${s.controlUrl}`);
      assert.ok(refused, JSON.stringify(failing(badToken)));
      assert.match(refused!.detail, /INGRESS_UNAUTHORIZED/);

      // Unew lagging: its bids table locked, so the transfer cannot apply what clients keep writing to Uold.
      const unew = await mysql.createConnection(fs.readFileSync(path.join(universeDir(s, id), 'admin.url'), 'utf8').trim());
      await unew.query('LOCK TABLES item_bids WRITE');
      await new Promise((r) => setTimeout(r, 1_500));
      const checking = imago.cutoverCheck(id);
      // Unlocked once the flush measure has given up (switchover.flushTimeoutMs, 2 s), so the rest of the dry run can read Unew.
      await new Promise((r) => setTimeout(r, 4_000));
      await unew.query('UNLOCK TABLES');
      await unew.end();
      const lagging = await checking;
      assert.equal(lagging.ok, false);
      const lag = failing(lagging).find((c) => c.name === 'lag');
      assert.ok(lag, JSON.stringify(failing(lagging)));
      assert.match(lag!.detail, /TRANSFER_FLUSH_TIMEOUT|limit switchover\.maxLagMsToBegin/);
      await imago.abort(id, 'test done');
    } finally {
      load.stop();
      await load.done;
    }
  });

  it('fails when the hold budget is below the measured drain + flush', async () => {
    const load = workload(s, 240_000, 60);
    // Bids made slow on Uold (their table locked 150 ms out of every 250), so requests take that long to drain.
    const root = await mysql.createConnection(s.db.urlFor('root', '', s.database).replace('root:@', 'root@'));
    let locking = true;
    const locker = (async () => {
      while (locking) {
        await root.query('LOCK TABLES bids WRITE');
        await new Promise((r) => setTimeout(r, 150));
        await root.query('UNLOCK TABLES');
        await new Promise((r) => setTimeout(r, 100));
      }
    })();
    try {
      const id = await upgradeAwaitingApproval('check-budget', (p) => { Object.assign(p.switchover, { holdTimeoutMs: 100, drainTimeoutMs: 40, flushTimeoutMs: 40 }); });
      await new Promise((r) => setTimeout(r, 3_000)); // slow requests among the latest ones
      const r = await imago.cutoverCheck(id);
      assert.equal(r.ok, false);
      const budget = failing(r).find((c) => c.name === 'hold budget');
      assert.ok(budget, JSON.stringify(r.checks));
      assert.match(budget!.detail, /75 ms of the 100 ms hold are usable before the switch; the measured drain \d+ ms \+ flush \d+ ms \+ smoke test \d+ ms = \d+ ms: raise switchover\.holdTimeoutMs/);
      assert.ok(budget!.ms! > 75);
      await imago.abort(id, 'test done');
    } finally {
      locking = false;
      await locker.catch(() => undefined);
      await root.end();
      load.stop();
      await load.done;
    }
  });
});
