/**
 * Data-transfer benchmark: `npx tsx benchmarks/transfer.ts [rows] [repeats] [--before DIR]`
 * (`--scenarios`: the production-scale scenarios of transfer-scenarios.ts instead)
 *  1. copy N rows (identity) between two local MariaDB instances: ours vs
 *     `mariadb-dump | mariadb` between the same instances vs INSERT … SELECT
 *     inside one instance; rows/s, median over repeats;
 *     With `--before DIR` (an older Imago tree, e.g. `git archive <commit> |
 *     tar -x -C DIR` plus a node_modules link), that version's copy is
 *     measured in the same repeats, for a before/after table from one run;
 *  2. catch-up lag at a steady 1,000 row changes/s: time from Uold's commit
 *     acknowledgement to the row being visible in Unew (polled every 2 ms).
 */
import * as path from 'node:path';
import { spawn } from 'node:child_process';
import * as mysql from 'mysql2/promise';
import { hardwareLine } from '../lib/hardware';
import { MariaDbInstance, mariadbBinary } from '../lib/mariadb';
import { identityConversion } from '../transfer/conversion';
import { Transfer } from '../transfer/transfer';
import { runScenarios } from './transfer-scenarios';

const args = process.argv.slice(2);
const beforeAt = args.indexOf('--before');
const BEFORE = beforeAt >= 0 ? path.resolve(args.splice(beforeAt, 2)[1]) : null;
const N = Number(args[0] ?? 1_000_000);
const REPEATS = Number(args[1] ?? 3);
const DDL = 'CREATE TABLE items (id INT PRIMARY KEY, name VARCHAR(40) NOT NULL, qty INT NOT NULL, price DECIMAL(10,2) NOT NULL, added DATETIME NOT NULL)';
const median = (a: number[]) => { const s = [...a].sort((x, y) => x - y); return s[Math.floor(s.length / 2)]; };
const pct = (a: number[], p: number) => { const s = [...a].sort((x, y) => x - y); return s[Math.min(s.length - 1, Math.floor(s.length * p))]; };

async function fresh(db: MariaDbInstance, name: string, ddl = DDL): Promise<void> {
  await db.query(`DROP DATABASE IF EXISTS ${name}`);
  await db.query(`CREATE DATABASE ${name}`);
  await db.query(`USE ${name}`);
  const c = await db.connect(name); await c.query(ddl); await c.end();
}

function sh(cmd: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const p = spawn('bash', ['-o', 'pipefail', '-c', cmd], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = ''; p.stderr.on('data', (d) => { err += d; });
    p.on('exit', (code) => code === 0 ? resolve() : reject(new Error(err)));
  });
}

async function ours(uold: MariaDbInstance, unew: MariaDbInstance, serverId: number, Impl: typeof Transfer = Transfer): Promise<number> {
  await fresh(unew, 'dst');
  const t = new Impl({ source: { url: uold.urlFor('repl', 'pw'), database: 'src' }, target: { url: unew.rootUrl, database: 'dst' }, conversion: identityConversion([{ table: 'items', key: ['id'] }]), serverId, chunkSize: 5_000, sampleRows: 0 });
  const ac = new AbortController();
  const started = Date.now();
  const run = t.run(ac.signal);
  while (t.progress().phase !== 'following') { await new Promise((r) => setTimeout(r, 5)); }
  const ms = Date.now() - started;
  ac.abort(); await run;
  return ms;
}

async function dumpPipe(uold: MariaDbInstance, unew: MariaDbInstance): Promise<number> {
  await unew.query('DROP DATABASE IF EXISTS dst'); await unew.query('CREATE DATABASE dst');
  const started = Date.now();
  await sh(`${mariadbBinary('mariadb-dump')} --no-defaults -h127.0.0.1 -P${uold.port} -uroot --single-transaction --quick src items | ${mariadbBinary('mariadb')} --no-defaults -h127.0.0.1 -P${unew.port} -uroot dst`);
  return Date.now() - started;
}

async function insertSelect(uold: MariaDbInstance): Promise<number> {
  await fresh(uold, 'copy');
  const started = Date.now();
  await uold.query('INSERT INTO copy.items SELECT * FROM src.items');
  return Date.now() - started;
}

