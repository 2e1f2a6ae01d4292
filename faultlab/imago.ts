/**
 * One Imago upgrade of the auction site under the bidding mix, with a fault
 * recipe applied to Unew: launch-time changes to Unew's application (through
 * the same v2 wrapper the rolling front-ends use), SQL appended to the v2
 * schema file the workflow installs in Unew's own store (Unew's app account
 * is 'app'), an omitted schema step as an empty schema file. Uold is the
 * stage of examples/auction/stage.ts; the workflow runs on a real worker.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Client } from '@temporalio/client';
import { startUoldStage } from '../examples/auction/stage';
import { schemaSql } from '../examples/auction/database';
import { startWorkload } from '../examples/auction/workload/generator';
import { checkLedger } from '../examples/auction/ledger-checker';
import { loadPlanFile } from '../plan/load';
import type { UpgradeStatus } from '../workflows/status';
import { ImagoClient } from '../client/api';
import { abortUpdate, statusQuery } from '../workflows/messages';
import { recipeSql, type FaultRecipe } from './catalog';
import { recipeEnv, type RunOptions } from './rolling';
import { excessiveGrants, ledgerSummary, probePaths, probeReplies, summariseWorkload, type ImagoEvidence, type RunEvidence } from './evidence';

export async function runImago(f: FaultRecipe, o: RunOptions & { client: Client; postSwitchMs?: number }): Promise<RunEvidence> {
  const log = o.log ?? (() => undefined);
  const started = Date.now();
  const notes: string[] = [];
  const stage = await startUoldStage({ ...o.size, dir: o.dir });
  try {
    Object.assign(process.env, stage.env); // the in-process worker resolves the plan's env: references
    const env = await recipeEnv(f, stage.db.port);
    let schemaFile = path.join(o.dir, 'schema-v2.sql');
    fs.writeFileSync(schemaFile, f.omitStep === 'schema' ? 'SELECT 1;\n' : `${schemaSql('v2')}\n${recipeSql(f, 'auction', 'app').map((s) => `${s};`).join('\n')}\n`);
    if (!f.omitStep && !f.sql && !f.perUserSql) schemaFile = path.join(__dirname, '..', 'examples', 'auction', 'schema', 'v2.sql');
    // Short: the id is part of Unew's MariaDB socket path (108-byte limit of Unix sockets).
    const id = `fl-${Date.now().toString(36)}`;
    const plan = loadPlanFile(stage.writePlan((p) => {
      p.unew.app.command = [process.execPath, '--require', require.resolve('tsx/cjs'), path.join(__dirname, 'v2-wrapper.ts')];
      p.unew.app.env = { ...(p.unew.app.env ?? {}), ...env };
      p.unew.app.startTimeoutMs = 15_000;
      p.unew.schemaFile = schemaFile;
      p.mirror.minDurationMs = 5_000;
      p.postSwitchover.windowMs = 1_000;
    }));
    const t0 = Date.now();
    const load = startWorkload({ baseUrl: stage.url, mix: 'bidding', rate: o.rate, durationMs: o.durationMs + o.warmupMs + 30_000, users: [1, o.size.users], items: [1, o.size.items], seed: 7 });
    await new Promise((r) => setTimeout(r, o.warmupMs));
    const upgradeStartMs = Date.now() - t0;
    log(`imago: upgrade ${id} (fault ${f.id})`);
    const { handle } = await ImagoClient.fromClient(o.client).start(plan, { workflowId: id });
    let status: UpgradeStatus;
    const bound = new Promise<'timeout'>((r) => { const t = setTimeout(() => r('timeout'), o.durationMs); t.unref(); });
    // A failed workflow throws from result(): its status is still there to query.
    const settled = (handle.result() as Promise<UpgradeStatus>).catch(() => handle.query(statusQuery));
    const res = await Promise.race([settled, bound]);
    let retrying: string | null = null;
    if (res === 'timeout') {
      notes.push(`upgrade not finished within ${o.durationMs} ms: aborted by the campaign`);
      // What kept it from finishing: an activity retrying (e.g. Unew's health check).
      const d = await handle.describe().catch(() => undefined);
      const pa = (d?.raw as any)?.pendingActivities?.[0];
      if (pa) retrying = `${pa.activityType?.name ?? 'activity'} retrying (attempt ${pa.attempt}): ${String(pa.lastFailure?.message ?? '').slice(0, 300)}`;
      await handle.executeUpdate(abortUpdate, { args: [{ reason: 'faultlab time bound' }] }).catch(() => undefined);
      status = await Promise.race([settled, new Promise<never>((_, rej) => setTimeout(() => rej(new Error('abort timeout')), 30_000))])
        .catch(async () => {
          const st = await handle.query(statusQuery);
          await handle.terminate('faultlab time bound').catch(() => undefined);
          notes.push('abort did not finish in 30 s: workflow terminated (its activities kept retrying)');
          return { ...st, outcome: 'aborted' as const };
        });
    } else {
      status = res;
    }
    const switched = status.cutovers.some((c) => c.switched);
    // status.lastError already holds the innermost cause (describeFailure in the workflow);
    // at the time bound, what was retrying tells more than "aborted".
    if (retrying) status = { ...status, lastError: retrying };
    // Keep the load on a little after the switch: faults that only writes reveal show up now.
    if (switched) await new Promise((r) => setTimeout(r, o.postSwitchMs ?? 4_000));
    load.stop();
    const w = await load.done;
    const unewAdmin = switched ? fs.readFileSync(path.join(stage.dir, 'universes', id, 'admin.url'), 'utf8').trim() : null;
    const ledger = unewAdmin ? await checkLedger(unewAdmin, 'v2', w.ledger) : await checkLedger(stage.db.urlFor('root', '', 'auction').replace('root:@', 'root@'), 'v1', w.ledger);
    const probe = unewAdmin ? await probeReplies(stage.url, unewAdmin, probePaths(o.size.users, o.size.items), path.join(o.dir, 'reference-v2.log')) : null;
    const grants = unewAdmin ? { account: 'app (Unew)', excessive: await excessiveGrants(unewAdmin, 'app') } : null;
    if (!switched) notes.push('no switchover: Uold kept serving; ledger checked on Uold');
    return {
      strategy: 'imago', fault: f.id, type: f.type, applied: describeImago(f), durationMs: Date.now() - started, upgradeStartMs,
      workload: summariseWorkload(w), timeline: w.timeline, ledger: ledgerSummary(ledger), probe, grants, imago: imagoEvidence(status, switched), notes,
    };
  } finally {
    await stage.stop();
  }
}

function imagoEvidence(st: UpgradeStatus, switched: boolean): ImagoEvidence {
  const phases = st.timings.map((t) => t.phase).filter((p) => !['aborting', 'aborted', 'failed', 'completed'].includes(p));
  const gate = st.gate;
  const cut = st.cutovers.find((c) => c.switched) ?? null;
  return {
    outcome: st.outcome, switched, lastPhase: phases.at(-1) ?? 'bootstrapping', lastError: st.lastError,
    gate, testsFailed: st.tests.filter((t) => !t.passed).map((t) => t.name),
    compare: gate?.compare ? { pass: gate.compare.pass, reasons: gate.compare.reasons } : null,
    verificationDifferences: st.verification?.differences ?? null,
    cutover: cut ? { totalMs: cut.totalMs, holdMs: cut.holdMs } : null,
  };
}

function describeImago(f: FaultRecipe): string {
  const parts: string[] = [];
  if (f.appEnv) parts.push(`Unew app env ${Object.keys(f.appEnv).join(',')}`);
  if (f.dbPortClosed) parts.push('Unew DB port → closed port');
  if (f.listenOnBusyPort) parts.push("Unew app listens on Uold DB's port");
  if (f.sql || f.perUserSql) parts.push("SQL appended to Unew's schema file");
  if (f.omitStep) parts.push('empty schema file');
  if (f.schemaAfterApp) parts.push("n/a: the workflow fixes the order (schema before app)");
  return parts.join('; ') || 'none';
}
