/** Shared set-up of the end-to-end tests: a live Uold stage, a worker, a workload, and the checks of the invariants. */
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as mysql from 'mysql2/promise';
import type { Client } from '@temporalio/client';
import { checkLedger } from '../../examples/auction/ledger-checker';
import { startUoldStage, type UoldStage } from '../../examples/auction/stage';
import { startWorkload, type WorkloadResult } from '../../examples/auction/workload/generator';
import { loadPlanFile } from '../../plan/load';
import { TASK_QUEUE, type UpgradeStatus } from '../../workflows/status';
import { ImagoClient } from '../../client/api';
import { statusQuery } from '../../workflows/messages';
import { IngressControlClient, atomicityOf } from '../../interceptors/ingress';
import { processesWithEnv } from '../../lib/proc-scan';

export const SIZE = { users: 300, items: 1_000, bids: 4_000 };

export async function stage(opts: { generalLog?: boolean } = {}): Promise<UoldStage> {
  const s = await startUoldStage({ ...SIZE, generalLog: opts.generalLog });
  Object.assign(process.env, s.env); // the in-process worker resolves the plan's env: references
  return s;
}

export function workload(s: UoldStage, durationMs: number, rate = 60) {
  return startWorkload({ baseUrl: s.url, mix: 'bidding', rate, durationMs, users: [1, SIZE.users], items: [1, SIZE.items], seed: 7 });
}

/**
 * A short testing phase, for tests whose subject lies elsewhere (the cut-over, rollback, abort,
 * durability): the gate still reads mirrored traffic, over 2 s, but no plan test, sandbox or load
 * test runs — test/e2e/upgrade.test.ts, tls.test.ts and the compare tests cover those. About 10 s
 * less per upgrade, which keeps `npm test` within its budget.
 */
export function briefTesting(p: any): void {
  p.tests = [];
  p.mirror.minDurationMs = 2_000;
  p.compare.minSamplesPerEndpoint = 2;
  p.sandbox = { enabled: false };
  p.loadTest = { ...p.loadTest, enabled: false };
}

export async function startUpgrade(client: Client, s: UoldStage, id: string, overrides?: (plan: any) => void, taskQueue = TASK_QUEUE) {
  const plan = loadPlanFile(s.writePlan(overrides));
  return (await ImagoClient.fromClient(client).start(plan, { workflowId: id, taskQueue })).handle;
}

export async function waitPhase(client: Client, id: string, phases: string[], timeoutMs = 90_000): Promise<UpgradeStatus> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const st = await client.workflow.getHandle(id).query(statusQuery);
    if (phases.includes(st.phase)) return st;
    if (Date.now() > deadline) throw new Error(`upgrade ${id} did not reach ${phases.join('|')} within ${timeoutMs} ms; it is in ${st.phase} (last error: ${st.lastError})`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Writes in Uold's general log by anyone but the application: must be none. */
export async function writesByOthersThanApp(s: UoldStage): Promise<string[]> {
  const rows = await s.db.query(
    "SELECT user_host, CONVERT(argument USING utf8mb4) AS q FROM mysql.general_log WHERE command_type = 'Query' AND user_host NOT LIKE 'auction[%' AND user_host NOT LIKE 'root[%'",
  ) as Array<{ user_host: string; q: string }>;
  return rows.filter((r) => /^\s*(INSERT|UPDATE|DELETE|REPLACE|CREATE|ALTER|DROP|TRUNCATE|GRANT|SET\s+GLOBAL)/i.test(r.q)).map((r) => `${r.user_host}: ${r.q}`);
}

/** Served-request records: after the first one served by Unew, none by Uold. */
export async function mixedStateViolations(s: UoldStage): Promise<{ uold: number; unew: number; violations: number }> {
  return atomicityOf(await new IngressControlClient(s.controlUrl, s.token, undefined, s.tls?.control).servedAll(0));
}

export async function unewDbUrl(s: UoldStage, upgradeId: string): Promise<string> {
  return fs.readFileSync(path.join(s.dir, 'universes', upgradeId, 'admin.url'), 'utf8').trim();
}

export async function countRows(url: string, table: string): Promise<number> {
  const c = await mysql.createConnection(url);
  try { const [[r]] = await c.query(`SELECT COUNT(*) AS n FROM ${table}`) as any; return Number(r.n); } finally { await c.end(); }
}

export type { WorkloadResult };

/** Processes of a universe still alive (by the IMAGO_UNIVERSE marker in their environment). */
export function universeProcesses(upgradeId: string): number[] {
  return processesWithEnv('IMAGO_UNIVERSE', upgradeId);
}

/** The processes a local universe's state file names (its MariaDB and its application), and whether each is alive. */
export function universeState(s: UoldStage, upgradeId: string): { dbAlive: boolean; appAlive: boolean } {
  const alive = (pid?: number) => { if (!pid) return false; try { process.kill(pid, 0); return true; } catch { return false; } };
  try {
    const st = JSON.parse(fs.readFileSync(path.join(universeDir(s, upgradeId), 'state.json'), 'utf8')) as { dbPid?: number; appPid?: number };
    return { dbAlive: alive(st.dbPid), appAlive: alive(st.appPid) };
  } catch { return { dbAlive: false, appAlive: false }; }
}

export function universeDir(s: UoldStage, upgradeId: string): string {
  return path.join(s.dir, 'universes', upgradeId);
}

/** Uold still serves through the interceptor, from Uold, with nothing held or mirrored. */
export async function expectUoldServing(s: UoldStage): Promise<{ status: number; target: string; state: string }> {
  const r = await fetch(`${s.url}/regions`);
  const st = await new IngressControlClient(s.controlUrl, s.token, undefined, s.tls?.control).status();
  return { status: r.status, target: st.target, state: st.state };
}

/** After a completed upgrade: no request served by Uold after Unew's first, and every acknowledged write in Unew (none duplicated or altered). */
export async function expectCleanSwitch(s: UoldStage, upgradeId: string, w: WorkloadResult): Promise<void> {
  assert.equal((await mixedStateViolations(s)).violations, 0, 'no request served by Uold after the first one served by Unew');
  const ledger = await checkLedger(fs.readFileSync(path.join(universeDir(s, upgradeId), 'admin.url'), 'utf8').trim(), 'v2', w.ledger);
  assert.deepEqual([ledger.missing.length, ledger.duplicated.length, ledger.altered.length], [0, 0, 0], 'every acknowledged write is in Unew, once, unaltered');
}
