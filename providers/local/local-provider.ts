import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawn } from 'node:child_process';
import { MariaDbInstance, type MariaDbTls } from '../../lib/mariadb';
import { withTlsParams } from '../../lib/db-tls';
import { run } from '../../lib/proc';
import { connect } from '../../lib/sql';
import { CertificateAuthority } from '../../lib/x509';
import { freePort } from '../../lib/ports';
import { imagoError } from '../../lib/errors';
import { compileChecker } from '../../plan/checker';
import { DEFAULT_APP_PRIVILEGES, dbTlsSchema, grantsSchema, unewAppSchema } from '../../plan/schema';
import { Type, type Static } from '../../plan/schema-kit';
import type { PreparedSwitch, Provider, ProvisionRequest, SandboxHandle, SwitchCheck, TrafficState, UnewHandle, UniverseOwner, UniverseRecord, UoldRetirement } from '../provider';
import { localSectionOf, localSectionSchema } from './plan-section';
import { alive, isOurs, terminate } from './pids';

interface LocalState {
  upgradeId: string;
  dir: string;
  dbPort: number;
  dbPid?: number;
  serverId: number;
  database: string;
  appUser: string;
  appPassword: string;
  appPort?: number;
  appPid?: number;
  /** Set by a cut-over before it holds anyone (see Provider.markServing). */
  serving?: boolean;
  owner?: UniverseOwner;
  /** Unew's database serves TLS only, with a certificate of the universe's own CA (the plan's unew.tls). */
  tls?: { verifyIdentity: boolean };
}

/** The sandbox's own state file, in <universe>/sandbox/: its clone's mariadbd and its application. */
interface SandboxState {
  dir: string;
  dbPort: number;
  dbPid?: number;
  serverId: number;
  appPort?: number;
  appPid?: number;
  position: string;
  createdAt: number;
  cloneMs: number;
  startMs: number;
  /** Its mariadbd's Unix socket (in the temporary folder). */
  socket?: string;
  /** Set once the application answered its health check: a sandbox without it is half-made. */
  ready?: boolean;
}

/** The mark a sandbox's processes carry (IMAGO_UNIVERSE of its application, its folder in mariadbd's command line). */
const sandboxMarker = (upgradeId: string) => `${upgradeId}.sandbox`;

/** A universe's (or its sandbox's) state.json; undefined when there is none yet. */
function readStateFile<T>(dir: string): T | undefined {
  try { return JSON.parse(fs.readFileSync(path.join(dir, 'state.json'), 'utf8')) as T; } catch { return undefined; }
}

/** Written whole or not at all (a rename over the old file): a crash never leaves half a state. */
function writeStateFile(dir: string, state: object): void {
  const tmp = path.join(dir, 'state.json.tmp');
  fs.writeFileSync(tmp, JSON.stringify(state, null, 2), { mode: 0o600 });
  fs.renameSync(tmp, path.join(dir, 'state.json'));
}

/** Debian ships mariadb-backup in /usr/bin; PATH may lack it on a minimal worker. */
function mariadbBackupBinary(): string {
  for (const dir of (process.env.PATH ?? '').split(':').concat(['/usr/bin', '/usr/sbin'])) {
    const p = path.join(dir, 'mariadb-backup');
    if (dir && fs.existsSync(p)) return p;
  }
  throw imagoError('SANDBOX_FAILED', "'mariadb-backup' was not found on PATH or in /usr/bin: install the Debian package mariadb-backup (bash scripts/setup.sh)");
}

/**
 * What the local provider reads of the plan's `unew` (the provider interface
 * passes it untyped): declared with the plan's own schemas, so it is checked
 * and typed here rather than cast. Other keys of `unew` are not its business.
 */
const localUnewSchema = Type.Object({
  database: Type.String({ minLength: 1 }),
  app: unewAppSchema,
  grants: Type.Optional(grantsSchema),
  local: Type.Optional(localSectionSchema),
  tls: Type.Optional(dbTlsSchema),
});
type LocalUnew = Static<typeof localUnewSchema>;
const checkLocalUnew = compileChecker(localUnewSchema, '/unew');

