/**
 * Benchmark of the compare engine (loopback only, bounded: about 2 minutes).
 *
 *   npx tsx benchmarks/compare.ts [--pairs 20000] [--requests 4000] [--repeats 3]
 *
 * 1. Pairs compared per second, in process, on realistic auction item replies
 *    (~2 KB JSON, 12 bids, a timestamp and a random id): identical replies,
 *    a cents fault and an ordering fault. Pure compare cost: noise replays and
 *    lag rechecks off (they are network round trips, bounded separately).
 * 2. The ingress interceptor's CPU (its CLI process, /proc/<pid>/stat) per
 *    1000 proxied reads with mirroring off vs mirroring 100% of reads with the
 *    compare engine on (10% noise replays), same load, rounds interleaved.
 * Medians over repeats.
 */
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import { randomUUID } from 'node:crypto';
import { parseArgs } from 'node:util';
// autocannon ships no type declarations.
const autocannon = require('autocannon') as (opts: unknown) => Promise<any>;
import { createCompareEngine } from '../compare';
import type { CapturedReply, MirroredPair } from '../compare/types';
import { hardwareLine } from '../lib/hardware';
import { ManagedProcess, stopAll } from '../lib/proc';
import { freePort, waitForPort } from '../lib/ports';
import { IngressControlClient } from '../interceptors/ingress/control-client';

const { values } = parseArgs({ options: { pairs: { type: 'string', default: '20000' }, requests: { type: 'string', default: '4000' }, repeats: { type: 'string', default: '3' } } });
const PAIRS = Number(values.pairs); const REQUESTS = Number(values.requests); const REPEATS = Number(values.repeats);
const TOKEN = 'bench-compare-token-0123456789';
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

function item(id: number, fault?: 'cents' | 'order') {
  const bids = Array.from({ length: 12 }, (_, i) => ({ id: id * 100 + i, userId: 1 + ((id + i) % 50), nickname: `user${(id + i) % 50}`, amount: (1000 + id * 7 + i * 125) / 100, qty: 1, date: new Date(Date.UTC(2026, 0, 1, 0, i)).toISOString() }));
  if (fault === 'order') bids.reverse();
  return {
    id, name: `Vintage lamp ${id}`, description: 'A well kept lamp, works, minor scratches on the base. '.repeat(4), categoryId: 1 + (id % 20),
    seller: { id: 1 + (id % 50), nickname: `seller${id % 50}` }, initialPrice: fault === 'cents' ? Math.floor((1000 + id * 7) / 10) / 10 : (1000 + id * 7) / 100,
    quantity: 1, buyNow: null, startDate: '2026-01-01T00:00:00.000Z', endDate: '2026-02-01T00:00:00.000Z', maxBid: bids[11].amount, bidCount: 12, bids,
    servedAt: new Date().toISOString(), requestId: randomUUID(),
  };
}
const reply = (body: unknown): CapturedReply => ({ status: 200, headers: { 'content-type': 'application/json; charset=utf-8' }, body: Buffer.from(JSON.stringify(body)), latencyMs: 1 });

async function compareRate(fault?: 'cents' | 'order'): Promise<{ rate: number; heapMb: number }> {
  const pairs: MirroredPair[] = Array.from({ length: 200 }, (_, i) => ({ id: i, at: Date.now(), request: { method: 'GET', url: `/items/${i + 1}`, headers: {} }, primary: reply(item(i + 1)), shadow: reply(item(i + 1, fault)) }));
  const engine = createCompareEngine({ uoldUrl: 'http://127.0.0.1:9', unewUrl: 'http://127.0.0.1:9', routes: ['/items/:id'], ignorePaths: ['$.servedAt', '$.requestId'], noiseSamplingRate: 0, lag: { attempts: 0 } });
  const started = performance.now();
  for (let i = 0; i < PAIRS; i++) {
    engine.onPair(pairs[i % pairs.length]);
    if (i % 1000 === 999) await engine.drain();
  }
  await engine.drain();
  const s = (performance.now() - started) / 1000;
  const r = engine.report();
  if (r.compared !== PAIRS) throw new Error(`compared ${r.compared} of ${PAIRS}`);
  await engine.close();
  return { rate: PAIRS / s, heapMb: process.memoryUsage().heapUsed / 2 ** 20 };
}

