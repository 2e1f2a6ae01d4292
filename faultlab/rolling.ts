/**
 * The rolling-upgrade baseline, done the way operators usually do it: two v1
 * front-ends behind a round-robin load balancer, sharing one MariaDB; the
 * schema is migrated in place (migration.ts, expand style), then the
 * front-ends are replaced one at a time by v2 (drain from the balancer, stop
 * v1, start v2 on the same port, wait for its health check, put it back). A
 * replacement that never becomes healthy halts the roll (as a readiness gate
 * would) and stays out of the balancer. A fault recipe goes into every v2
 * front-end's launch and into the shared database.
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import { MariaDbInstance } from '../lib/mariadb';
import { freePort } from '../lib/ports';
import { ManagedProcess } from '../lib/proc';
import { APP_GRANTS, setupDatabase } from '../examples/auction/database';
import { seed } from '../examples/auction/seeder';
import { getJson, startAuction, type RunningAuction } from '../examples/auction/launcher';
import { startWorkload } from '../examples/auction/workload/generator';
import { checkLedger } from '../examples/auction/ledger-checker';
import { EXPAND_MIGRATION } from './migration';
import { recipeSql, type FaultRecipe } from './catalog';
import { excessiveGrants, ledgerSummary, probePaths, probeReplies, summariseWorkload, tableExists, type RunEvidence } from './evidence';

export interface RunOptions {
  dir: string;
  size: { users: number; items: number; bids: number };
  rate: number;
  /** Workload before the procedure starts. */
  warmupMs: number;
  /** Total workload duration (rolling), or the bound on the upgrade (Imago). */
  durationMs: number;
  log?: (m: string) => void;
}

/** A tiny round-robin HTTP balancer; a backend refusing connections is skipped for 2 s and the request tried on the next. */
export class Balancer {
  backends: Array<{ name: string; port: number; downUntil: number }> = [];
  private next = 0;
  private server?: http.Server;
  private agent = new http.Agent({ keepAlive: true, maxSockets: 128 });
  port = 0;

  async start(): Promise<string> {
    this.server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => this.forward(req, res, Buffer.concat(chunks), 0));
    });
    await new Promise<void>((r) => this.server!.listen(0, '127.0.0.1', r));
    this.port = (this.server.address() as { port: number }).port;
    return `http://127.0.0.1:${this.port}`;
  }

  private pick(): { name: string; port: number; downUntil: number } | undefined {
    const now = Date.now();
    for (let i = 0; i < this.backends.length; i++) {
      const b = this.backends[this.next++ % this.backends.length];
      if (b.downUntil <= now) return b;
    }
    return undefined;
  }

  private forward(req: http.IncomingMessage, res: http.ServerResponse, body: Buffer, tries: number): void {
    const b = this.pick();
    if (!b) { res.writeHead(503, { 'content-type': 'application/json' }); res.end('{"error":"no backend"}'); return; }
    const up = http.request({ host: '127.0.0.1', port: b.port, method: req.method, path: req.url, headers: req.headers, agent: this.agent }, (r) => {
      res.writeHead(r.statusCode ?? 502, r.headers);
      r.pipe(res);
    });
    up.on('error', (e: NodeJS.ErrnoException) => {
      if (res.headersSent) { res.destroy(); return; }
      if (e.code === 'ECONNREFUSED' && tries < this.backends.length) { b.downUntil = Date.now() + 2_000; this.forward(req, res, body, tries + 1); return; }
      res.writeHead(502, { 'content-type': 'application/json' }); res.end(JSON.stringify({ error: e.code ?? e.message }));
    });
    up.end(body);
  }

  async close(): Promise<void> {
    this.agent.destroy();
    this.server?.closeAllConnections();
    await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
  }
}

/** Starts v2 through the fault wrapper; resolves healthy or not within timeoutMs. */
export async function startV2(opts: { port: number; dbUrl: string; env: Record<string, string>; logFile: string; timeoutMs: number }): Promise<{ proc: ManagedProcess; healthy: boolean; url: string }> {
  const entry = path.join(__dirname, 'v2-wrapper.ts');
  const proc = new ManagedProcess(`auction-v2:${opts.port}`, process.execPath, ['--require', require.resolve('tsx/cjs'), entry], opts.logFile, {
    env: { ...process.env, ...opts.env, PORT: String(opts.port), DATABASE_URL: opts.dbUrl },
  });
  const url = `http://127.0.0.1:${opts.port}`;
  const deadline = Date.now() + opts.timeoutMs;
  while (Date.now() < deadline && !proc.exitedAlready) {
    if (await getJson(`${url}/health`, 1_000).then((r) => r.status === 200, () => false)) return { proc, healthy: true, url };
    await new Promise((r) => setTimeout(r, 200));
  }
  return { proc, healthy: false, url };
}

/** Launch-time environment of a v2 front-end for a recipe (shared with the Imago side). */
export async function recipeEnv(f: FaultRecipe, busyPort: number): Promise<Record<string, string>> {
  const env: Record<string, string> = { ...f.appEnv };
  if (f.dbPortClosed) env.FAULTLAB_DB_PORT = String(await freePort());
  if (f.listenOnBusyPort) env.FAULTLAB_LISTEN_PORT = String(busyPort);
  return env;
}

