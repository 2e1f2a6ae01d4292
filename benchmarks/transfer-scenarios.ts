/**
 * The data transfer at production scale, measured side by side in one run:
 *   npx tsx benchmarks/transfer.ts --scenarios [--users 20000 --items 200000 --bids 300000] [--repeats 3] [--rate 200]
 *     [--max-p99-ratio 2] [--nice-ratio 0] [--max-p99 MS] [--binlog-bytes 1000000000]
 *
 * One Uold (the auction v1 behind its ingress interceptor, as the demo runs
 * it), a second Uold with the same data whose active binlog file is over
 * 1 GB, one Unew; each copy into a fresh v2 database, the transfer in its own
 * process (as a worker would be), medians over repeats:
 *  - dump:   `mariadb-dump --single-transaction | mariadb` of the same v1 tables (the reference);
 *  - sample: the auction conversion with its refresh, Uold idle;
 *  - empty / big: the same copy under a light write load (20 bids/s), from the
 *    Uold whose active binlog file is small (just rotated) / over 1 GB;
 *  - loaded: the same copy while the bidding mix runs at `rate` req/s through
 *    the ingress; Uold's p99 as its clients see it during the copy vs the
 *    `before` window just before it, the copy throttled on that p99 as an upgrade's
 *    is (transfer.maxUoldP99Ratio, --max-p99-ratio; transfer.niceRatio, --nice-ratio); the stream's lag (commit ack in Uold → row
 *    visible in Unew, probed every 50 ms) during the copy.
 * The ETA's error is taken from each copy's progress: |ETA − actual time
 * left| / actual time left, at every sample from 10 % of the rows copied on,
 * while at least 10 % of the copy's time is left.
 * The last line is one JSON object with the ratios.
 */
import { spawn } from 'node:child_process';
import * as os from 'node:os';
import * as readline from 'node:readline';
import { parseArgs } from 'node:util';
import * as mysql from 'mysql2/promise';
import conversion from '../examples/auction/conversion';
import { setupDatabase } from '../examples/auction/database';
import { seed } from '../examples/auction/seeder';
import { startUoldStage } from '../examples/auction/stage';
import { startWorkload } from '../examples/auction/workload/generator';
import { hardwareLine } from '../lib/hardware';
import { MariaDbInstance, mariadbBinary } from '../lib/mariadb';
import type { ConversionModule } from '../transfer/conversion';
import { createCopyUnit } from '../transfer/copy-unit';
import { Transfer, type TransferProgress } from '../transfer/transfer';
import type { TransferInput } from '../transfer/options';

const V1_TABLES = ['regions', 'categories', 'users', 'items', 'bids', 'comments', 'buy_now'];
const PROBE_DDL = 'CREATE TABLE lag_probe (id INT AUTO_INCREMENT PRIMARY KEY, at BIGINT NOT NULL)';
const median = (a: number[]) => { const s = [...a].sort((x, y) => x - y); return s[Math.floor(s.length / 2)]; };
const pct = (a: number[], p: number) => { const s = [...a].sort((x, y) => x - y); return s.length ? s[Math.min(s.length - 1, Math.ceil(s.length * p) - 1)] : 0; };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The auction conversion plus the lag probe's table (copied as it is). */
function benchConversion(): ConversionModule {
  return { ...conversion, tables: [...conversion.tables, { source: 'lag_probe', targets: [{ table: 'lag_probe', key: ['id'] }], convert: (r) => ({ lag_probe: [{ ...r }] }) }] };
}

interface CopyResult { ms: number; rows: number; progress: Array<{ at: number; p: TransferProgress }> }

type ChildInput = Omit<TransferInput, 'conversion'> & { unitTarget: string };

/**
 * In a child: the follower (a Transfer with copyTables: [], progress lines on
 * stdout until every table is copied and refreshed), or a copy unit of every
 * table (`--unit`: it ends when its tables are done).
 */