function localUnewOf(unew: Record<string, unknown>): LocalUnew {
  const { value, errors } = checkLocalUnew(unew);
  if (!value) throw imagoError('IMAGO_PLAN_INVALID', errors.join('; '));
  return value;
}

/** Where a universe keeps its CA and its database's certificate. */
function tlsFiles(dir: string): MariaDbTls {
  const d = path.join(dir, 'tls');
  return { caFile: path.join(d, 'unew-ca.pem'), certFile: path.join(d, 'unew-db.pem'), keyFile: path.join(d, 'unew-db.key'), requireSecureTransport: true };
}

/**
 * The universe's own CA and its database's certificate (made once, kept with
 * the universe, removed with it): Unew's MariaDB then accepts TLS connections
 * only (require_secure_transport), Imago's and the application's alike, and
 * both verify its certificate against this CA.
 */
/** A URL of the universe's database (or of its sandbox's clone, on `port`): with its TLS settings when it has TLS. */
function universeDbUrl(s: LocalState, port: number, credentials: string, database: string): string {
  const url = `mysql://${credentials}@127.0.0.1:${port}/${database}`;
  return s.tls ? withTlsParams(url, { ca: tlsFiles(s.dir).caFile }, s.tls.verifyIdentity) : url;
}

async function universeTls(dir: string): Promise<MariaDbTls> {
  const files = tlsFiles(dir);
  if (fs.existsSync(files.certFile) && fs.existsSync(files.keyFile)) return files;
  const ca = await CertificateAuthority.create(path.dirname(files.caFile), 'unew-ca');
  // mysql2 checks the certificate of an IP-address URL against the name 'localhost': both are named.
  await ca.issue('unew-db', { usage: 'server', names: ['127.0.0.1', 'localhost'] });
  return files;
}

/** Default home of local universes; one folder per upgrade id. */
export function defaultUniversesDir(): string {
  return process.env.IMAGO_UNIVERSES_DIR || path.join(os.homedir(), '.imago', 'universes');
}

/**
 * The embedded default provider: Unew as processes on loopback — its own
 * `mariadbd` instance (own datadir, port, server id, credentials) and the new
 * version's application, which is given only Unew's database URL. Everything
 * lives in one folder keyed by upgrade id, with a state file, so every call is
 * idempotent and destroy() works from the id alone after a crash.
 */
export class LocalProvider implements Provider {
  readonly name = 'local';

  private dirFor(upgradeId: string, unew: Record<string, unknown>): string {
    if (!/^[A-Za-z0-9._-]+$/.test(upgradeId)) throw imagoError('IMAGO_PLAN_INVALID', `upgrade id '${upgradeId}' may hold only letters, digits, '.', '_' and '-'`);
    const base = localSectionOf(unew).baseDir || defaultUniversesDir();
    return path.join(base, upgradeId);
  }

  private readState(dir: string): LocalState | undefined { return readStateFile<LocalState>(dir); }

  private writeState(s: LocalState): void { writeStateFile(s.dir, s); }

  private handle(s: LocalState): UnewHandle {
    return {
      upgradeId: s.upgradeId,
      provider: this.name,
      appUrls: s.appPort ? [`http://127.0.0.1:${s.appPort}`] : [],
      db: {
        adminUrlRef: `file:${path.join(s.dir, 'admin.url')}`, endpoint: `127.0.0.1:${s.dbPort}`, database: s.database, appUser: s.appUser,
        ...(s.tls ? { tls: { caRef: `file:${tlsFiles(s.dir).caFile}`, verifyIdentity: s.tls.verifyIdentity } } : {}),
      },
      state: { dir: s.dir, dbPort: s.dbPort, appPort: s.appPort ?? null },
    };
  }

