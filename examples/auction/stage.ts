/**
 * The live "old universe" of the sample system, as an operator would have it
 * before an upgrade: auction v1 on its own MariaDB, behind an ingress
 * interceptor, plus a replication user for Imago. Used by the demo (client/demo.ts),
 * the end-to-end tests and the benchmarks.
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as YAML from 'yaml';
import { MariaDbInstance } from '../../lib/mariadb';
import { withTlsParams } from '../../lib/db-tls';
import { CertificateAuthority } from '../../lib/x509';
import type { ControlClientTls } from '../../interceptors/ingress/control-client';
import { startIngress, type Ingress } from '../../interceptors/ingress';
import { createCompareEngine } from '../../compare';
import { LocalProvider } from '../../providers/local/local-provider';
import { setupDatabase } from './database';
import { seed } from './seeder';
import { startAuction, type RunningAuction } from './launcher';

export interface StageOptions {
  dir?: string;
  users: number;
  items: number;
  bids: number;
  /** Turn on MariaDB's general log on Uold, to prove the upgrade never writes there. */
  generalLog?: boolean;
  /** Ingress interceptors in front of v1 (a fleet; default 1). Each gets its own data and control port, all the same token. */
  interceptors?: number;
  /**
   * Every link over TLS, with certificates of a CA made for the stage: Uold's
   * MariaDB requires TLS (require_secure_transport), the interceptors' control
   * APIs are HTTPS and require a client certificate, and the plan asks the
   * local provider for a Unew that requires TLS too.
   */
  tls?: boolean;
  log?: (msg: string) => void;
}

/** The stage's certificates (PEM files), when it runs with tls. */
export interface StageTls {
  ca: CertificateAuthority;
  /** The client certificate Imago's worker presents to the control APIs. */
  worker: { cert: string; key: string };
  /** The same, as IngressControlClient takes it. */
  control: ControlClientTls;
}

export interface UoldStage {
  dir: string;
  db: MariaDbInstance;
  app: RunningAuction;
  ingress: Ingress;
  /** Where clients connect (the first interceptor). */
  url: string;
  controlUrl: string;
  /** Every interceptor of the fleet: where clients connect, and their control APIs (same order). */
  fleet: Array<{ ingress: Ingress; url: string; controlUrl: string }>;
  token: string;
  appDbUrl: string;
  replUrl: string;
  database: string;
  seeded: { rows: number; ms: number };
  /** The certificates, when the stage runs with tls. */
  tls?: StageTls;
  /** Environment the worker needs to resolve the plan's secret references. */
  env: Record<string, string>;
  /** Writes a plan file for this stage (the template with this stage's ports), returns its path. */
  writePlan(overrides?: (plan: any) => void): string;
  stop(): Promise<void>;
}

const EXAMPLE_DIR = __dirname;

async function stageTls(dir: string): Promise<StageTls> {
  const ca = await CertificateAuthority.create(dir, 'stage-ca');
  const worker = await ca.issue('imago-worker', { usage: 'client' });
  const pem = (f: string) => fs.readFileSync(f, 'utf8');
  return { ca, worker, control: { ca: pem(ca.certFile), cert: pem(worker.cert), key: pem(worker.key) } };
}

