/**
 * The fault-injection campaign: every (fault, strategy) of the catalog under
 * the bidding mix, classified from its evidence, plus — in the same run — the
 * overhead the ingress interceptor I adds (direct vs through I) and the
 * switchover pause (from the control run's Imago upgrade). Writes
 * campaign.md and campaign.json side by side.
 *
 *   npx tsx faultlab/campaign.ts [--subset fast] [--faults a,b] [--out dir]
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { Client, Connection } from '@temporalio/client';
import { TemporalDevServer } from '../lib/temporal-server';
import { stopAll } from '../lib/proc';
import { createWorker } from '../worker/run';
import { startUoldStage } from '../examples/auction/stage';
import { runWorkload } from '../examples/auction/workload/generator';
import { CATALOG, FAST_SUBSET, FAULT_TYPES, NO_FAULT, faultById, type FaultRecipe } from './catalog';
import { classify, type Classification } from './classify';
import { runRolling, type RunOptions } from './rolling';
import { runImago } from './imago';
import type { RunEvidence, Strategy } from './evidence';

export interface CampaignRow { fault: FaultRecipe; strategy: Strategy; evidence?: RunEvidence; classification?: Classification; error?: string }
export interface Overhead { direct: Measure; throughI: Measure; throughputOverheadPct: number; p50OverheadMs: number }
interface Measure { throughput: number; p50: number; p99: number; errors: number }
export interface CampaignResult { startedAt: string; durationMs: number; rows: CampaignRow[]; overhead: Overhead | null; switchover: { totalMs: number; holdMs: number; maxClientLatencyMs: number } | null }

export const SIZE = { users: 300, items: 1_000, bids: 4_000 };

export async function measureOverhead(dir: string): Promise<Overhead> {
  const stage = await startUoldStage({ ...SIZE, dir });
  try {
    const one = async (url: string): Promise<Measure> => {
      const r = await runWorkload({ baseUrl: url, mix: 'bidding', clients: 8, durationMs: 5_000, users: [1, SIZE.users], items: [1, SIZE.items], seed: 3 });
      return { throughput: r.throughput, p50: r.latencies.p50, p99: r.latencies.p99, errors: r.errors };
    };
    await one(stage.app.url); // warm-up
    const direct = await one(stage.app.url);
    const throughI = await one(stage.url);
    return { direct, throughI, throughputOverheadPct: Math.round((1 - throughI.throughput / direct.throughput) * 1000) / 10, p50OverheadMs: Math.round((throughI.p50 - direct.p50) * 100) / 100 };
  } finally { await stage.stop(); }
}

export async function runCampaign(opts: { faults: FaultRecipe[]; strategies?: Strategy[]; out: string; run?: Partial<RunOptions>; rollingMs?: number; overhead?: boolean; log?: (m: string) => void }): Promise<CampaignResult> {
  const log = opts.log ?? ((m: string) => process.stdout.write(`${new Date().toISOString().slice(11, 19)} ${m}\n`));
  const started = Date.now();
  fs.mkdirSync(opts.out, { recursive: true });
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'fl-'));
  const server = await new TemporalDevServer().start();
  const connection = await Connection.connect({ address: server.address });
  const client = new Client({ connection, namespace: server.namespace });
  const { worker, close } = await createWorker({ address: server.address, namespace: server.namespace });
  const running = worker.run();
  const rows: CampaignRow[] = [];
  let overhead: Overhead | null = null;
  try {
    if (opts.overhead !== false) { log('overhead: direct vs through I'); overhead = await measureOverhead(path.join(work, 'overhead')); }
    let n = 0;
    for (const fault of opts.faults) {
      for (const strategy of opts.strategies ?? ['rolling', 'imago'] as Strategy[]) {
        const dir = path.join(work, `${n++}${strategy[0]}`);
        const base: RunOptions = { dir, size: SIZE, rate: 40, warmupMs: 3_000, log, ...opts.run, durationMs: strategy === 'rolling' ? opts.rollingMs ?? 20_000 : opts.run?.durationMs ?? 90_000 };
        log(`${strategy} × ${fault.id}`);
        const row: CampaignRow = { fault, strategy };
        try {
          row.evidence = strategy === 'rolling' ? await runRolling(fault, base) : await runImago(fault, { ...base, client });
          row.classification = classify(row.evidence);
          log(`  → ${row.classification.impact}${row.classification.caughtBeforeSwitchover !== undefined ? ` (caught: ${row.classification.caughtBeforeSwitchover ? row.classification.caughtBy : 'no'})` : ''} in ${row.evidence.durationMs} ms`);
        } catch (err) {
          row.error = (err as Error).stack ?? String(err);
          log(`  ✗ ${(err as Error).message.split('\n')[0]}`);
        }
        rows.push(row);
      }
    }
  } finally {
    worker.shutdown();
    await running.catch(() => undefined);
    await close().catch(() => undefined);
    await connection.close().catch(() => undefined);
    await server.stop();
    // Not stopAll(): this runs inside the test suite too, beside the shared fixtures' servers.
    fs.rmSync(work, { recursive: true, force: true });
  }
  const control = rows.find((r) => r.strategy === 'imago' && r.evidence?.imago?.cutover);
  const switchover = control?.evidence?.imago?.cutover ? {
    ...control.evidence.imago.cutover,
    maxClientLatencyMs: Math.max(0, ...control.evidence.timeline.filter((b) => b.t >= control.evidence!.upgradeStartMs).map((b) => b.max)),
  } : null;
  const result: CampaignResult = { startedAt: new Date(started).toISOString(), durationMs: Date.now() - started, rows, overhead, switchover };
  fs.writeFileSync(path.join(opts.out, 'campaign.json'), JSON.stringify(result, (k, v) => (k === 'timeline' ? undefined : v), 1));
  fs.writeFileSync(path.join(opts.out, 'campaign.md'), toMarkdown(result));
  return result;
}

export function toMarkdown(r: CampaignResult): string {
  const cell = (row?: CampaignRow) => {
    if (!row) return '—';
    if (!row.classification) return `run failed: ${(row.error ?? '').split('\n')[0].slice(0, 80)}`;
    const c = row.classification;
    const caught = c.caughtBeforeSwitchover === undefined ? '' : c.caughtBeforeSwitchover ? `; caught by ${c.caughtBy}` : '; not caught';
    return `**${c.impact}**${c.impacts.length > 1 ? ` (+ ${c.impacts.slice(1).join(', ')})` : ''}${caught}`;
  };
  const faults = [...new Map(r.rows.map((x) => [x.fault.id, x.fault])).values()];
  const lines = [
    `# Fault-injection campaign (${r.startedAt}, ${(r.durationMs / 60000).toFixed(1)} min)`, '',
    '| type | fault | rolling upgrade | Imago |', '|---|---|---|---|',
    ...faults.map((f) => `| ${f.type ? `${f.type} ${FAULT_TYPES[f.type]}` : 'control'} | \`${f.id}\`: ${f.description} | ${cell(r.rows.find((x) => x.fault.id === f.id && x.strategy === 'rolling'))} | ${cell(r.rows.find((x) => x.fault.id === f.id && x.strategy === 'imago'))} |`),
    '', '## Evidence', '',
    '| fault | strategy | requests | failed | p50/p99 ms (base → window) | ledger m/a/d | probe wrong/failed | Imago outcome, last phase | notes |', '|---|---|---|---|---|---|---|---|---|',
    ...r.rows.map((x) => {
      const e = x.evidence, c = x.classification;
      if (!e || !c) return `| ${x.fault.id} | ${x.strategy} | run failed | | | | | | ${(x.error ?? '').split('\n')[0].slice(0, 120)} |`;
      const m = c.metrics;
      return `| ${x.fault.id} | ${x.strategy} | ${e.workload.requests} | ${e.workload.errors} | ${m.baselineP50}/${m.baselineP99} → ${m.windowP50}/${m.windowP99} | ${e.ledger ? `${e.ledger.missing}/${e.ledger.altered}/${e.ledger.duplicated}` : '—'} | ${e.probe ? `${e.probe.mismatches}/${e.probe.failed} of ${e.probe.checked}` : '—'} | ${e.imago ? `${e.imago.outcome}, ${e.imago.lastPhase}` : ''} | ${[...e.notes, ...c.reasons].join('; ').replace(/\|/g, '/').slice(0, 300)} |`;
    }),
  ];
  if (r.overhead) {
    const o = r.overhead;
    lines.push('', '## Overhead of the ingress interceptor I (closed loop, 8 clients, bidding mix, 5 s each)', '',
      '| path | req/s | p50 ms | p99 ms | errors |', '|---|---|---|---|---|',
      `| direct to v1 | ${o.direct.throughput} | ${o.direct.p50} | ${o.direct.p99} | ${o.direct.errors} |`,
      `| through I | ${o.throughI.throughput} | ${o.throughI.p50} | ${o.throughI.p99} | ${o.throughI.errors} |`,
      '', `Throughput overhead ${o.throughputOverheadPct} %, median latency +${o.p50OverheadMs} ms.`);
  }
  if (r.switchover) lines.push('', `## Switchover pause (control run)`, '', `Cut-over total ${r.switchover.totalMs.toFixed(1)} ms (hold ${r.switchover.holdMs.toFixed(1)} ms); largest client latency during the upgrade window ${r.switchover.maxClientLatencyMs} ms.`);
  return `${lines.join('\n')}\n`;
}

if (require.main === module) {
  const { values } = parseArgs({ options: { subset: { type: 'string' }, faults: { type: 'string' }, out: { type: 'string', default: 'faultlab-results' }, 'no-overhead': { type: 'boolean' } } });
  const faults = values.faults ? values.faults.split(',').map(faultById)
    : values.subset === 'fast' ? [NO_FAULT, ...FAST_SUBSET.map(faultById)] : [NO_FAULT, ...CATALOG];
  const hardStop = setTimeout(() => { console.error('campaign: 40 min bound reached'); void stopAll().finally(() => process.exit(3)); }, 40 * 60_000);
  hardStop.unref();
  runCampaign({ faults, out: values.out!, overhead: !values['no-overhead'] }).then((r) => {
    console.log(fs.readFileSync(path.join(values.out!, 'campaign.md'), 'utf8'));
    process.exit(r.rows.some((x) => x.error) ? 1 : 0);
  }, (e) => { console.error(e); void stopAll().finally(() => process.exit(2)); });
}
