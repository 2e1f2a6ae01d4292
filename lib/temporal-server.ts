import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Connection } from '@temporalio/client';
import { freePorts } from './ports';
import { ManagedProcess } from './proc';
import { imagoError } from './errors';

/** The Temporal CLI tag that `go install` accepts (later tags carry replace directives). */
export const TEMPORAL_CLI_VERSION = '1.5.1';

/** Where scripts/setup.sh builds the CLI: a per-user cache outside the work tree, so fresh clones reuse it. */
export function cachedTemporalPath(): string {
  const cache = process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache');
  return path.join(cache, 'imago', `temporal-v${TEMPORAL_CLI_VERSION}`, 'temporal');
}

/** IMAGO_TEMPORAL_BIN, else `temporal` on PATH, else the cached build. */
export function resolveTemporalBinary(): string {
  const fromEnv = process.env.IMAGO_TEMPORAL_BIN;
  if (fromEnv) {
    if (!fs.existsSync(fromEnv)) throw imagoError('IMAGO_PREREQ_MISSING', `IMAGO_TEMPORAL_BIN=${fromEnv} does not exist`);
    return fromEnv;
  }
  for (const dir of (process.env.PATH ?? '').split(':')) {
    const p = path.join(dir, 'temporal');
    if (dir && fs.existsSync(p)) return p;
  }
  const cached = cachedTemporalPath();
  if (fs.existsSync(cached)) return cached;
  throw imagoError('IMAGO_PREREQ_MISSING', `no Temporal CLI: not in IMAGO_TEMPORAL_BIN, not on PATH, not at ${cached}`);
}

/** Search attributes the upgrade workflow upserts; the dev server must know them before a workflow sets them. */
export const SEARCH_ATTRIBUTES: Record<string, 'Keyword' | 'Text' | 'Int' | 'Double' | 'Bool' | 'Datetime' | 'KeywordList'> = {
  ImagoPhase: 'Keyword',
  ImagoSystem: 'Keyword',
  ImagoFromVersion: 'Keyword',
  ImagoToVersion: 'Keyword',
  ImagoOutcome: 'Keyword',
};

export interface DevServerOptions {
  port?: number;
  /** Serve the web UI on this port; headless when undefined. */
  uiPort?: number;
  /** SQLite file: state survives a restart of the server. In-memory when undefined. */
  dbFile?: string;
  namespace?: string;
  logFile?: string;
  /**
   * Dynamic config values (`--dynamic-config-value KEY=JSON`), e.g. lowered
   * history limits so a test meets in minutes what production meets in days:
   * { 'limit.historyCount.suggestContinueAsNew': 60, 'limit.historyCount.error': 250 }.
   */
  dynamicConfig?: Record<string, unknown>;
}

/** `temporal server start-dev` as a child process, on loopback. */
export class TemporalDevServer {
  port = 0;
  private proc?: ManagedProcess;
  readonly logFile: string;
  readonly namespace: string;

  /** The temporary folder of the log when no logFile was given: removed by stop(), as nothing else reads it then. */
  private readonly ownDir?: string;

  constructor(private readonly opts: DevServerOptions = {}) {
    this.namespace = opts.namespace ?? 'default';
    if (!opts.logFile) this.ownDir = fs.mkdtempSync(path.join(os.tmpdir(), 'imago-temporal-'));
    this.logFile = opts.logFile ?? path.join(this.ownDir!, 'server.log');
  }

  get address(): string { return `127.0.0.1:${this.port}`; }
  get pid(): number | undefined { return this.proc?.pid; }
  get uiUrl(): string | undefined { return this.opts.uiPort ? `http://127.0.0.1:${this.opts.uiPort}` : undefined; }

  async start(): Promise<this> {
    // A port another process takes between our choice and the server's bind is tried again with new
    // ones (the frontend's own port too, unless it was given or kept from a previous start).
    for (let attempt = 1; ; attempt++) {
      const fixed = !!(this.port || this.opts.port);
      try {
        return await this.startOnce();
      } catch (err) {
        if (attempt >= 3 || !/address already in use/.test((err as Error).message)) throw err;
        if (!fixed) this.port = 0;
      }
    }
  }

  private async startOnce(): Promise<this> {
    const bin = resolveTemporalBinary();
    const [p0, httpPort, metricsPort] = await freePorts(3);
    this.port = this.port || this.opts.port || p0;
    const args = ['server', 'start-dev', '--ip', '127.0.0.1', '--port', String(this.port),
      '--http-port', String(httpPort === this.port ? p0 : httpPort), '--metrics-port', String(metricsPort === this.port ? p0 : metricsPort),
      '--log-level', 'warn', '--namespace', this.namespace];
    if (this.opts.uiPort) args.push('--ui-port', String(this.opts.uiPort)); else args.push('--headless');
    if (this.opts.dbFile) args.push('--db-filename', this.opts.dbFile);
    for (const [name, type] of Object.entries(SEARCH_ATTRIBUTES)) args.push('--search-attribute', `${name}=${type}`);
    for (const [key, value] of Object.entries(this.opts.dynamicConfig ?? {})) args.push('--dynamic-config-value', `${key}=${JSON.stringify(value)}`);
    if (this.ownDir) fs.mkdirSync(this.ownDir, { recursive: true }); // a server stopped and started again
    this.proc = new ManagedProcess(`temporal:${this.port}`, bin, args, this.logFile);
    try {
      await Promise.race([
        waitForFrontend(this.address, this.namespace, 120_000),
        // eslint-disable-next-line no-restricted-syntax -- caught below into IMAGO_TEMPORAL_START with the server's log
        this.proc.waitExit().then((code) => { throw new Error(`exited with ${code}`); }),
      ]);
    } catch (err) {
      await this.proc.stop(2_000);
      throw imagoError('IMAGO_TEMPORAL_START', `${bin} on port ${this.port}: ${(err as Error).message}\n${this.proc.tail()}`);
    }
    return this;
  }

  async stop(): Promise<void> {
    await this.proc?.stop(15_000);
    if (this.ownDir) fs.rmSync(this.ownDir, { recursive: true, force: true });
  }
  async kill9(): Promise<void> { await this.proc?.kill9(); }
}

/** Polls the frontend until the namespace answers (the server registers it after the port opens). */
export async function waitForFrontend(address: string, namespace: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    let conn: Connection | undefined;
    try {
      conn = await Connection.connect({ address, connectTimeout: 2_000 });
      await conn.workflowService.describeNamespace({ namespace });
      return;
    } catch (err) {
      last = err;
      await new Promise((r) => setTimeout(r, 250));
    } finally {
      await conn?.close().catch(() => undefined);
    }
  }
  // eslint-disable-next-line no-restricted-syntax -- the start's catch wraps it into IMAGO_TEMPORAL_START with the server's log
  throw new Error(`frontend at ${address} did not answer within ${timeoutMs} ms: ${(last as Error)?.message}`);
}