async function child(role: 'follower' | 'unit', input: ChildInput): Promise<void> {
  const { unitTarget, ...o } = input;
  if (role === 'unit') {
    await createCopyUnit({ source: o.source, target: { ...o.target, url: unitTarget }, conversion: benchConversion(), tables: benchConversion().tables.map((t) => t.source), chunkSize: o.chunkSize, parallelTables: o.parallelTables, throttle: o.throttle, ingress: o.ingress }).run(new AbortController().signal);
    return;
  }
  const t = new Transfer({ ...o, conversion: benchConversion(), copyTables: [] });
  const ac = new AbortController();
  const started = Date.now();
  const running = t.run(ac.signal);
  const beat = setInterval(() => console.log(JSON.stringify({ at: Date.now() - started, p: t.progress() })), 250);
  try {
    while (t.progress().phase !== 'following') {
      if (t.progress().phase === 'stopped') break;
      await sleep(5);
    }
    const ms = Date.now() - started;
    console.log(JSON.stringify({ at: ms, p: t.progress(), done: true }));
  } finally {
    clearInterval(beat);
    ac.abort();
    await running;
  }
}

function spawnChild(role: 'follower' | 'unit', input: ChildInput, nice: number) {
  const p = spawn(process.execPath, ['--import', 'tsx', __filename, '--child', role, JSON.stringify(input)], { stdio: ['ignore', 'pipe', 'pipe'] });
  if (nice && p.pid) os.setPriority(p.pid, nice);
  let err = '';
  p.stderr.on('data', (d) => { err += d; });
  const exited = new Promise<number | null>((resolve) => p.on('exit', (code) => resolve(code)));
  return { p, exited, err: () => err.slice(-2000) };
}

/**
 * Runs one copy: the follower in one child, a copy unit of every table in
 * another (at `nice`: see main), as two activities of an upgrade would.
 * Resolves with the time until the follower reports every table copied and
 * refreshed, and the follower's progress.
 */
async function copyInChildren(input: ChildInput, nice: number, onStart?: () => void): Promise<CopyResult> {
  const follower = spawnChild('follower', input, 0);
  const progress: CopyResult['progress'] = [];
  let result: CopyResult | undefined;
  let unit: ReturnType<typeof spawnChild> | undefined;
  readline.createInterface({ input: follower.p.stdout }).on('line', (line) => {
    const m = JSON.parse(line) as { at: number; p: TransferProgress; done?: boolean };
    if (progress.length === 0) onStart?.();
    progress.push({ at: m.at, p: m.p });
    if (m.done) result = { ms: m.at, rows: m.p.rowsCopied, progress };
  });
  unit = spawnChild('unit', input, nice);
  const u = unit;
  // A unit that fails leaves the follower waiting for its tables: stop the follower then.
  const uc = await Promise.race([u.exited, follower.exited.then(() => u.exited)]);
  if (uc !== 0) { follower.p.kill('SIGKILL'); await follower.exited; throw new Error(`copy unit exited ${uc}: ${u.err()}`); }
  const fc = await follower.exited;
  if (fc !== 0 || !result) throw new Error(`follower exited ${fc}: ${follower.err()}`);
  unit = undefined;
  return result;
}

/** Worst ETA error of one copy: from 10 % of the rows on, while at least 10 % of its time is left. */
function etaError(r: CopyResult): number {
  let worst = 0;
  for (const { at, p } of r.progress) {
    if (p.phase !== 'copy' || p.etaSeconds === null || p.rowsTotal === 0 || p.rowsCopied < 0.1 * p.rowsTotal) continue;
    const left = (r.ms - at) / 1000;
    if (left < 0.1 * (r.ms / 1000)) continue;
    worst = Math.max(worst, Math.abs(p.etaSeconds - left) / left);
  }
  return worst;
}

/** The ETA against the time that was really left, at a dozen moments of the copy: where an estimate went wrong. */
function etaTrace(r: CopyResult): string {
  const lines = ['| at s | rows copied | refresh rows | ETA s | left s | error |', '|---|---|---|---|---|---|'];
  const copying = r.progress.filter(({ p }) => p.phase === 'copy');
  const step = Math.max(1, Math.floor(copying.length / 12));
  for (let i = 0; i < copying.length; i += step) {
    const { at, p } = copying[i];
    const left = (r.ms - at) / 1000;
    const err = p.etaSeconds === null ? '—' : `${Math.round((100 * (p.etaSeconds - left)) / left)} %`;
    lines.push(`| ${(at / 1000).toFixed(1)} | ${p.rowsCopied} of ${p.rowsTotal} | ${p.refreshRowsDone} of ${p.refreshRowsTotal} | ${p.etaSeconds ?? '—'} | ${left.toFixed(1)} | ${err} |`);
  }
  return lines.join('\n');
}

