/**
 * The fault-injection campaign: every (fault, strategy) of the catalog under
 * the bidding mix, classified from its evidence, plus — in the same run — the
 * overhead the ingress interceptor I and the egress interceptor E add (I, E, both, against direct; alternating rounds) and the
 * switchover pause (from the control run's Imago upgrade). Writes
 * campaign.md, campaign.json and campaign.html (charts) side by side.
 *
 *   npx tsx faultlab/campaign.ts [--subset fast] [--faults a,b] [--strategies rolling,imago] [--rate N] [--out dir] [--no-overhead]
 */
import * as crypto from 'node:crypto';
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
import { setupDatabase } from '../examples/auction/database';
import auctionConversion from '../examples/auction/conversion';
import { Transfer } from '../transfer/transfer';
import { MariaDbInstance } from '../lib/mariadb';
import { hardwareLine } from '../lib/hardware';
import { CATALOG, FAST_SUBSET, FAULT_TYPES, NO_FAULT, NO_FAULT_LARGE, faultById, type FaultRecipe } from './catalog';
import { classify, imagoVerdict, type Classification } from './classify';
import { runRolling, type RunOptions } from './rolling';
import { runImago } from './imago';
import { toHtml } from './report-html';
import type { RunEvidence, Strategy } from './evidence';

export interface CampaignRow { fault: FaultRecipe; strategy: Strategy; evidence?: RunEvidence; classification?: Classification; error?: string }
/** One load measurement; in Overhead each is the median over the rounds. */
interface Measure { throughput: number; p50: number; p99: number; errors: number }
export interface Overhead {
  rounds: number;
  hardware: string;
  /** clients → v1 */
  direct: Measure;
  /** clients → I → v1 */
  throughI: Measure;
  /** clients → v1 while E (binlog streamer + converting applier) follows Uold into a Unew store */
  withE: Measure;
  /** both, as during an upgrade's data transfer and testing */
  throughIWithE: Measure;
  throughputOverheadPct: { I: number; E: number; IE: number };
  p50OverheadMs: { I: number; E: number; IE: number };
  /** Row changes E applied to Unew while measured: proof it was following, not idle. */
  eEventsApplied: number;
}
export interface CampaignResult { startedAt: string; durationMs: number; rows: CampaignRow[]; overhead: Overhead | null; switchover: { totalMs: number; holdMs: number; maxClientLatencyMs: number } | null }

export const SIZE = { users: 300, items: 1_000, bids: 4_000 };

const median = (xs: number[]): number => { const v = [...xs].sort((x, y) => x - y); return v[Math.floor(v.length / 2)]; };
const medianOf = (ms: Measure[]): Measure => ({ throughput: median(ms.map((m) => m.throughput)), p50: median(ms.map((m) => m.p50)), p99: median(ms.map((m) => m.p99)), errors: median(ms.map((m) => m.errors)) });

/**
 * What I and E cost the live system, side by side in one run: the bidding
 * mix (8 closed-loop clients, 5 s) direct to v1 and through I, with E off and
 * on, in alternating rounds (E is stopped between rounds and resumes from
 * its saved position, so off and on interleave in time). E on means a real
 * Transfer from Uold into a v2 store on its own MariaDB, caught up and
 * following, converting every change as during an upgrade.
 */