  async provisionDatabase(req: ProvisionRequest): Promise<UnewHandle> {
    const unew = localUnewOf(req.unew);
    const dir = this.dirFor(req.upgradeId, req.unew);
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    let s = this.readState(dir);
    if (!s) {
      s = {
        upgradeId: req.upgradeId, dir, dbPort: await freePort(), serverId: 1000 + crypto.randomInt(1_000_000),
        database: unew.database, appUser: 'app', appPassword: crypto.randomBytes(12).toString('hex'),
        ...(req.owner ? { owner: req.owner } : {}),
        ...(unew.tls ? { tls: { verifyIdentity: unew.tls.verifyIdentity ?? true } } : {}),
      };
      this.writeState(s);
    }
    const tls = s.tls ? await universeTls(s.dir) : undefined;
    // Its own session: Unew's database outlives a worker stopped with its process group (Ctrl-C, systemctl, a container stop).
    const db = new MariaDbInstance({ baseDir: path.join(dir, 'db'), port: s.dbPort, serverId: s.serverId, removeOnDestroy: false, ownSession: true, ...(tls ? { tls } : {}) });
    if (!(s.dbPid && alive(s.dbPid) && isOurs(s.dbPid, dir))) {
      await db.start();
      s.dbPid = db.pid;
      this.writeState(s);
    } else {
      db.port = s.dbPort;
    }
    await db.createDatabase(s.database);
    // Unew's application gets its own user on its own instance: it has no
    // credentials for, and no route to, Uold's data store. Its privileges are
    // the plan's (unew.grants), which the grants check verifies after the schema step.
    const privileges = unew.grants?.privileges?.length ? unew.grants.privileges : DEFAULT_APP_PRIVILEGES;
    await db.createUser(s.appUser, s.appPassword, [`${privileges.join(', ')} ON \`${s.database}\`.*`]);
    fs.writeFileSync(path.join(dir, 'admin.url'), db.rootUrl + s.database, { mode: 0o600 });
    return this.handle(s);
  }

  async startApplication(handle: UnewHandle, req: ProvisionRequest): Promise<UnewHandle> {
    const unew = localUnewOf(req.unew);
    const dir = this.dirFor(req.upgradeId, req.unew);
    const s = this.readState(dir);
    if (!s) throw imagoError('IMAGO_HEALTH_FAILED', `no universe for ${req.upgradeId}: provision its database first`);
    if (s.appPid && alive(s.appPid) && isOurs(s.appPid, req.upgradeId)) return this.handle(s);
    s.appPort = await freePort();
    s.appPid = this.spawnApp(unew, req, path.join(dir, 'app.log'), {
      port: s.appPort, databaseUrl: universeDbUrl(s, s.dbPort, `${s.appUser}:${s.appPassword}`, s.database), universe: req.upgradeId,
    });
    this.writeState(s);
    return this.handle(s);
  }

  /** Starts the new version in a session of its own, given only its database's URL; returns its pid. */
  private spawnApp(unew: LocalUnew, req: ProvisionRequest, logFile: string, to: { port: number; databaseUrl: string; universe: string }): number | undefined {
    const [cmd, ...args] = unew.app.command;
    const out = fs.openSync(logFile, 'a');
    const child = spawn(cmd, args, {
      cwd: req.planDir ?? process.cwd(),
      stdio: ['ignore', out, out],
      detached: true,
      env: {
        PATH: process.env.PATH, HOME: process.env.HOME, NODE_OPTIONS: process.env.NODE_OPTIONS ?? '',
        ...unew.app.env,
        PORT: String(to.port), HOST: '127.0.0.1',
        DATABASE_URL: to.databaseUrl,
        IMAGO_UNIVERSE: to.universe,
        ...(process.env.IMAGO_TEST_RUN ? { IMAGO_TEST_RUN: process.env.IMAGO_TEST_RUN } : {}),
      },
    });
    fs.closeSync(out);
    child.unref();
    return child.pid;
  }

