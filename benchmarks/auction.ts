/**
 * Benchmark of the sample system (loopback only, bounded: about 2 minutes).
 *
 *   npx tsx benchmarks/auction.ts [--repeats 3] [--seconds 8] [--clients 16]
 *
 * 1. Seeding rate (rows/s): our multi-row seeder vs a reference of one INSERT
 *    per row (autocommit), same MariaDB instance, same run.
 * 2. v1 vs v2 at the bidding mix: closed loop, N clients, no think time, on the
 *    same logical data (v2 seeded with the conversion of v1's data set); rounds
 *    interleaved v1, v2, v1, v2 ... Throughput (req/s) and p50/p99 latency.
 * Medians over repeats. The load generator shares the machine's cores.
 */
import { parseArgs } from 'node:util';
import * as mysql from 'mysql2/promise';
import { hardwareLine } from '../lib/hardware';
import { MariaDbInstance } from '../lib/mariadb';
import { stopAll } from '../lib/proc';
import { setupDatabase } from '../examples/auction/database';
import { seed, sqlDate } from '../examples/auction/seeder';
import { startAuction } from '../examples/auction/launcher';
import { runWorkload } from '../examples/auction/workload/generator';

const { values } = parseArgs({ options: { repeats: { type: 'string', default: '3' }, seconds: { type: 'string', default: '8' }, clients: { type: 'string', default: '16' } } });
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

    const ours: number[] = [];
    const ref: number[] = [];
    for (let i = 0; i < REPEATS; i++) {
      const r = await seed(`${db.rootUrl}${await fresh('v1')}`, SEED);
      ours.push(r.rows / (r.ms / 1000));
      ref.push(await referenceInsertRate(db, await fresh('v1'), 5_000));
    }

    const v1db = await fresh('v1');
    const v2db = await fresh('v2');
    await seed(`${db.rootUrl}${v1db}`, SERVE);
    await seed(`${db.rootUrl}${v2db}`, SERVE);
    const v1 = await startAuction({ version: 'v1', dbUrl: db.urlFor(`app${n - 1}`, 'pw', v1db) });
    const v2 = await startAuction({ version: 'v2', dbUrl: db.urlFor(`app${n}`, 'pw', v2db) });
    const res: Record<string, Array<{ tput: number; p50: number; p99: number; errors: number }>> = { v1: [], v2: [] };
    for (let i = 0; i < REPEATS; i++) {
      for (const [name, svc] of [['v1', v1], ['v2', v2]] as const) {
        const r = await runWorkload({ baseUrl: svc.url, mix: 'bidding', clients: CLIENTS, durationMs: SECONDS * 1000, users: [1, SERVE.users], items: [1, SERVE.items], seed: 100 + i });
        res[name].push({ tput: r.throughput, p50: r.latencies.p50, p99: r.latencies.p99, errors: r.errors });
      }
    }
    await v1.stop();
    await v2.stop();

    console.log(`\nhardware: ${hardwareLine()}; medians of ${REPEATS} repeats\n`);
    console.log('| measure | ours | reference |');
    console.log('|---|---|---|');
    console.log(`| seeding rate, rows/s (${SEED.users + SEED.items + SEED.bids + SEED.comments + 36} rows; reference: one INSERT per row, 5,000 rows) | ${Math.round(median(ours))} | ${Math.round(median(ref))} |`);
    console.log(`\n| bidding mix, ${CLIENTS} clients closed loop, ${SECONDS} s per round | v2 (rewritten, schema v2) | v1 (reference) |`);
    console.log('|---|---|---|');
    const row = (label: string, f: (x: { tput: number; p50: number; p99: number; errors: number }) => number, digits = 0) =>
      console.log(`| ${label} | ${median(res.v2.map(f)).toFixed(digits)} | ${median(res.v1.map(f)).toFixed(digits)} |`);
    row('throughput, req/s', (x) => x.tput, 1);
    row('p50 latency, ms', (x) => x.p50, 1);
    row('p99 latency, ms', (x) => x.p99, 1);
    row('errors per round', (x) => x.errors);
  } finally {
    await stopAll();
    await db.destroy();
  }
}

main().catch(async (e) => { console.error(e); await stopAll(); process.exit(1); });