function sh(cmd: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const p = spawn('bash', ['-o', 'pipefail', '-c', cmd], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = ''; p.stderr.on('data', (d) => { err += d; });
    p.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(err))));
  });
}

/** A fresh v2 database (plus the probe table) on Unew. */
async function freshTarget(unew: MariaDbInstance, name: string): Promise<string> {
  await unew.query(`DROP DATABASE IF EXISTS \`${name}\``);
  await setupDatabase(unew, 'v2', { database: name, appUser: 'app', appPassword: 'pw' });
  await unew.query(`CREATE TABLE \`${name}\`.lag_probe (id INT PRIMARY KEY, at BIGINT NOT NULL)`);
  return name;
}

/** A steady trickle of new bids on Uold (the light write load of the binlog scenarios). */
function trickle(url: string, perSecond: number, items: number, users: number): { stop(): Promise<number> } {
  let stop = false;
  const done = (async () => {
    const c = await mysql.createConnection({ uri: url, database: 'auction' });
    let n = 0;
    const t0 = Date.now();
    try {
      while (!stop) {
        await c.query('INSERT INTO bids (user_id, item_id, qty, amount, created_at) VALUES (?, ?, 1, ?, NOW())', [1 + (n * 7) % users, 1 + (n * 7919) % items, 1_000 + n % 500]);
        n++;
        const wait = t0 + (n * 1000) / perSecond - Date.now();
        if (wait > 0) await sleep(wait);
      }
    } finally { await c.end(); }
    return n;
  })();
  return { stop: async () => { stop = true; return done; } };
}

/** Commit ack in Uold → row visible in Unew, for probe rows written every `everyMs` while `active()`. */
function lagProbe(uoldRoot: string, unew: MariaDbInstance, database: string, everyMs: number): { stop(): Promise<number[]> } {
  let stop = false;
  const acked = new Map<number, number>();
  const lags: number[] = [];
  const writer = (async () => {
    const w = await mysql.createConnection({ uri: uoldRoot, database: 'auction' });
    try {
      while (!stop) {
        const [res] = await w.query('INSERT INTO lag_probe (at) VALUES (?)', [Date.now()]) as [mysql.ResultSetHeader, unknown];
        acked.set(res.insertId, Date.now());
        await sleep(everyMs);
      }
    } finally { await w.end(); }
  })();
  const poller = (async () => {
    const p = await unew.connect(database);
    let seen = 0;
    try {
      for (let idle = 0; !stop || (seen < Math.max(0, ...acked.keys()) && idle < 2_500); idle++) {
        const [[r]] = await p.query('SELECT COALESCE(MAX(id), 0) AS m FROM lag_probe') as any;
        const now = Date.now();
        for (let id = seen + 1; id <= r.m; id++) { const a = acked.get(id); if (a !== undefined) lags.push(now - a); }
        if (r.m > seen) idle = 0;
        seen = Math.max(seen, r.m);
        await sleep(2);
      }
    } finally { await p.end(); }
  })();
  return { stop: async () => { stop = true; await writer; await poller; return lags; } };
}

/**
 * Keeps the server threads of a MariaDB user's connections at `nice` (the
 * threads of the copy side in Unew's server; InnoDB's own threads and the
 * follower's stay as they are). Checked every 200 ms for new connections.
 */
function reniceUser(db: MariaDbInstance, user: string, nice: number): { stop(): void } {
  const done = new Set<number>();
  let busy = false;
  const timer = setInterval(() => {
    if (busy || nice === 0) return;
    busy = true;
    db.query('SELECT TID AS tid FROM information_schema.PROCESSLIST WHERE USER = ?', [user]).then((rows) => {
      for (const r of rows as Array<{ tid: number }>) {
        if (done.has(r.tid)) continue;
        try { os.setPriority(r.tid, nice); done.add(r.tid); } catch { /* the thread ended */ }
      }
    }, () => undefined).finally(() => { busy = false; });
  }, 200);
  return { stop: () => clearInterval(timer) };
}