export async function startUoldStage(opts: StageOptions): Promise<UoldStage> {
  const log = opts.log ?? (() => undefined);
  const dir = opts.dir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'imago-stage-'));
  fs.mkdirSync(dir, { recursive: true });
  const database = 'auction';
  const appPassword = crypto.randomBytes(8).toString('hex');
  const replPassword = crypto.randomBytes(8).toString('hex');
  const token = crypto.randomBytes(16).toString('hex');
  const cleanup: Array<() => Promise<void>> = [];
  const tls = opts.tls ? await stageTls(path.join(dir, 'tls')) : undefined;
  const dbTls = tls ? await tls.ca.issue('uold-db', { usage: 'server', names: ['127.0.0.1', 'localhost'] }) : undefined;
  const db = new MariaDbInstance({
    baseDir: path.join(dir, 'uold-db'), removeOnDestroy: !opts.dir,
    ...(tls && dbTls ? { tls: { caFile: tls.ca.certFile, certFile: dbTls.cert, keyFile: dbTls.key, requireSecureTransport: true } } : {}),
  });
  const controlTls = tls ? await tls.ca.issue('interceptor', { usage: 'server', names: ['127.0.0.1', 'localhost'] }) : undefined;
  // The application's and the seeder's connections verify Uold's certificate too.
  const withCa = (url: string) => (tls ? withTlsParams(url, { ca: tls.ca.certFile }, true) : url);
  try {
    await db.start();
    cleanup.push(() => db.destroy());
    await setupDatabase(db, 'v1', { database, appUser: 'auction', appPassword });
    // Imago's user on Uold: it can read rows and the binlog, and nothing else.
    await db.createUser('imago_repl', replPassword, ['REPLICATION SLAVE, REPLICATION CLIENT ON *.*', `SELECT ON \`${database}\`.*`]);
    if (opts.generalLog) await db.query("SET GLOBAL log_output = 'TABLE', general_log = 1");
    const appDbUrl = withCa(db.urlFor('auction', appPassword, database));
    log(`Uold database on 127.0.0.1:${db.port}; seeding ${opts.users} users, ${opts.items} items, ${opts.bids} bids`);
    const seeded = await seed(withCa(db.urlFor('root', '', database).replace('root:@', 'root@')), { users: opts.users, items: opts.items, bids: opts.bids });
    const app = await startAuction({ version: 'v1', dbUrl: appDbUrl, logFile: path.join(dir, 'uold-v1.log') });
    cleanup.push(() => app.stop());
    const fleet: UoldStage['fleet'] = [];
    for (let i = 0; i < (opts.interceptors ?? 1); i++) {
      const ing = await startIngress({
        upstream: { name: 'uold', url: app.url }, token,
        ...(tls && controlTls ? { controlTls: { certFile: controlTls.cert, keyFile: controlTls.key, clientCaFile: tls.ca.certFile } } : {}),
        comparerFactory: (cfg) => createCompareEngine(cfg as Parameters<typeof createCompareEngine>[0]),
      });
      cleanup.push(() => ing.close());
      fleet.push({ ingress: ing, url: ing.url, controlUrl: ing.controlUrl });
    }
    const ingress = fleet[0].ingress;
    log(`Uold: auction v1 at ${app.url}, behind ${fleet.length === 1 ? `the ingress interceptor at ${ingress.url}` : `${fleet.length} ingress interceptors at ${fleet.map((f) => f.url).join(', ')}`}`);
    const replUrl = db.urlFor('imago_repl', replPassword, database);
    const stage: UoldStage = {
      dir, db, app, ingress, url: ingress.url, controlUrl: ingress.controlUrl, fleet, token, appDbUrl, replUrl, database, ...(tls ? { tls } : {}),
      seeded: { rows: seeded.rows, ms: seeded.ms },
      env: { IMAGO_UOLD_REPL_URL: replUrl, IMAGO_INGRESS_TOKEN: token },
      writePlan(overrides) {
        const plan = YAML.parse(fs.readFileSync(path.join(EXAMPLE_DIR, 'plan.yaml'), 'utf8'));
        const ref = (f: string) => `file:${f}`;
        plan.uold.ingress = fleet.map((f) => ({
          ...plan.uold.ingress[0], controlUrl: f.controlUrl,
          ...(tls ? { tls: { caRef: ref(tls.ca.certFile), certRef: ref(tls.worker.cert), keyRef: ref(tls.worker.key) } } : {}),
        }));
        if (tls) {
          plan.uold.db.tls = { caRef: ref(tls.ca.certFile) };
          // The local provider makes Unew's certificates (a CA of the universe's own).
          plan.unew.tls = { verifyIdentity: true };
        }
        for (const k of ['schemaFile', 'conversion'] as const) plan.unew[k] = path.join(EXAMPLE_DIR, plan.unew[k]);
        plan.unew.local = { baseDir: path.join(dir, 'universes') };
        // The plan file is written elsewhere than the example: make its commands absolute.
        const abs = (argv: string[]) => argv.map((a) => (a === 'node' ? process.execPath : a === 'tsx/cjs' ? require.resolve('tsx/cjs') : a.endsWith('.ts') ? path.join(EXAMPLE_DIR, a) : a));
        plan.unew.app.command = abs(plan.unew.app.command);
        for (const t of plan.tests) t.command = abs(t.command);
        overrides?.(plan);
        const file = path.join(dir, `plan-${Date.now()}.yaml`);
        fs.writeFileSync(file, YAML.stringify(plan));
        return file;
      },
      async stop() {
        // Universes made by upgrades of this stage (the local provider keeps them under dir/universes).
        const universes = path.join(dir, 'universes');
        for (const id of fs.existsSync(universes) ? fs.readdirSync(universes) : []) {
          await new LocalProvider().destroy(id, { local: { baseDir: universes } }).catch((err) => console.error(`stage: destroying universe ${id}: ${(err as Error).message}`));
        }
        for (const fn of cleanup.reverse()) await fn().catch(() => undefined);
        if (!opts.dir) fs.rmSync(dir, { recursive: true, force: true });
      },
    };
    return stage;
  } catch (err) {
    for (const fn of cleanup.reverse()) await fn().catch(() => undefined);
    throw err;
  }
}