async function lag(uold: MariaDbInstance, unew: MariaDbInstance, serverId: number, seconds: number): Promise<number[]> {
  await uold.query('CREATE TABLE src.events (id INT PRIMARY KEY AUTO_INCREMENT, payload VARCHAR(40) NOT NULL)');
  await fresh(unew, 'dst', DDL);
  const c = await unew.connect('dst'); await c.query('CREATE TABLE events (id INT PRIMARY KEY, payload VARCHAR(40) NOT NULL)'); await c.end();
  // A small source for the lag run: only `events` (items are ignored here).
  const t = new Transfer({ source: { url: uold.urlFor('repl', 'pw'), database: 'src' }, target: { url: unew.rootUrl, database: 'dst' },
    conversion: { ...identityConversion([{ table: 'events', key: ['id'] }]), ignoreTables: ['items'] }, serverId, sampleRows: 0 });
  const ac = new AbortController();
  const run = t.run(ac.signal);
  while (t.progress().phase !== 'following') await new Promise((r) => setTimeout(r, 5));
  const acked = new Map<number, number>();
  const lags: number[] = [];
  let stop = false;
  let stopAt = 0;
  const poller = (async () => {
    const p = await mysql.createConnection({ uri: unew.rootUrl, database: 'dst' });
    let seen = 0;
    while (!stop || seen < acked.size) {
      const [[r]] = await p.query('SELECT COALESCE(MAX(id), 0) AS m FROM events') as any;
      const now = Date.now();
      for (let id = seen + 1; id <= r.m; id++) { const a = acked.get(id); if (a !== undefined) lags.push(now - a); }
      seen = Math.max(seen, r.m);
      await new Promise((res) => setTimeout(res, 2));
      if (stop && Date.now() - stopAt > 5_000) break;
    }
    await p.end();
  })();
  // 4 writers x 250 single-row commits/s = 1,000 row changes/s, paced by the clock.
  const writers = Array.from({ length: 4 }, async () => {
    const w = await mysql.createConnection({ uri: uold.rootUrl, database: 'src' });
    const t0 = Date.now();
    for (let i = 0; i < seconds * 250; i++) {
      const due = t0 + i * 4; const wait = due - Date.now(); if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      const [res] = await w.query('INSERT INTO events (payload) VALUES (?)', [`e${i}`]) as any;
      acked.set(res.insertId, Date.now());
    }
    await w.end();
  });
  await Promise.all(writers);
  stop = true; stopAt = Date.now();
  await poller;
  ac.abort(); await run;
  return lags;
}

async function main(): Promise<void> {
  const uold = await new MariaDbInstance().start();
  const unew = await new MariaDbInstance().start();
  try {
    await fresh(uold, 'src');
    await uold.createUser('repl', 'pw', ['REPLICATION SLAVE, REPLICATION CLIENT ON *.*', 'SELECT ON src.*']);
    const c = await uold.connect('src');
    for (let i = 1; i <= N; i += 10_000) {
      const rows = []; for (let j = i; j < Math.min(i + 10_000, N + 1); j++) rows.push([j, `item number ${j}`, j % 97, (j % 10_000) / 100, '2026-01-01 00:00:00']);
      await c.query('INSERT INTO items VALUES ?', [rows]);
    }
    await c.end();
    const t = { ours: [] as number[], before: [] as number[], dump: [] as number[], insel: [] as number[] };
    const Before: typeof Transfer | null = BEFORE ? require(path.join(BEFORE, 'transfer/transfer')).Transfer : null;
    for (let r = 0; r < REPEATS; r++) {
      if (Before) t.before.push(await ours(uold, unew, 9_150 + r, Before));
      t.ours.push(await ours(uold, unew, 9_100 + r));
      t.dump.push(await dumpPipe(uold, unew));
      t.insel.push(await insertSelect(uold));
    }
    const lags = await lag(uold, unew, 9_200, 20);
    console.log(`\nhardware: ${hardwareLine()}; MariaDB 10.11, ${N} rows, median of ${REPEATS}`);
    console.log('| method | median s | rows/s | vs mysqldump|mysql |');
    console.log('|---|---|---|---|');
    const row = (name: string, a: number[]) => console.log(`| ${name} | ${(median(a) / 1000).toFixed(2)} | ${Math.round(N / (median(a) / 1000))} | ${(median(t.dump) / median(a)).toFixed(2)}x |`);
    if (BEFORE) row(`imago transfer before (${BEFORE})`, t.before);
    row('imago transfer (identity, chunk 5000)', t.ours);
    row('mariadb-dump --single-transaction | mariadb', t.dump);
    row('INSERT … SELECT (one instance)', t.insel);
    console.log(`\n| catch-up at 1,000 row changes/s, 20 s | changes seen | p50 ms | p99 ms | max ms |\n|---|---|---|---|---|\n| commit ack → visible in Unew | ${lags.length} | ${pct(lags, 0.5)} | ${pct(lags, 0.99)} | ${Math.max(...lags)} |`);
  } finally { await uold.destroy(); await unew.destroy(); }
}

if (process.argv.includes('--scenarios')) runScenarios();
else main().catch((e) => { console.error(e); process.exit(1); });
