/** What one (fault, strategy) run leaves behind, and the evidence collectors both strategies share. */
import * as mysql from 'mysql2/promise';
import { getJson, startAuction } from '../examples/auction/launcher';
import type { WorkloadResult, TimelineBucket } from '../examples/auction/workload/generator';
import type { LedgerReport } from '../examples/auction/ledger-checker';
import { NOUNS } from '../examples/auction/data';

export type Strategy = 'rolling' | 'imago';

export interface ImagoEvidence {
  outcome: string;
  switched: boolean;
  /** Last phase entered before aborting/failed/completed. */
  lastPhase: string;
  lastError: string | null;
  gate: unknown;
  testsFailed: string[];
  compare: { pass: boolean; reasons: string[] } | null;
  verificationDifferences: number | null;
  cutover: { totalMs: number; holdMs: number } | null;
}

export interface RunEvidence {
  strategy: Strategy;
  fault: string;
  type: number;
  /** How the recipe was applied to this strategy ('n/a: ...' when it has no equivalent). */
  applied: string;
  durationMs: number;
  /** When the upgrade procedure started, ms since the workload started. */
  upgradeStartMs: number;
  workload: Omit<WorkloadResult, 'ledger' | 'timeline' | 'latencies'> & { p50: number; p99: number };
  timeline: TimelineBucket[];
  ledger: { checked: number; missing: number; duplicated: number; altered: number } | null;
  probe: ProbeReport | null;
  grants: { account: string; excessive: string[] } | null;
  imago: ImagoEvidence | null;
  notes: string[];
}

export function summariseWorkload(w: WorkloadResult): RunEvidence['workload'] {
  const { ledger: _l, timeline: _t, latencies, ...rest } = w;
  return { ...rest, p50: latencies.p50, p99: latencies.p99 };
}

export function ledgerSummary(r: LedgerReport): RunEvidence['ledger'] {
  return { checked: r.checked, missing: r.missing.length, duplicated: r.duplicated.length, altered: r.altered.length };
}

export interface ProbeReport { checked: number; mismatches: number; failed: number; examples: string[] }

/** GET paths the probe compares: catalog, items, users, category pages, searches. */
export function probePaths(users: number, items: number): string[] {
  const paths = ['/regions', '/categories', '/categories/1/items?page=0&size=20', '/categories/3/items?page=1&size=20'];
  for (let i = 1; i <= 30; i++) paths.push(`/items/${1 + ((i * 37) % items)}`);
  for (let i = 1; i <= 15; i++) paths.push(`/users/${1 + ((i * 11) % users)}`);
  for (const n of NOUNS.slice(0, 5)) paths.push(`/search?q=${n}&size=20`);
  return paths;
}

/**
 * Post-upgrade reply probe: the replies live clients get now (servedUrl) vs
 * those of a fault-free v2 started on the same database (admin URL). A 200
 * with a different body is a wrong reply (latent error); non-200 is counted
 * apart (it is already visible as an error).
 */
export async function probeReplies(servedUrl: string, refDbUrl: string, paths: string[], logFile: string): Promise<ProbeReport> {
  const ref = await startAuction({ version: 'v2', dbUrl: refDbUrl, logFile, healthTimeoutMs: 20_000 });
  const report: ProbeReport = { checked: 0, mismatches: 0, failed: 0, examples: [] };
  try {
    for (const p of paths) {
      const [a, b] = await Promise.all([getJson(servedUrl + p, 5_000).catch(() => ({ status: 0, body: undefined })), getJson(ref.url + p, 5_000).catch(() => ({ status: 0, body: undefined }))]);
      report.checked++;
      if (a.status !== 200) { report.failed++; continue; }
      if (b.status === 200 && JSON.stringify(a.body) !== JSON.stringify(b.body)) {
        report.mismatches++;
        if (report.examples.length < 3) report.examples.push(`${p}: ${firstDiff(a.body, b.body)}`);
      }
    }
  } finally {
    await ref.stop();
  }
  return report;
}

function firstDiff(a: unknown, b: unknown, at = ''): string {
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return `${at || '/'} served ${JSON.stringify(a)?.slice(0, 60)} ≠ expected ${JSON.stringify(b)?.slice(0, 60)}`;
  for (const k of new Set([...Object.keys(a), ...Object.keys(b)])) {
    const x = (a as any)[k], y = (b as any)[k];
    if (JSON.stringify(x) !== JSON.stringify(y)) return firstDiff(x, y, `${at}/${k}`);
  }
  return at;
}

const DANGEROUS = /ALL PRIVILEGES|GRANT OPTION|\bSUPER\b|\bFILE\b|CREATE USER|\bDROP\b|\bALTER\b|\bSHUTDOWN\b|\bPROCESS\b/i;

/**
 * Grants of an application account beyond what the app needs (anything on *.*, DDL, GRANT OPTION, admin privileges).
 * Deliberately not activities/grants.ts: the classifier must not judge Imago with Imago's own check,
 * and it reads the rolling upgrade's account the same way.
 */
export async function excessiveGrants(adminUrl: string, user: string): Promise<string[]> {
  const c = await mysql.createConnection({ uri: adminUrl });
  try {
    const out: string[] = [];
    for (const host of ['127.0.0.1', 'localhost', '%']) {
      const [rows] = await c.query('SHOW GRANTS FOR ?@?', [user, host]).catch(() => [[]]) as [any[], unknown];
      for (const r of rows) {
        const g = String(Object.values(r)[0]);
        if (DANGEROUS.test(g) || (/ON \*\.\*/.test(g) && !/^GRANT USAGE ON/.test(g))) out.push(g.replace(/IDENTIFIED BY PASSWORD '[^']*'/, ''));
      }
    }
    return out;
  } finally {
    await c.end();
  }
}

export async function tableExists(adminUrl: string, db: string, table: string): Promise<boolean> {
  const c = await mysql.createConnection({ uri: adminUrl });
  try {
    const [rows] = await c.query('SELECT 1 FROM information_schema.tables WHERE table_schema = ? AND table_name = ?', [db, table]) as [any[], unknown];
    return rows.length > 0;
  } finally { await c.end(); }
}
