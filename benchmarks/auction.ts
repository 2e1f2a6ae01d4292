/**
 * Benchmark of the sample system (loopback only, bounded: about 2 minutes).
 *
 *   npx tsx benchmarks/auction.ts [--repeats 3] [--seconds 8] [--clients 16] [--sections seed,versions,ingress] [--workers N]
 *
 * 1. Seeding rate (rows/s): our multi-row seeder vs a reference of one INSERT
 *    per row (autocommit), same MariaDB instance, same run.
 * 2. v1 vs v2 at the bidding mix: closed loop, N clients, no think time, on the
 *    same logical data (v2 seeded with the conversion of v1's data set); rounds
 *    interleaved v1, v2, v1, v2 ... Throughput (req/s) and p50/p99 latency.
 * 3. The ingress interceptor's cost on a DB-backed site: v1 at the bidding
 *    mix reached directly, through plain nginx (benchmarks/reference-nginx.ts)
 *    and through the interceptor (startIngress: nginx + Imago's Lua), rounds
 *    interleaved (the order rotating); each path's throughput as a share of
 *    direct's, from the medians and paired round by round.
 * Medians over repeats. The load generator shares the machine's cores.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import * as mysql from 'mysql2/promise';
import { hardwareLine } from '../lib/hardware';
import { MariaDbInstance } from '../lib/mariadb';
import { stopAll } from '../lib/proc';
import { freePort } from '../lib/ports';
import { startIngress } from '../interceptors/ingress/ingress';
import { startReferenceNginx } from './reference-nginx';
import { setupDatabase } from '../examples/auction/database';
import { seed, sqlDate } from '../examples/auction/seeder';
import { startAuction } from '../examples/auction/launcher';
import { runWorkload } from '../examples/auction/workload/generator';

const { values } = parseArgs({ options: {
  repeats: { type: 'string', default: '3' }, seconds: { type: 'string', default: '8' }, clients: { type: 'string', default: '16' },
  sections: { type: 'string', default: 'seed,versions,ingress' }, workers: { type: 'string', default: String(Math.max(2, os.availableParallelism())) },
} });
const SECTIONS = new Set(values.sections!.split(','));
const WORKERS = Number(values.workers);
const REPEATS = Number(values.repeats);
const SECONDS = Number(values.seconds);
const CLIENTS = Number(values.clients);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const SEED = { users: 10_000, items: 30_000, bids: 120_000, comments: 30_000, seed: 1 };
const SERVE = { users: 5_000, items: 20_000, bids: 80_000, comments: 20_000, seed: 2 };

async function referenceInsertRate(db: MariaDbInstance, name: string, rows: number): Promise<number> {
  const c = await mysql.createConnection({ uri: `${db.rootUrl}${name}` });
  const t0 = performance.now();
  for (let id = 1; id <= rows; id++) {
    await c.query('INSERT INTO users (id, name, nickname, password, email, rating, balance, region_id, created_at) VALUES (?, ?, ?, ?, ?, 0, 0, 1, ?)',
      [id, 'Ada Lovelace', `user${id}`, `pw${id}`, `user${id}@example.test`, sqlDate(Date.UTC(2026, 0, 1))]);
  }
  const s = (performance.now() - t0) / 1000;
  await c.end();
  return rows / s;
}

async function main(): Promise<void> {
  const db = await new MariaDbInstance().start();
  try {
    let n = 0;
    const fresh = async (v: 'v1' | 'v2') => { const name = `bench_${v}_${++n}`; await setupDatabase(db, v, { database: name, appUser: `app${n}`, appPassword: 'pw' }); return name; };

    const loadBefore = os.loadavg().map((l) => l.toFixed(2)).join(' ');
    const out: string[] = [];
    type Round = { tput: number; p50: number; p99: number; errors: number };
    const workload = async (url: string, i: number): Promise<Round> => {
      const r = await runWorkload({ baseUrl: url, mix: 'bidding', clients: CLIENTS, durationMs: SECONDS * 1000, users: [1, SERVE.users], items: [1, SERVE.items], seed: 100 + i });
      return { tput: r.throughput, p50: r.latencies.p50, p99: r.latencies.p99, errors: r.errors };
    };

    if (SECTIONS.has('seed')) {
      const ours: number[] = [];
      const ref: number[] = [];
      for (let i = 0; i < REPEATS; i++) {
        const r = await seed(`${db.rootUrl}${await fresh('v1')}`, SEED);
        ours.push(r.rows / (r.ms / 1000));
        ref.push(await referenceInsertRate(db, await fresh('v1'), 5_000));
      }
      out.push('| measure | ours | reference |', '|---|---|---|',
        `| seeding rate, rows/s (${SEED.users + SEED.items + SEED.bids + SEED.comments + 36} rows; reference: one INSERT per row, 5,000 rows) | ${Math.round(median(ours))} | ${Math.round(median(ref))} |`, '');
    }

    const v1db = await fresh('v1');
    await seed(`${db.rootUrl}${v1db}`, SERVE);
    const v1 = await startAuction({ version: 'v1', dbUrl: db.urlFor(`app${n}`, 'pw', v1db) });

    if (SECTIONS.has('versions')) {
      const v2db = await fresh('v2');
      await seed(`${db.rootUrl}${v2db}`, SERVE);
      const v2 = await startAuction({ version: 'v2', dbUrl: db.urlFor(`app${n}`, 'pw', v2db) });
      const res: Record<string, Round[]> = { v1: [], v2: [] };
      for (let i = 0; i < REPEATS; i++) {
        for (const [name, svc] of [['v1', v1], ['v2', v2]] as const) res[name].push(await workload(svc.url, i));
      }
      await v2.stop();
      out.push(`| bidding mix, ${CLIENTS} clients closed loop, ${SECONDS} s per round | v2 (rewritten, schema v2) | v1 (reference) |`, '|---|---|---|');
      const row = (label: string, f: (x: Round) => number, digits = 0) => out.push(`| ${label} | ${median(res.v2.map(f)).toFixed(digits)} | ${median(res.v1.map(f)).toFixed(digits)} |`);
      row('throughput, req/s', (x) => x.tput, 1);
      row('p50 latency, ms', (x) => x.p50, 1);
      row('p99 latency, ms', (x) => x.p99, 1);
      row('errors per round', (x) => x.errors);
      out.push('');
    }

    if (SECTIONS.has('ingress')) {
      // The same v1 reached directly, through plain nginx and through the interceptor, rounds interleaved.
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'imago-bench-auction-'));
      const v1Port = Number(new URL(v1.url).port);
      const nginxPort = await freePort();
      await startReferenceNginx(path.join(dir, 'nginx'), { upstreamPort: v1Port, listenPort: nginxPort, workers: WORKERS });
      const ingress = await startIngress({ upstream: { name: 'uold', url: v1.url }, token: 'bench-token-0123456789abcdef', workers: WORKERS });
      try {
        const paths: Record<string, string> = { direct: v1.url, nginx: `http://127.0.0.1:${nginxPort}`, interceptor: ingress.url };
        const res: Record<string, Round[]> = Object.fromEntries(Object.keys(paths).map((k) => [k, []]));
        for (const url of Object.values(paths)) await runWorkload({ baseUrl: url, mix: 'bidding', clients: CLIENTS, durationMs: 1_000, users: [1, SERVE.users], items: [1, SERVE.items], seed: 1 });
        // Interleaved, and the order rotates from round to round so that no path always runs first or last.
        const order = Object.keys(paths);
        for (let i = 0; i < REPEATS; i++) {
          for (let j = 0; j < order.length; j++) { const k = order[(i + j) % order.length]; res[k].push(await workload(paths[k], i)); }
        }
        const med = Object.fromEntries(Object.entries(res).map(([k, v]) => [k, { tput: median(v.map((x) => x.tput)), p50: median(v.map((x) => x.p50)), p99: median(v.map((x) => x.p99)), errors: v.reduce((a, x) => a + x.errors, 0) }]));
        const share = (k: string): number => med[k].tput / med.direct.tput;
        out.push(`| v1, bidding mix, ${CLIENTS} clients closed loop, ${SECONDS} s per round, ${WORKERS} worker processes | req/s | share of direct | p50 ms | p99 ms | errors |`, '|---|---|---|---|---|---|',
          ...Object.keys(paths).map((k) => `| ${k} | ${med[k].tput.toFixed(1)} | ${(100 * share(k)).toFixed(1)} % | ${med[k].p50.toFixed(1)} | ${med[k].p99.toFixed(1)} | ${med[k].errors} |`),
          `| interceptor − nginx, from the medians | | ${(100 * (share('interceptor') - share('nginx'))).toFixed(1)} points | | | |`,
          // Paired: each round runs the three paths back to back, so a round's shares see the same machine load.
          `| interceptor − nginx, median of each round's difference | | ${(100 * median(res.direct.map((d, i) => (res.interceptor[i].tput - res.nginx[i].tput) / d.tput))).toFixed(1)} points | | | |`,
          `(each round's interceptor/nginx throughput ratio: ${res.interceptor.map((x, i) => (x.tput / res.nginx[i].tput).toFixed(2)).join(', ')})`, '');
      } finally {
        await ingress.close();
        fs.rmSync(dir, { recursive: true, force: true });
      }
    }
    await v1.stop();

    console.log(`\nhardware: ${hardwareLine()}; load average before/after: ${loadBefore} / ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}; medians of ${REPEATS} repeats\n`);
    console.log(out.join('\n'));
  } finally {
    await stopAll();
    await db.destroy();
  }
}

main().catch(async (e) => { console.error(e); await stopAll(); process.exit(1); });
