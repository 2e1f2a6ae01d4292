/**
 * Records workflow histories of real upgrades of the auction, for the replay
 * suite (test/workflows/replay.unit.test.ts): each is replayed against the
 * current workflow code, so a change that is not deterministic fails a test,
 * not a running upgrade.
 *
 *   npx tsx scripts/record-histories.ts [--out test/workflows/histories] [--only rolled-back,completed]
 *
 * Records five: completed, aborted (in testing), awaiting approval (an open
 * history), a run that continued as new (on a dev server whose history
 * limits are lowered), and an upgrade rolled back after its switchover
 * (postSwitchover.rollback). `--only` records the named ones alone. Run it when the workflow's code changes on purpose in
 * a way old histories cannot follow, and commit the new files (see
 * docs/upgrade-driver.md, "Changing the workflow safely").
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { temporal } from '@temporalio/proto';
import { startSampleWorld } from '../examples/auction/world';
import { loadPlanFile } from '../plan/load';
import { statusQuery } from '../workflows/messages';

const SIZE = { users: 100, items: 300, bids: 1_000 };

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { out: { type: 'string', default: path.join(__dirname, '..', 'test', 'workflows', 'histories') }, only: { type: 'string' } } });
  const out = values.out!;
  const only = values.only ? new Set(values.only.split(',')) : null;
  const wanted = (...names: string[]) => !only || names.some((n) => only.has(n));
  fs.mkdirSync(out, { recursive: true });
  // Lowered limits: the approval wait continues as new, as a days-long wait would.
  const world = await startSampleWorld({ size: SIZE, rate: 30, taskQueue: 'record', server: { dynamicConfig: { 'limit.historyCount.suggestContinueAsNew': 30 } } });
  const { client, imago, stage } = world;
  const plan = (name: string, over: (p: any) => void) => loadPlanFile(stage.writePlan((p) => {
    p.name = name; p.tests = []; p.mirror.minDurationMs = 2_000; p.compare.minSamplesPerEndpoint = 2; p.postSwitchover.windowMs = 300; over(p);
  }));
  // Protobuf binary (the History message), decoded by the replay test with the same @temporalio/proto.
  // (The SDK's JSON reader, historyFromJSON, meets two copies of protobufjs in this install and refuses.)
  const save = async (name: string, workflowId: string, runId?: string) => {
    const history = await client.workflow.getHandle(workflowId, runId).fetchHistory();
    fs.writeFileSync(path.join(out, `${name}.binpb`), temporal.api.history.v1.History.encode(history).finish());
    console.log(`${name}: ${history.events?.length} events`);
  };
  const waitFor = async (id: string, pred: (s: Awaited<ReturnType<typeof imago.status>>) => boolean) => {
    for (;;) {
      const s = await client.workflow.getHandle(id).query(statusQuery).catch(() => null);
      if (s && pred(s)) return s;
      await new Promise((r) => setTimeout(r, 300));
    }
  };
  try {
    // Aborted in testing: compensation runs.
    if (wanted('aborted')) {
      const aborted = await imago.start(plan('record-aborted', (p) => { p.approval.policy = 'manual'; }), { taskQueue: 'record' });
      await waitFor(aborted.workflowId, (s) => s.phase === 'testing');
      await imago.abort(aborted.workflowId, 'recording an aborted upgrade');
      await client.workflow.getHandle(aborted.workflowId).result().catch(() => undefined);
      await save('aborted', aborted.workflowId);
    }

    // Awaiting approval, continued as new on the way: the first run ends in continue-as-new, the last one is open.
    if (wanted('continued-as-new', 'awaiting-approval')) {
      const waiting = await imago.start(plan('record-waiting', (p) => { p.approval.policy = 'manual'; }), { taskQueue: 'record' });
      const st = await waitFor(waiting.workflowId, (s) => s.phase === 'awaiting-approval' && s.runs >= 2);
      await new Promise((r) => setTimeout(r, 2_000));
      await save('continued-as-new', waiting.workflowId, waiting.runId);
      await save('awaiting-approval', waiting.workflowId);
      console.log(`awaiting approval after ${st.runs} runs`);
      await imago.abort(waiting.workflowId, 'recorded');
      await client.workflow.getHandle(waiting.workflowId).result().catch(() => undefined);
    }

    // Rolled back after the switchover (before 'completed', which leaves the interceptor on Unew).
    if (wanted('rolled-back')) {
      const pw = crypto.randomBytes(8).toString('hex');
      await stage.db.createUser('imago_writer', pw, [`SELECT, INSERT, UPDATE, DELETE, CREATE, DROP ON \`${stage.database}\`.*`]);
      process.env.IMAGO_UOLD_WRITER_URL = stage.db.urlFor('imago_writer', pw, stage.database);
      const rb = await imago.start(plan('record-rolled-back', (p) => {
        p.approval.policy = 'auto'; p.postSwitchover.finalize = 'manual';
        p.postSwitchover.rollback = { enabled: true, uoldWriterUrlRef: 'env:IMAGO_UOLD_WRITER_URL' };
      }), { taskQueue: 'record' });
      await waitFor(rb.workflowId, (s) => s.phase === 'post-switchover' && !!s.rollback?.available);
      await new Promise((r) => setTimeout(r, 3_000));
      await imago.rollback(rb.workflowId, 'recording a rolled-back upgrade');
      await client.workflow.getHandle(rb.workflowId).result();
      await save('rolled-back', rb.workflowId);
    }

    // Completed: the whole upgrade, switchover included (last: it leaves the interceptor on Unew).
    if (wanted('completed')) {
      const done = await imago.start(plan('record-completed', (p) => { p.approval.policy = 'auto'; }), { taskQueue: 'record' });
      await client.workflow.getHandle(done.workflowId).result();
      await save('completed', done.workflowId);
    }
  } finally {
    await world.stop();
  }
}

main().then(() => process.exit(0), (err) => { console.error(err); process.exit(1); });