export async function measureOverhead(dir: string, rounds = 3): Promise<Overhead> {
  const stage = await startUoldStage({ ...SIZE, dir });
  const unew = new MariaDbInstance({ baseDir: path.join(dir, 'unew-db') });
  try {
    await unew.start();
    await setupDatabase(unew, 'v2', { database: stage.database, appUser: 'app', appPassword: crypto.randomBytes(8).toString('hex') });
    const one = async (url: string): Promise<Measure> => {
      const r = await runWorkload({ baseUrl: url, mix: 'bidding', clients: 8, durationMs: 5_000, users: [1, SIZE.users], items: [1, SIZE.items], seed: 3 });
      return { throughput: r.throughput, p50: r.latencies.p50, p99: r.latencies.p99, errors: r.errors };
    };
    const s: Record<'direct' | 'throughI' | 'withE' | 'throughIWithE', Measure[]> = { direct: [], throughI: [], withE: [], throughIWithE: [] };
    let eEventsApplied = 0;
    await one(stage.app.url); // warm-up
    for (let r = 0; r < rounds; r++) {
      s.direct.push(await one(stage.app.url));
      s.throughI.push(await one(stage.url));
      const e = new Transfer({ source: { url: stage.replUrl, database: stage.database }, target: { url: unew.rootUrl, database: stage.database }, conversion: auctionConversion, serverId: 4_000 + r });
      const ac = new AbortController();
      const running = e.run(ac.signal);
      try {
        // Measured from caught up on: the backlog of the E-off rounds is not E's steady cost.
        const deadline = Date.now() + 60_000;
        while (!(e.progress().phase === 'following' && e.progress().lagEvents === 0)) {
          if (Date.now() > deadline) throw new Error(`E did not catch up within 60 s: ${JSON.stringify(e.progress())}`);
          await Promise.race([running, new Promise((res) => setTimeout(res, 50))]);
        }
        const before = e.progress().eventsApplied;
        s.withE.push(await one(stage.app.url));
        s.throughIWithE.push(await one(stage.url));
        eEventsApplied += e.progress().eventsApplied - before;
      } finally {
        ac.abort();
        await running;
      }
    }
    const m = { direct: medianOf(s.direct), throughI: medianOf(s.throughI), withE: medianOf(s.withE), throughIWithE: medianOf(s.throughIWithE) };
    const pct = (x: Measure) => Math.round((1 - x.throughput / m.direct.throughput) * 1000) / 10;
    const add = (x: Measure) => Math.round((x.p50 - m.direct.p50) * 100) / 100;
    return {
      rounds, hardware: hardwareLine(), ...m, eEventsApplied,
      throughputOverheadPct: { I: pct(m.throughI), E: pct(m.withE), IE: pct(m.throughIWithE) },
      p50OverheadMs: { I: add(m.throughI), E: add(m.withE), IE: add(m.throughIWithE) },
    };
  } finally {
    await unew.destroy().catch(() => undefined);
    await stage.stop();
  }
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
    if (opts.overhead !== false) { log('overhead: direct, through I, with E, both'); overhead = await measureOverhead(path.join(work, 'overhead')); }
    let n = 0;
    for (const fault of opts.faults) {
      for (const strategy of opts.strategies ?? ['rolling', 'imago'] as Strategy[]) {
        const dir = path.join(work, `${n++}${strategy[0]}`);
        const base: RunOptions = { dir, size: { ...SIZE, ...fault.load?.size }, rate: fault.load?.rate ?? 40, warmupMs: 3_000, log, ...opts.run, durationMs: strategy === 'rolling' ? opts.rollingMs ?? 20_000 : opts.run?.durationMs ?? fault.load?.imagoBoundMs ?? 90_000 };
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
  fs.writeFileSync(path.join(opts.out, 'campaign.html'), toHtml(result));
  return result;
}

export function toMarkdown(r: CampaignResult): string {
  const cell = (row?: CampaignRow) => {
    if (!row) return '—';
    if (!row.classification) return `run failed: ${(row.error ?? '').split('\n')[0].slice(0, 80)}`;
    const c = row.classification;
    const verdict = imagoVerdict(c, row.fault.id);
    const caught = verdict ? `; ${verdict}` : '';
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
    const row = (name: string, x: Measure, k?: 'I' | 'E' | 'IE') => `| ${name} | ${x.throughput} | ${x.p50} | ${x.p99} | ${x.errors} | ${k ? `${o.throughputOverheadPct[k]} % / +${o.p50OverheadMs[k]} ms` : '—'} |`;
    lines.push('', `## Overhead of I and E on the live system (bidding mix, 8 closed-loop clients, 5 s; medians of ${o.rounds} alternating rounds)`, '',
      '| path | req/s | p50 ms | p99 ms | errors | throughput lost / p50 added |', '|---|---|---|---|---|---|',
      row('direct to v1', o.direct), row('through I', o.throughI, 'I'), row('direct, E following', o.withE, 'E'), row('through I, E following', o.throughIWithE, 'IE'),
      '', `E applied ${o.eEventsApplied} row changes to the Unew store while measured. Hardware: ${o.hardware}. Everything shares the same cores, so E's cost includes its CPU.`);
  }
  if (r.switchover) lines.push('', `## Switchover pause (control run)`, '', `Cut-over total ${r.switchover.totalMs.toFixed(1)} ms (hold ${r.switchover.holdMs.toFixed(1)} ms); largest client latency during the upgrade window ${r.switchover.maxClientLatencyMs} ms.`);
  return `${lines.join('\n')}\n`;
}

if (require.main === module) {
  const { values } = parseArgs({ options: { subset: { type: 'string' }, faults: { type: 'string' }, strategies: { type: 'string', default: 'rolling,imago' }, rate: { type: 'string' }, out: { type: 'string', default: 'faultlab-results' }, 'no-overhead': { type: 'boolean' } } });
  if (values.rate !== undefined && !(Number(values.rate) > 0 && Number(values.rate) <= 1_000)) { console.error(`campaign: --rate ${values.rate}: give the workload's requests per second, 1 to 1000`); process.exit(1); }
  const strategies = values.strategies!.split(',') as Strategy[];
  const unknown = strategies.filter((x) => x !== 'rolling' && x !== 'imago');
  if (unknown.length) { console.error(`campaign: --strategies ${values.strategies}: '${unknown.join(', ')}' is not a strategy; give rolling, imago or both`); process.exit(1); }
  const faults = values.faults ? values.faults.split(',').map(faultById)
    : values.subset === 'fast' ? [NO_FAULT, ...FAST_SUBSET.map(faultById)] : [NO_FAULT, NO_FAULT_LARGE, ...CATALOG];
  const hardStop = setTimeout(() => { console.error('campaign: 40 min bound reached'); void stopAll().finally(() => process.exit(3)); }, 40 * 60_000);
  hardStop.unref();
  runCampaign({ faults, strategies, out: values.out!, overhead: !values['no-overhead'], ...(values.rate ? { run: { rate: Number(values.rate) } } : {}) }).then((r) => {
    console.log(fs.readFileSync(path.join(values.out!, 'campaign.md'), 'utf8'));
    process.exit(r.rows.some((x) => x.error) ? 1 : 0);
  }, (e) => { console.error(e); void stopAll().finally(() => process.exit(2)); });
}
