import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as mysql from 'mysql2/promise';
import { freePort, waitForPort } from './ports';
import { ManagedProcess, run } from './proc';
import { imagoError } from './errors';

export interface MariaDbOptions {
  /** Folder that holds datadir, socket, logs; created if missing. Default: a new temp dir. */
  baseDir?: string;
  port?: number;
  /** Each instance and each binlog reader needs its own server id. */
  serverId?: number;
  /**
   * InnoDB buffer pool (MiB; default 2048). Memory is taken as pages are used,
   * so a small test pays little; a copy of millions of rows into a pool far
   * smaller than its indexes would measure the disk cache, not the copy.
   */
  bufferPoolMb?: number;
  /** Extra mariadbd flags (e.g. a wrong time zone injected by the fault lab). */
  extraArgs?: string[];
  /**
   * Serve TLS with these PEM files (the server's certificate must name
   * 127.0.0.1 and localhost: mysql2 checks an IP-address URL against 'localhost'). With requireSecureTransport every TCP connection must use TLS
   * (require_secure_transport=ON), this instance's own included.
   */
  tls?: MariaDbTls;
  /** Remove baseDir on destroy() (default: true when baseDir was not given). */
  removeOnDestroy?: boolean;
  /**
   * Run the server in a session of its own, not as a child that dies with its
   * starter: a universe's database belongs to the universe, not to the worker
   * that provisioned it. Ctrl-C, `systemctl stop` or a container stop signal
   * the worker's whole process group; Unew's database must outlive that.
   */
  ownSession?: boolean;
  /** Where the Unix socket goes (default: baseDir/mysqld.sock); for a baseDir whose path is too long for a socket (107 bytes). */
  socket?: string;
}

export interface MariaDbTls {
  caFile: string;
  certFile: string;
  keyFile: string;
  requireSecureTransport?: boolean;
}

let nextServerId = 100 + (process.pid % 1000) * 10;

/**
 * One independent `mariadbd` instance, started as a child process with its own
 * datadir, port, socket and server id, binlog in ROW format with full images
 * (what the egress interceptor needs). No systemd, no shared state with any
 * other instance: this is how each universe gets a store of its own.
 */
export class MariaDbInstance {
  readonly baseDir: string;
  readonly dataDir: string;
  readonly socket: string;
  readonly serverId: number;
  port = 0;
  private proc?: ManagedProcess;
  private readonly removeOnDestroy: boolean;