  private async waitUrlHealthy(url: string, pid: number | undefined, logFile: string, timeoutMs: number, healthPath: string, who: string): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let last = '';
    while (Date.now() < deadline) {
      if (pid && !alive(pid)) throw imagoError('SANDBOX_FAILED', `${who}'s application (pid ${pid}) exited before answering ${healthPath}; the end of its log:\n${this.tail(logFile)}`);
      try { const r = await fetch(url + healthPath, { signal: AbortSignal.timeout(2_000) }); last = `${url}${healthPath} → ${r.status}`; if (r.ok) return; } catch (err) { last = `${url}${healthPath}: ${(err as Error).message}`; }
      await new Promise((r) => setTimeout(r, 200));
    }
    throw imagoError('SANDBOX_FAILED', `${who}'s application did not answer its health check (${last || 'no answer'}); the end of its log:\n${this.tail(logFile)}`);
  }

  async waitHealthy(handle: UnewHandle, timeoutMs: number, healthPath = '/health', signal?: AbortSignal): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    const s = this.readState(String(handle.state.dir));
    let last = '';
    while (Date.now() < deadline) {
      signal?.throwIfAborted();
      if (s?.appPid && !alive(s.appPid)) break;
      const results = await Promise.all(handle.appUrls.map(async (u) => {
        try { const r = await fetch(u + healthPath, { signal: AbortSignal.timeout(2_000) }); last = `${u}${healthPath} → ${r.status}`; return r.ok; } catch (err) { last = `${u}${healthPath}: ${(err as Error).message}`; return false; }
      }));
      if (results.length && results.every(Boolean)) return;
      await new Promise((r) => setTimeout(r, 200));
    }
    const log = this.tail(path.join(String(handle.state.dir), 'app.log'));
    // A process that has exited will not get healthy by waiting: retrying cannot help.
    if (s?.appPid && !alive(s.appPid)) throw imagoError('IMAGO_APP_EXITED', `Unew's application (pid ${s.appPid}) exited before answering ${healthPath}; the end of its log:\n${log}`);
    throw imagoError('IMAGO_HEALTH_FAILED', `Unew's application did not answer its health check (${last || 'no answer'}); the end of its log:\n${log}`);
  }

  // Locally the interceptors are the whole switch: there is no routing at the provider's level.
  async prepareSwitch(_handle: UnewHandle, to: 'unew' | 'uold'): Promise<PreparedSwitch> {
    return { to, checks: [], changes: [] };
  }

  async applySwitch(): Promise<void> { /* nothing to change: see prepareSwitch */ }

  async trafficState(): Promise<TrafficState> { return 'none'; }

  async verifySwitch(): Promise<SwitchCheck[]> { return []; }

  // Uold runs behind the interceptors and is the user's: nothing at this provider's level to retire.
  async retireUold(): Promise<UoldRetirement> {
    return { kept: true, detail: 'the local provider does not manage Uold: nothing to retire' };
  }

  async validateWorker(): Promise<void> { /* everything it needs is checked by the plan's schema and preflight */ }

  async markServing(handle: UnewHandle, serving: boolean): Promise<void> {
    const s = this.readState(String(handle.state.dir));
    if (!s) throw imagoError('IMAGO_HEALTH_FAILED', `no universe for ${handle.upgradeId} in ${String(handle.state.dir)}`);
    if (!!s.serving === serving) return;
    s.serving = serving;
    this.writeState(s);
  }

  async listUniverses(unew: Record<string, unknown>): Promise<UniverseRecord[]> {
    const base = localSectionOf(unew).baseDir || defaultUniversesDir();
    let names: string[];
    try { names = fs.readdirSync(base); } catch { return []; }
    const out: UniverseRecord[] = [];
    for (const name of names) {
      const s = this.readState(path.join(base, name));
      if (!s) continue;
      const procs = [s.dbPid && alive(s.dbPid) && isOurs(s.dbPid, s.dir) ? `mariadbd pid ${s.dbPid} on :${s.dbPort}` : '', s.appPid && alive(s.appPid) && isOurs(s.appPid, s.upgradeId) ? `app pid ${s.appPid} on :${s.appPort}` : ''].filter(Boolean);
      out.push({ upgradeId: s.upgradeId, detail: `${s.dir}${procs.length ? ` (${procs.join(', ')})` : ' (no process running)'}`, serving: !!s.serving, ...(s.owner ? { owner: s.owner } : {}) });
    }
    return out;
  }

  /**
   * The sandbox of shadow writes: a hot copy of Unew's datadir made with
   * mariadb-backup (consistent: InnoDB's redo applied by --prepare, so the
   * transfer's state row matches the copied rows), a mariadbd of its own on
   * it, and a second instance of the new version bound to it only. Lives in
   * <universe>/sandbox/, so destroy() of the universe removes it too.
   */
  async createSandbox(handle: UnewHandle, req: ProvisionRequest): Promise<SandboxHandle> {
    const unew = localUnewOf(req.unew);
    const dir = this.dirFor(req.upgradeId, req.unew);
    const s = this.readState(dir);
    if (!s?.dbPid || !alive(s.dbPid)) throw imagoError('SANDBOX_FAILED', `no running Unew database for ${req.upgradeId} in ${dir}: the sandbox is a clone of it`);
    const sbDir = path.join(dir, 'sandbox');
    const marker = sandboxMarker(req.upgradeId);
    const existing = this.readSandbox(sbDir);
    if (existing?.ready && existing.appPid && alive(existing.appPid) && isOurs(existing.appPid, marker) && existing.dbPid && alive(existing.dbPid) && isOurs(existing.dbPid, sbDir)) {
      return this.sandboxHandle(req.upgradeId, existing);
    }
    // A half-made sandbox (a crash while cloning or starting) is thrown away and made again.
    await this.removeSandbox(sbDir, marker);
    fs.mkdirSync(path.join(sbDir, 'db'), { recursive: true, mode: 0o700 });
    const createdAt = Date.now();
    const target = path.join(sbDir, 'db', 'data');
    try {
      // --no-defaults first: no my.cnf of the machine leaks in. The backup reads Unew while the transfer keeps writing to it.
      // Unew's database may accept TLS connections only: the backup's connection uses the universe's CA then.
      const tlsArgs = s.tls ? [`--ssl-ca=${tlsFiles(s.dir).caFile}`] : [];
      await run(mariadbBackupBinary(), ['--no-defaults', '--backup', `--datadir=${path.join(dir, 'db', 'data')}`, '--host=127.0.0.1', `--port=${s.dbPort}`, '--user=root', ...tlsArgs, `--target-dir=${target}`]);
      await run(mariadbBackupBinary(), ['--no-defaults', '--prepare', `--target-dir=${target}`]);
    } catch (err) {
      throw imagoError('SANDBOX_FAILED', `cloning Unew's database (${s.dbPort}) with mariadb-backup: ${(err as Error).message.slice(-1500)}`);
    }
    // The prepared copy is a complete datadir (the mysql schema, the app's user included): start it as it is.
    fs.writeFileSync(path.join(target, '.imago-installed'), new Date().toISOString());
    const cloneMs = Date.now() - createdAt;
    const sb: SandboxState = { dir: sbDir, dbPort: 0, serverId: s.serverId + 1 + crypto.randomInt(1000), position: '', createdAt, cloneMs, startMs: 0 };
    // The socket outside the universe's folder: its path would exceed the 107 bytes a Unix socket path may have.
    sb.socket = path.join(os.tmpdir(), `imago-sb-${crypto.randomBytes(6).toString('hex')}.sock`);
    // The clone serves as Unew does: TLS only, with the universe's certificate, when Unew has TLS.
    const tls = s.tls ? await universeTls(s.dir) : undefined;
    const db = new MariaDbInstance({ baseDir: path.join(sbDir, 'db'), serverId: sb.serverId, removeOnDestroy: false, ownSession: true, socket: sb.socket, ...(tls ? { tls } : {}) });
    await db.start();
    sb.dbPort = db.port;
    sb.dbPid = db.pid;
    this.writeSandbox(sb);
    sb.position = await readAppliedPosition(universeDbUrl(s, sb.dbPort, 'root', s.database));
    sb.appPort = await freePort();
    sb.appPid = this.spawnApp(unew, req, path.join(sbDir, 'app.log'), {
      port: sb.appPort, databaseUrl: universeDbUrl(s, sb.dbPort, `${s.appUser}:${s.appPassword}`, s.database), universe: marker,
    });
    this.writeSandbox(sb);
    const startedAt = Date.now();
    await this.waitUrlHealthy(`http://127.0.0.1:${sb.appPort}`, sb.appPid, path.join(sbDir, 'app.log'), unew.app.startTimeoutMs, unew.app.healthPath, 'the sandbox');
    sb.startMs = Date.now() - startedAt;
    sb.ready = true;
    this.writeSandbox(sb);
    return this.sandboxHandle(req.upgradeId, sb);
  }

  async destroySandbox(upgradeId: string, unew: Record<string, unknown>): Promise<void> {
    await this.removeSandbox(path.join(this.dirFor(upgradeId, unew), 'sandbox'), sandboxMarker(upgradeId));
  }

  private async removeSandbox(sbDir: string, marker: string): Promise<void> {
    const sb = this.readSandbox(sbDir);
    if (sb?.appPid && isOurs(sb.appPid, marker)) await terminate(sb.appPid, 10_000);
    if (sb?.dbPid && isOurs(sb.dbPid, sbDir)) await terminate(sb.dbPid, 20_000);
    if (sb?.socket) fs.rmSync(sb.socket, { force: true });
    fs.rmSync(sbDir, { recursive: true, force: true });
  }

  private readSandbox(sbDir: string): SandboxState | undefined { return readStateFile<SandboxState>(sbDir); }

  private writeSandbox(sb: SandboxState): void { writeStateFile(sb.dir, sb); }

  private sandboxHandle(upgradeId: string, sb: SandboxState): SandboxHandle {
    return { upgradeId, appUrl: `http://127.0.0.1:${sb.appPort}`, dbEndpoint: `127.0.0.1:${sb.dbPort}`, position: sb.position, createdAt: sb.createdAt, cloneMs: sb.cloneMs, startMs: sb.startMs };
  }

  async destroy(upgradeId: string, unew: Record<string, unknown>): Promise<void> {
    const dir = this.dirFor(upgradeId, unew);
    await this.removeSandbox(path.join(dir, 'sandbox'), sandboxMarker(upgradeId));
    const s = this.readState(dir);
    if (s?.appPid && isOurs(s.appPid, upgradeId)) await terminate(s.appPid, 10_000);
    if (s?.dbPid && isOurs(s.dbPid, dir)) await terminate(s.dbPid, 20_000);
    fs.rmSync(dir, { recursive: true, force: true });
  }

  private tail(file: string): string {
    // Bounded: the message travels in workflow history, which caps a failure's size.
    try { return fs.readFileSync(file, 'utf8').trimEnd().split('\n').slice(-15).map((l) => l.slice(0, 200)).join('\n'); } catch { return '(no log)'; }
  }
}

/** The transfer's applied position of Uold's change stream as the clone holds it ('' when there is no transfer state). */
async function readAppliedPosition(url: string): Promise<string> {
  const c = await connect(url);
  try {
    const [rows] = await c.query('SELECT applied_gtid FROM _imago_transfer_state WHERE id = 1') as [Array<{ applied_gtid: string }>, unknown];
    return rows[0]?.applied_gtid ?? '';
  } catch {
    return '';
  } finally {
    await c.end().catch(() => undefined);
  }
}