/** Makes the active binlog file of `db` at least `bytes` long (rows of 1 MB in a database of its own). */
async function growBinlog(db: MariaDbInstance, bytes: number): Promise<number> {
  const c = await db.connect();
  try {
    await c.query('CREATE DATABASE IF NOT EXISTS filler');
    await c.query('CREATE TABLE IF NOT EXISTS filler.f (id INT AUTO_INCREMENT PRIMARY KEY, b LONGBLOB NOT NULL)');
    await c.query('FLUSH BINARY LOGS');
    for (;;) {
      const [[s]] = await c.query('SHOW MASTER STATUS') as any;
      if (Number(s.Position) >= bytes) return Number(s.Position);
      await c.query("INSERT INTO filler.f (b) VALUES (REPEAT('x', 1000000))");
      await c.query('DELETE FROM filler.f'); // keep the table small; the binlog keeps both images
    }
  } finally { await c.end(); }
}

async function activeBinlogSize(db: MariaDbInstance): Promise<number> {
  const [s] = await db.query('SHOW MASTER STATUS') as any[];
  return Number(s.Position);
}

async function main(): Promise<void> {
  const { values } = parseArgs({ args: process.argv.slice(2), strict: false, options: {
    scenarios: { type: 'boolean' }, users: { type: 'string', default: '20000' }, items: { type: 'string', default: '200000' },
    bids: { type: 'string', default: '300000' }, repeats: { type: 'string', default: '3' }, rate: { type: 'string', default: '200' },
    'chunk-size': { type: 'string', default: '2000' }, 'max-p99': { type: 'string' }, 'max-p99-ratio': { type: 'string', default: '2' }, 'nice-ratio': { type: 'string', default: '0' }, 'binlog-bytes': { type: 'string', default: '1000000000' },
    nice: { type: 'string', default: '19' },
  } });
  const size = { users: Number(values.users), items: Number(values.items), bids: Number(values.bids) };
  const repeats = Number(values.repeats);
  const rate = Number(values.rate);
  const chunkSize = Number(values['chunk-size']);
  const nice = Number(values.nice);
  const log = (m: string) => console.log(`# ${m}`);
  const stage = await startUoldStage({ ...size, log });
  const big = new MariaDbInstance();
  const unew = new MariaDbInstance();
  try {
    await Promise.all([big.start(), unew.start()]);
    // The copy side (the copy unit and mariadb-dump | mariadb, and their threads in Unew's
    // server, all as user 'copier') runs at `nice`; the live side and the follower do not.
    await unew.createUser('copier', 'pw', ['ALL PRIVILEGES ON *.*']);
    const renicer = reniceUser(unew, 'copier', nice);
    await setupDatabase(big, 'v1', { database: 'auction', appUser: 'app', appPassword: 'pw' });
    await big.createUser('imago_repl', 'pw', ['REPLICATION SLAVE, REPLICATION CLIENT ON *.*', 'SELECT ON `auction`.*']);
    log(`seeding the second Uold: ${JSON.stringify(size)}`);
    const seeded = await seed(big.urlFor('root', '', 'auction').replace('root:@', 'root@'), size);
    for (const db of [stage.db, big]) await db.query(`CREATE TABLE auction.${PROBE_DDL.slice('CREATE TABLE '.length)}`);
    log(`${seeded.rows} rows per Uold; filling the second Uold's active binlog file to ${(Number(values['binlog-bytes']) / 1e9).toFixed(2)} GB`);
    const bigBytes = await growBinlog(big, Number(values['binlog-bytes']));
    await stage.db.query('FLUSH BINARY LOGS');
    log(`active binlog files: big ${(bigBytes / 1e9).toFixed(2)} GB, empty ${(await activeBinlogSize(stage.db) / 1e6).toFixed(2)} MB`);

    const t = { dump: [] as number[], sample: [] as number[], empty: [] as number[], big: [] as number[], loaded: [] as number[] };
    const etaErrors: number[] = [];
    const etaByCopy: Array<{ db: string; err: number }> = [];
    let worstEta = null as { db: string; r: CopyResult } | null;
    const lagLoaded: number[] = [];
    const lagAll: number[] = [];
    const p99: Array<{ before: number; during: number }> = [];
    let serverId = 9_300;
    const input = (src: string, db: string, extra: Partial<TransferInput> = {}): ChildInput => ({
      source: { url: src, database: 'auction' }, target: { url: unew.rootUrl, database: db }, serverId: serverId++, chunkSize, ...extra,
      unitTarget: unew.urlFor('copier', 'pw'),
    });
    // The lag is probed from the copy's start (the transfer's own start-up is not stream lag).
    const ours = async (src: string, db: string, extra: Partial<TransferInput> = {}, lags?: number[]): Promise<CopyResult> => {
      await freshTarget(unew, db);
      let probe: { stop(): Promise<number[]> } | undefined;
      try {
        const r = await copyInChildren(input(src, db, extra), nice, () => { probe = lagProbe(src === stage.replUrl ? stage.db.rootUrl : big.rootUrl, unew, db, 50); });
        etaErrors.push(etaError(r));
        etaByCopy.push({ db, err: etaError(r) });
        if (etaError(r) >= Math.max(...etaErrors)) worstEta = { db, r };
        return r;
      } finally {
        const l = await probe?.stop() ?? [];
        lagAll.push(...l);
        lags?.push(...l);
      }
    };
    for (let rep = 0; rep < repeats; rep++) {
      log(`repeat ${rep + 1}/${repeats}`);
      // The reference: the same v1 tables, dumped and loaded between the same two servers.
      await unew.query('DROP DATABASE IF EXISTS dumpcopy'); await unew.query('CREATE DATABASE dumpcopy');
      const t0 = Date.now();
      await sh(`nice -n ${nice} ${mariadbBinary('mariadb-dump')} --no-defaults -h127.0.0.1 -P${stage.db.port} -uroot --single-transaction --quick auction ${V1_TABLES.join(' ')} | nice -n ${nice} ${mariadbBinary('mariadb')} --no-defaults -h127.0.0.1 -P${unew.port} -ucopier -ppw dumpcopy`);
      t.dump.push(Date.now() - t0);

      await stage.db.query('FLUSH BINARY LOGS');
      t.sample.push((await ours(stage.replUrl, 'c_sample')).ms);

      for (const [which, url, db] of [['empty', stage.replUrl, stage.db], ['big', big.urlFor('imago_repl', 'pw'), big]] as const) {
        if (which === 'empty') await db.query('FLUSH BINARY LOGS');
        const w = trickle(db.rootUrl, 20, size.items, size.users);
        try { t[which].push((await ours(url, `c_${which}`)).ms); } finally { await w.stop(); }
      }

      // Loaded: the bidding mix through the ingress, a window before the copy, then during it.
      await stage.db.query('FLUSH BINARY LOGS');
      const mix = { baseUrl: stage.url, mix: 'bidding' as const, rate, users: [1, size.users] as [number, number], items: [1, size.items] as [number, number], seed: 7 + rep };
      const before = startWorkload({ ...mix, durationMs: 20_000 });
      const wb = await before.done;
      const during = startWorkload({ ...mix, durationMs: 30 * 60_000 });
      let r: CopyResult;
      try {
        // As an upgrade's transfer does: the plan's transfer.maxUoldP99Ratio (default 2), or an absolute max with --max-p99.
        const maxP99 = { throttle: { maxUoldP99Ratio: Number(values['max-p99-ratio']), niceRatio: Number(values['nice-ratio']), ...(values['max-p99'] === undefined ? {} : { maxUoldP99Ms: Number(values['max-p99']), criticalUoldP99Ms: 4 * Number(values['max-p99']) }) } };
        r = await ours(stage.replUrl, 'c_loaded', { ingress: [{ controlUrl: stage.controlUrl, token: stage.token }], ...maxP99 }, lagLoaded);
      } finally { during.stop(); }
      const wd = await during.done;
      t.loaded.push(r.ms);
      p99.push({ before: wb.latencies.p99, during: wd.latencies.p99 });
      log(`loaded: ${wd.requests} requests during the copy (${wd.errors} failed), p99 ${wb.latencies.p99} ms before, ${wd.latencies.p99} ms during`);
    }

    const rows = seeded.rows;
    console.log(`\nhardware: ${hardwareLine()}; MariaDB 10.11; ${rows} rows (${JSON.stringify(size)}), chunk ${chunkSize}, median of ${repeats}`);
    console.log('| copy | median s | rows/s | vs mariadb-dump \\| mariadb |\n|---|---|---|---|');
    const line = (name: string, a: number[]) => console.log(`| ${name} | ${(median(a) / 1000).toFixed(2)} | ${Math.round(rows / (median(a) / 1000))} | ${(median(t.dump) / median(a)).toFixed(2)}x |`);
    line('mariadb-dump --single-transaction | mariadb (v1 tables)', t.dump);
    line('imago, auction conversion with refresh, Uold idle', t.sample);
    line(`imago, 20 bids/s on Uold, active binlog ${(await activeBinlogSize(stage.db) / 1e6).toFixed(1)} MB`, t.empty);
    line(`imago, 20 bids/s on Uold, active binlog ${(bigBytes / 1e9).toFixed(2)} GB`, t.big);
    line(`imago, bidding mix at ${rate} req/s through the ingress`, t.loaded);
    const p99Before = median(p99.map((x) => x.before));
    const p99During = median(p99.map((x) => x.during));
    console.log(`\n| figure | value | target |\n|---|---|---|`);
    console.log(`| Uold p99 (bidding mix, clients' view) before → during the copy | ${p99Before} → ${p99During} ms (${(p99During / p99Before).toFixed(2)}x) | ≤ 1.25x |`);
    console.log(`| stream lag during the loaded copies (commit ack → visible in Unew), ${lagLoaded.length} probes | p50 ${pct(lagLoaded, 0.5)} ms, p99 ${pct(lagLoaded, 0.99)} ms, max ${Math.max(0, ...lagLoaded)} ms | p99 ≤ 200 ms |`);
    console.log(`| stream lag during every copy, ${lagAll.length} probes | p99 ${pct(lagAll, 0.99)} ms | |`);
    console.log(`| ETA error, worst over ${etaErrors.length} copies (from 10 % of the rows, while ≥ 10 % of the time is left) | ${(100 * Math.max(...etaErrors)).toFixed(1)} % | ≤ 20 % |`);
    console.log(`| ETA error by copy (c_loaded is throttled on Uold's p99: it stops and starts) | ${etaByCopy.map((e) => `${e.db} ${(100 * e.err).toFixed(0)} %`).join(', ')} | |`);
    if (worstEta) console.log(`\nETA of the copy with the worst error (${worstEta.db}):\n${etaTrace(worstEta.r)}`);
    console.log(JSON.stringify({
      sampleVsDump: +(median(t.dump) / median(t.sample)).toFixed(3),
      bigBinlogVsEmpty: +(median(t.empty) / median(t.big)).toFixed(3),
      loadedVsUnloaded: +(median(t.sample) / median(t.loaded)).toFixed(3),
      uoldP99BeforeMs: p99Before, uoldP99DuringMs: p99During, uoldP99Ratio: +(p99During / p99Before).toFixed(3),
      lagP99Ms: pct(lagLoaded, 0.99),
      etaMaxErrorPct: +(100 * Math.max(...etaErrors)).toFixed(1),
      rows, repeats,
    }));
    renicer.stop();
  } finally {
    await unew.destroy();
    await big.destroy();
    await stage.stop();
  }
}

if (process.argv.includes('--child')) {
  const at = process.argv.indexOf('--child');
  child(process.argv[at + 1] as 'follower' | 'unit', JSON.parse(process.argv[at + 2])).catch((e) => { console.error(e); process.exit(1); });
}

export function runScenarios(): void {
  main().catch((e) => { console.error(e); process.exit(1); });
}