  constructor(private readonly opts: MariaDbOptions = {}) {
    this.baseDir = opts.baseDir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'imago-mariadb-'));
    fs.mkdirSync(this.baseDir, { recursive: true });
    this.dataDir = path.join(this.baseDir, 'data');
    this.socket = opts.socket ?? path.join(this.baseDir, 'mysqld.sock');
    this.serverId = opts.serverId ?? nextServerId++;
    this.removeOnDestroy = opts.removeOnDestroy ?? opts.baseDir === undefined;
  }

  get pid(): number | undefined { return this.proc?.pid; }
  get running(): boolean { return !!this.proc && !this.proc.exitedAlready; }
  get logFile(): string { return path.join(this.baseDir, 'error.log'); }

  /** root over TCP on loopback; for administration only, never handed to an application. */
  get rootUrl(): string { return `mysql://root@127.0.0.1:${this.port}/`; }

  urlFor(user: string, password: string, database = ''): string {
    return `mysql://${encodeURIComponent(user)}:${encodeURIComponent(password)}@127.0.0.1:${this.port}/${database}`;
  }

  async start(): Promise<this> {
    if (this.running) return this;
    const tmpDir = path.join(this.baseDir, 'tmp');
    fs.mkdirSync(tmpDir, { recursive: true });
    if (!fs.existsSync(path.join(this.dataDir, '.imago-installed'))) {
      // A half-made datadir (a crash during install) is thrown away and made again.
      fs.rmSync(this.dataDir, { recursive: true, force: true });
      fs.mkdirSync(this.dataDir, { recursive: true });
      // Own tmpdir: concurrent installs sharing /tmp can collide on temp-table names.
      await run(mariadbBinary('mariadb-install-db'), [
        '--no-defaults', `--datadir=${this.dataDir}`, '--user=root', `--tmpdir=${tmpDir}`,
        '--auth-root-authentication-method=normal', '--skip-test-db',
      ]);
      fs.writeFileSync(path.join(this.dataDir, '.imago-installed'), new Date().toISOString());
    }
    for (let attempt = 0; ; attempt++) {
      this.port = this.opts.port ?? await freePort();
      // --no-defaults must come first: no my.cnf of the machine leaks in.
      this.proc = new ManagedProcess(`mariadbd:${this.port}`, mariadbBinary('mariadbd'), [
        '--no-defaults', `--datadir=${this.dataDir}`, '--user=root', `--tmpdir=${tmpDir}`,
        `--port=${this.port}`, '--bind-address=127.0.0.1', `--socket=${this.socket}`,
        `--pid-file=${path.join(this.baseDir, 'mysqld.pid')}`, `--log-error=${this.logFile}`,
        `--server-id=${this.serverId}`, `--log-bin=${path.join(this.baseDir, 'binlog')}`,
        '--binlog-format=ROW', '--binlog-row-image=FULL', '--binlog-row-metadata=FULL',
        '--skip-name-resolve', '--max-connections=500', `--innodb-buffer-pool-size=${this.opts.bufferPoolMb ?? 2048}M`,
        '--innodb-flush-log-at-trx-commit=2', '--sync-binlog=0',
        ...this.tlsArgs(),
        ...(this.opts.extraArgs ?? []),
      ], path.join(this.baseDir, 'stdout.log'), this.opts.ownSession ? { detached: true } : {});
      if (this.opts.ownSession) this.proc.child.unref();
      try {
        await Promise.race([
          waitForPort(this.port, '127.0.0.1', 60_000),
          // eslint-disable-next-line no-restricted-syntax -- caught below into IMAGO_MARIADB_START with the error log
          this.proc.waitExit().then((code) => { throw new Error(`mariadbd exited with ${code}`); }),
        ]);
        await this.waitReady();
        return this;
      } catch (err) {
        await this.proc.stop(2_000);
        const log = fs.existsSync(this.logFile) ? fs.readFileSync(this.logFile, 'utf8').split('\n').slice(-15).join('\n') : '';
        if (attempt < 2 && this.opts.port === undefined && /Address already in use|Can't start server/.test(log)) continue;
        throw imagoError('IMAGO_MARIADB_START', `mariadbd in ${this.baseDir}: ${(err as Error).message}\n${log}`);
      }
    }
  }

  private tlsArgs(): string[] {
    const t = this.opts.tls;
    if (!t) return [];
    return [`--ssl-ca=${t.caFile}`, `--ssl-cert=${t.certFile}`, `--ssl-key=${t.keyFile}`, ...(t.requireSecureTransport ? ['--require-secure-transport=ON'] : [])];
  }

  /** The TLS files this instance serves with, if any. */
  get tls(): MariaDbTls | undefined { return this.opts.tls; }

  /** mysql2's `ssl` for this instance's own connections: verified against its CA. */
  private ssl(): mysql.SslOptions | undefined {
    return this.opts.tls ? { ca: fs.readFileSync(this.opts.tls.caFile, 'utf8'), rejectUnauthorized: true, verifyIdentity: true } : undefined;
  }

  private async waitReady(): Promise<void> {
    const deadline = Date.now() + 30_000;
    for (;;) {
      try {
        const c = await mysql.createConnection({ host: '127.0.0.1', port: this.port, user: 'root', ssl: this.ssl() });
        await c.end();
        return;
      } catch (err) {
        if (Date.now() > deadline) throw err;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  }

  /** A root connection (multipleStatements on) for set-up work. Caller ends it. */
  connect(database?: string): Promise<mysql.Connection> {
    return mysql.createConnection({ host: '127.0.0.1', port: this.port, user: 'root', database, multipleStatements: true, ssl: this.ssl() });
  }

  async query(sql: string, params: unknown[] = []): Promise<unknown> {
    const c = await this.connect();
    try { const [rows] = await c.query(sql, params); return rows; } finally { await c.end(); }
  }

  async createDatabase(name: string): Promise<void> {
    await this.query(`CREATE DATABASE IF NOT EXISTS \`${name}\``);
  }

  /** Creates (or re-creates) a user on 127.0.0.1 and '%' with the given grants, e.g. ['SELECT, INSERT ON shop.*']. */
  async createUser(user: string, password: string, grants: string[]): Promise<void> {
    const c = await this.connect();
    try {
      for (const host of ['127.0.0.1', 'localhost', '%']) {
        await c.query(`CREATE OR REPLACE USER ?@? IDENTIFIED BY ?`, [user, host, password]);
        for (const g of grants) await c.query(`GRANT ${g} TO ?@?`, [user, host]);
      }
    } finally { await c.end(); }
  }

  async stop(): Promise<void> {
    await this.proc?.stop(20_000);
  }

  /** SIGKILL, as a crash would. */
  async crash(): Promise<void> {
    await this.proc?.kill9();
  }

  async destroy(): Promise<void> {
    await this.stop();
    if (this.removeOnDestroy) fs.rmSync(this.baseDir, { recursive: true, force: true });
  }
}

/** Debian puts mariadbd in /usr/sbin, which is not on every PATH. */
export function mariadbBinary(name: 'mariadbd' | 'mariadb-install-db' | 'mariadb' | 'mariadb-dump'): string {
  for (const dir of (process.env.PATH ?? '').split(':').concat(['/usr/sbin', '/usr/bin'])) {
    const p = path.join(dir, name);
    if (dir && fs.existsSync(p)) return p;
  }
  throw imagoError('IMAGO_PREREQ_MISSING', `'${name}' was not found on PATH or in /usr/sbin (Debian package mariadb-server)`);
}