function backend(): Promise<{ url: string; server: http.Server }> {
  const server = http.createServer((req, res) => {
    const id = Number(/\/items\/(\d+)/.exec(req.url ?? '')?.[1] ?? 1);
    const body = JSON.stringify(item(id));
    res.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({ url: `http://127.0.0.1:${(server.address() as { port: number }).port}`, server })));
}

function cpuMs(pid: number): number {
  const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return ((Number(f[11]) + Number(f[12])) * 1000) / 100; // utime + stime, in clock ticks of 1/100 s
}

async function load(url: string): Promise<{ rps: number; p99: number }> {
  const r = await autocannon({ url, connections: 8, amount: REQUESTS, requests: [{ setupRequest: (req: any) => ({ ...req, path: `/items/${1 + Math.floor(Math.random() * 500)}` }) }] } as any);
  return { rps: r.requests.average, p99: (r.latency as any).p99 ?? r.latency.p97_5 };
}

async function main(): Promise<void> {
  const rows: string[][] = [];
  for (const fault of [undefined, 'cents', 'order'] as const) {
    const runs = [];
    for (let i = 0; i < REPEATS; i++) runs.push(await compareRate(fault));
    rows.push([`engine, ${fault ?? 'identical'} replies`, `${Math.round(median(runs.map((x) => x.rate)))} pairs/s`, `heap ${median(runs.map((x) => x.heapMb)).toFixed(0)} MB`]);
  }

  const [uold, unew] = [await backend(), await backend()];
  const [port, control] = [await freePort(), await freePort()];
  const log = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'imago-bench-compare-')), 'ingress.log');
  const ingress = new ManagedProcess('ingress', process.execPath, ['--require', require.resolve('tsx/cjs'), path.join(__dirname, '../interceptors/ingress/main.ts'),
    '--listen', `127.0.0.1:${port}`, '--control', `127.0.0.1:${control}`, '--upstream', `uold=${uold.url}`], log, { env: { ...process.env, IMAGO_INGRESS_TOKEN: TOKEN } });
  try {
    await waitForPort(control);
    const client = new IngressControlClient(`http://127.0.0.1:${control}`, TOKEN);
    await client.addUpstream('unew', unew.url);
    const compare = { uoldUrl: uold.url, unewUrl: unew.url, routes: ['/items/:id'], noiseSamplingRate: 0.1 };
    const modes = { off: { on: false }, 'mirror 100% + compare': { on: true, shadow: 'unew', percent: 100, methods: ['GET'], compare } };
    const figures: Record<string, { cpu: number[]; rps: number[]; p99: number[] }> = { off: { cpu: [], rps: [], p99: [] }, 'mirror 100% + compare': { cpu: [], rps: [], p99: [] } };
    await load(`http://127.0.0.1:${port}`); // warm-up
    for (let i = 0; i < REPEATS; i++) {
      for (const [name, cfg] of Object.entries(modes)) {
        await client.mirror(cfg as any);
        const before = cpuMs(ingress.pid!);
        const r = await load(`http://127.0.0.1:${port}`);
        // Let queued shadow requests and comparisons finish inside the measured window.
        await new Promise((resolve) => setTimeout(resolve, 500));
        figures[name].cpu.push(((cpuMs(ingress.pid!) - before) / REQUESTS) * 1000);
        figures[name].rps.push(r.rps); figures[name].p99.push(r.p99);
      }
    }
    const cmp = await client.compare() as any;
    for (const [name, f] of Object.entries(figures)) {
      rows.push([`ingress, ${name}`, `${median(f.cpu).toFixed(0)} CPU ms / 1000 reads`, `${Math.round(median(f.rps))} req/s, p99 ${median(f.p99)} ms`]);
    }
    rows.push(['ingress compare report', `${cmp.report?.compared ?? 0} pairs compared, ${cmp.report?.dropped ?? 0} dropped`, `verdict pass=${cmp.verdict?.pass}`]);
  } finally {
    await ingress.stop(5000);
    uold.server.close(); unew.server.close();
    await stopAll();
  }

  console.log(`hardware: ${hardwareLine()}; median of ${REPEATS}; ${PAIRS} pairs per engine run; ${REQUESTS} reads per ingress run (autocannon, 8 connections)`);
  const w = [0, 1, 2].map((c) => Math.max(...rows.map((r) => r[c].length)));
  for (const r of rows) console.log(`| ${r.map((x, c) => x.padEnd(w[c])).join(' | ')} |`);
}

main().catch((e) => { console.error(e); process.exitCode = 1; void stopAll(); });