export async function runRolling(f: FaultRecipe, o: RunOptions): Promise<RunEvidence> {
  const log = o.log ?? (() => undefined);
  const started = Date.now();
  fs.mkdirSync(o.dir, { recursive: true });
  const notes: string[] = [];
  const database = 'auction';
  const db = new MariaDbInstance({ baseDir: path.join(o.dir, 'db'), removeOnDestroy: true });
  const procs: Array<{ stop(): Promise<void> }> = [];
  const balancer = new Balancer();
  try {
    await db.start();
    const v1Password = crypto.randomBytes(8).toString('hex');
    const v2Password = crypto.randomBytes(8).toString('hex');
    await setupDatabase(db, 'v1', { database, appUser: 'auction', appPassword: v1Password });
    const rootUrl = db.urlFor('root', '', database).replace('root:@', 'root@');
    await seed(rootUrl, o.size);
    const slots: Array<{ port: number; app: { stop(): Promise<void> } }> = [];
    for (const name of ['a', 'b']) {
      const app: RunningAuction = await startAuction({ version: 'v1', dbUrl: db.urlFor('auction', v1Password, database), logFile: path.join(o.dir, `v1-${name}.log`) });
      procs.push(app);
      slots.push({ port: app.port, app });
      balancer.backends.push({ name: `v1-${name}`, port: app.port, downUntil: 0 });
    }
    const url = await balancer.start();
    log(`rolling: 2 × v1 behind ${url}; workload ${o.rate} req/s for ${o.durationMs} ms`);
    const t0 = Date.now();
    const load = startWorkload({ baseUrl: url, mix: 'bidding', rate: o.rate, durationMs: o.durationMs, users: [1, o.size.users], items: [1, o.size.items], seed: 7 });
    await new Promise((r) => setTimeout(r, o.warmupMs));
    const upgradeStartMs = Date.now() - t0;

    const admin = await db.connect(database);
    const schemaStep = async () => {
      if (f.omitStep === 'schema') { notes.push('schema migration omitted'); return; }
      const t = Date.now();
      for (const s of EXPAND_MIGRATION) await admin.query(s);
      notes.push(`in-place migration ${Date.now() - t} ms`);
    };
    const accountStep = async () => {
      await db.createUser('auction_v2', v2Password, [`${APP_GRANTS} ON \`${database}\`.*`]);
      for (const s of recipeSql(f, database, 'auction_v2')) {
        await admin.query(s).catch((e) => notes.push(`recipe SQL failed: ${(e as Error).message.slice(0, 100)}`));
      }
    };
    try {
      if (!f.schemaAfterApp) await schemaStep();
      await accountStep();
      const env = await recipeEnv(f, db.port);
      const v2Url = db.urlFor('auction_v2', v2Password, database);
      let replaced = 0;
      for (const [i, slot] of slots.entries()) {
        // Drain: out of the balancer, then SIGTERM (v1 finishes its in-flight requests).
        balancer.backends = balancer.backends.filter((b) => b.port !== slot.port);
        await slot.app.stop();
        const v2 = await startV2({ port: slot.port, dbUrl: v2Url, env, logFile: path.join(o.dir, `v2-${i}.log`), timeoutMs: 10_000 });
        procs.push({ stop: () => v2.proc.stop(10_000) });
        if (!v2.healthy) {
          notes.push(`v2 front-end ${i + 1} not healthy in 10 s (${v2.proc.exitedAlready ? `exited ${v2.proc.exitCode}` : 'no answer'}): roll halted, ${balancer.backends.length} front-end(s) left`);
          break;
        }
        balancer.backends.push({ name: `v2-${i}`, port: slot.port, downUntil: 0 });
        replaced++;
        if (i === 0 && f.schemaAfterApp) { await new Promise((r) => setTimeout(r, 3_000)); await schemaStep(); }
        await new Promise((r) => setTimeout(r, 3_000));
      }
      notes.push(`${replaced}/2 front-ends replaced by v2`);
    } finally {
      await admin.end();
    }
    const w = await load.done;
    const migrated = await tableExists(rootUrl, database, 'item_bids');
    const ledger = await checkLedger(rootUrl, migrated ? 'v2' : 'v1', w.ledger);
    const probe = migrated ? await probeReplies(url, rootUrl, probePaths(o.size.users, o.size.items), path.join(o.dir, 'reference-v2.log')) : null;
    if (!migrated) notes.push('no v2 schema in the store: reply probe skipped');
    const grants = { account: 'auction_v2', excessive: await excessiveGrants(rootUrl, 'auction_v2') };
    return {
      strategy: 'rolling', fault: f.id, type: f.type, applied: describeRolling(f), durationMs: Date.now() - started, upgradeStartMs,
      workload: summariseWorkload(w), timeline: w.timeline, ledger: ledgerSummary(ledger), probe, grants, imago: null, notes,
    };
  } finally {
    await balancer.close().catch(() => undefined);
    for (const p of procs.reverse()) await p.stop().catch(() => undefined);
    await db.destroy().catch(() => undefined);
  }
}

function describeRolling(f: FaultRecipe): string {
  const parts: string[] = [];
  if (f.appEnv) parts.push(`v2 env ${Object.keys(f.appEnv).join(',')}`);
  if (f.dbPortClosed) parts.push('v2 DB port → closed port');
  if (f.listenOnBusyPort) parts.push("v2 listens on the DB's port");
  if (f.sql || f.perUserSql) parts.push('SQL on the shared DB');
  if (f.omitStep) parts.push('migration omitted');
  if (f.schemaAfterApp) parts.push('migration after first v2');
  return parts.join('; ') || 'none';
}
