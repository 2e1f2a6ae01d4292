/**
 * The data plane: an nginx master with its workers (ngx_http_lua_module),
 * started, watched and stopped from here.
 *
 * - nginx's master restarts a worker that dies (its shared memory, where the
 *   record, the hold queue's tickets, the counters and the served records
 *   live, outlives any worker); the Lua in lua/imago/ settles what the dead
 *   worker had (main.lua).
 * - This supervisor restarts the master if it dies, from the last record it
 *   knew, with the target the hard timeout would have chosen.
 * - Both nginx processes die with their parent (PR_SET_PDEATHSIG = SIGQUIT,
 *   a graceful quit), so nothing outlives the control process.
 *
 * The data plane is driven through its own control endpoint, a unix socket
 * in the private run directory (lua/imago/api.lua).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import * as path from 'node:path';
import { imagoError } from '../../lib/errors';
import { freePort } from '../../lib/ports';
import type { ServedReply } from './api';
import { nginxConfig } from './nginx-config';
import type { IngressOptions } from './options';
import { decodeRecord, type SwitchRecord } from './record';

export const LUA_DIR = path.join(__dirname, 'lua');

export interface DataPlaneRecord {
  version: number;
  raw: string;
  record: SwitchRecord;
  inFlight: number;
  heldCount: number;
  orphaned: number;
}

export interface DataPlaneStatus extends DataPlaneRecord {
  counters: Record<string, number>;
  latency: { counts: number[]; sumMs: number };
  transitions: Array<{ at: number; what: string; detail: string }>;
  workers: Array<{ id: number; pid: number; inFlight: number; held: number }>;
  stopping: boolean;
}

export type PutResult =
  | { ok: true; version: number; heldCount: number; inFlight: number }
  | { ok: false; reason: 'version'; version: number }
  | { ok: false; reason: 'inflight'; version: number; inFlight: number };

export interface DataPlaneStart {
  options: Pick<IngressOptions, 'listen' | 'health' | 'workers' | 'limits' | 'nginx'>;
  runDir: string;
  /** The encoded record to start from. */
  record: string;
  startNote: string;
  /** The record to restart from after the master died (the supervisor asks for it then). */
  restartRecord: () => string;
  log: (line: string) => void;
}

const READY_TIMEOUT_MS = 15_000;

function checkInstalled(o: DataPlaneStart['options']): void {
  const missing = [o.nginx.binary, path.join(o.nginx.modulesDir, 'ngx_http_lua_module.so'), path.join(o.nginx.modulesDir, 'ndk_http_module.so')].filter((f) => !fs.existsSync(f));
  if (missing.length) {
    throw imagoError('IMAGO_PREREQ_MISSING', `the ingress data plane needs nginx with lua-nginx-module; missing: ${missing.join(', ')} (Debian: apt-get install nginx-light libnginx-mod-http-lua, or bash scripts/setup.sh)`);
  }
}

/** The hard limit on open files of this process (inherited by nginx). */
function maxOpenFiles(): number {
  try {
    const m = /^Max open files\s+\S+\s+(\S+)/m.exec(fs.readFileSync('/proc/self/limits', 'utf8'));
    if (m) return m[1] === 'unlimited' ? 65_536 : Math.min(1_048_576, Number(m[1]));
  } catch { /* not Linux */ }
  return 4_096;
}

/**
 * The workers' user when nginx is started as root: root too, since nginx
 * would switch them to nobody, who cannot reach the private run directory
 * (docs/ingress.md recommends running the interceptor as its own user).
 */
function workerUser(): string | undefined {
  return process.getuid?.() === 0 ? 'root' : undefined;
}

function assertPortFree(host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.once('error', (e) => reject(imagoError('INGRESS_LISTEN_FAILED', `${host}:${port}: ${e.message} (is another interceptor or server listening there?)`, e)));
    probe.listen({ host, port, exclusive: true }, () => probe.close(() => resolve()));
  });
}

export class NginxDataPlane {
  private child: ChildProcess | undefined;
  private stderr = '';
  private stopping = false;
  private agent = new http.Agent({ keepAlive: true, maxSockets: 32 });
  /** Times the master died and was started again. */
  restarts = 0;
  private restartTimes: number[] = [];
  private exited: Promise<void> = Promise.resolve();

  private constructor(private readonly s: DataPlaneStart, readonly port: number, readonly healthPort: number | undefined) {}

  get socketPath(): string { return path.join(this.s.runDir, 'control.sock'); }
  get masterPid(): number | undefined { return this.child?.pid; }

  static async start(s: DataPlaneStart): Promise<NginxDataPlane> {
    checkInstalled(s.options);
    for (const d of ['tmp', 'tmp/body', 'tmp/proxy', 'tmp/fastcgi', 'tmp/uwsgi', 'tmp/scgi']) fs.mkdirSync(path.join(s.runDir, d), { recursive: true, mode: 0o700 });
    const wantPort = s.options.listen.port;
    const wantHealth = s.options.health?.port;
    // nginx listens with SO_REUSEPORT (one accept queue per worker), which
    // would let a second interceptor of the same user share a port with a
    // first one, each holding and switching on its own. So a port must be
    // free before nginx takes it: a plain bind fails on any socket already there.
    for (const [host, port] of [[s.options.listen.host, wantPort], ...(s.options.health && wantHealth ? [[s.options.health.host, wantHealth] as const] : [])] as Array<readonly [string, number]>) {
      if (port) await assertPortFree(host, port);
    }
    // nginx cannot listen on port 0: pick free ports, and pick again if one was taken meanwhile.
    for (let attempt = 1; ; attempt += 1) {
      const port = wantPort || await freePort(s.options.listen.host);
      const healthPort = s.options.health ? wantHealth || await freePort(s.options.health.host) : undefined;
      const dp = new NginxDataPlane(s, port, healthPort);
      try {
        await dp.launch(s.record);
        return dp;
      } catch (e) {
        const retry = /Address already in use/.test((e as Error).message) && (!wantPort || (s.options.health && !wantHealth)) && attempt < 5;
        if (!retry) throw e;
      }
    }
  }

  private async launch(record: string): Promise<void> {
    const conf = path.join(this.s.runDir, 'nginx.conf');
    fs.writeFileSync(conf, nginxConfig({
      options: this.s.options, listenPort: this.port, healthPort: this.healthPort, runDir: this.s.runDir,
      luaDir: LUA_DIR, record, startNote: this.s.startNote, user: workerUser(), maxOpenFiles: maxOpenFiles(), controlPid: process.pid,
    }), { mode: 0o600 });
    fs.rmSync(this.socketPath, { force: true });
    this.stderr = '';
    const child = spawn(this.s.options.nginx.binary, ['-p', this.s.runDir, '-c', conf, '-e', path.join(this.s.runDir, 'error.log')], { stdio: ['ignore', 'ignore', 'pipe'] });
    this.child = child;
    child.stderr!.on('data', (d: Buffer) => { this.stderr = (this.stderr + d.toString()).slice(-8_000); });
    let exitedEarly: string | undefined;
    let ready = false;
    this.exited = new Promise<void>((resolve) => {
      child.once('exit', (code, signal) => {
        exitedEarly = `nginx exited (${signal ?? `code ${code}`})`;
        resolve();
        if (this.child === child) this.child = undefined;
        if (!this.stopping && ready) this.onMasterDeath(exitedEarly);
      });
      child.once('error', (e) => { exitedEarly = `nginx did not start: ${e.message}`; resolve(); });
    });
    const deadline = Date.now() + READY_TIMEOUT_MS;
    for (;;) {
      if (exitedEarly) {
        const text = this.errorText();
        // A port in use or not allowed is the operator's to fix; anything else is nginx's failure.
        throw imagoError(/bind\(\)|listen\(\)|Address already in use|Permission denied/.test(text) ? 'INGRESS_LISTEN_FAILED' : 'INGRESS_DATAPLANE_FAILED', `data plane: ${exitedEarly}: ${text}`);
      }
      try {
        await this.request('GET', '/record', undefined, 1_000);
        ready = true;
        return;
      } catch { /* not yet */ }
      if (Date.now() > deadline) {
        child.kill('SIGKILL');
        throw imagoError('INGRESS_DATAPLANE_FAILED', `data plane: nginx did not answer within ${READY_TIMEOUT_MS} ms: ${this.errorText()}`);
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  private errorText(): string {
    let log = '';
    try { log = fs.readFileSync(path.join(this.s.runDir, 'error.log'), 'utf8').split('\n').filter((l) => /\[(emerg|alert|crit|error)\]/.test(l)).slice(-5).join(' | '); } catch { /* none */ }
    return (this.stderr.trim() || log || 'no error output').replace(/\s+/g, ' ');
  }

  /** The master died: start again from the record the hard timeout would leave (bounded: 10 a minute). */
  private onMasterDeath(why: string): void {
    const now = Date.now();
    this.restartTimes = this.restartTimes.filter((t) => now - t < 60_000);
    if (this.restartTimes.length >= 10) { this.s.log(`data plane: ${why}; 10 restarts within a minute, giving up`); return; }
    this.restartTimes.push(now);
    this.s.log(`data plane: ${why}; restarting it`);
    // Pooled connections lead to the dead master's workers, which finish and quit (PR_SET_PDEATHSIG).
    this.agent.destroy();
    this.agent = new http.Agent({ keepAlive: true, maxSockets: 32 });
    const again = async (attempt: number): Promise<void> => {
      if (this.stopping) return;
      try {
        await this.launch(this.s.restartRecord());
        this.restarts += 1;
        this.s.log('data plane: restarted');
      } catch (e) {
        // The dying workers may hold the listening sockets for a moment.
        if (attempt < 50) { setTimeout(() => void again(attempt + 1), 100); return; }
        this.s.log(`data plane: restart failed: ${(e as Error).message}`);
      }
    };
    void again(1);
  }

  /**
   * One call to the data plane's control endpoint. A pooled connection may
   * belong to a worker that just died: the call is sent once more on a new
   * connection (every call is safe to repeat: a put is a compare-and-set).
   */
  async request(method: 'GET' | 'POST', p: string, body?: string, timeoutMs = 10_000): Promise<{ status: number; text: string }> {
    try { return await this.requestOnce(method, p, body, timeoutMs, this.agent); } catch (e) {
      if ((e as { reused?: boolean }).reused) return this.requestOnce(method, p, body, timeoutMs, false);
      throw e;
    }
  }

  private requestOnce(method: 'GET' | 'POST', p: string, body: string | undefined, timeoutMs: number, agent: http.Agent | false): Promise<{ status: number; text: string }> {
    return new Promise((resolve, reject) => {
      const req = http.request({ socketPath: this.socketPath, path: p, method, agent, timeout: timeoutMs, headers: body !== undefined ? { 'content-length': Buffer.byteLength(body) } : {} }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      });
      // eslint-disable-next-line no-restricted-syntax -- a socket's destroy reason, handled by the request's error handler
      req.on('timeout', () => req.destroy(new Error(`timeout after ${timeoutMs} ms`)));
      req.on('error', (e) => reject(Object.assign(imagoError('INGRESS_UNREACHABLE', `data plane ${method} ${p}: ${e.message}`, e), { reused: req.reusedSocket })));
      req.end(body);
    });
  }

  private async json<T>(method: 'GET' | 'POST', p: string, body?: string, timeoutMs?: number): Promise<T> {
    const r = await this.request(method, p, body, timeoutMs);
    if (r.status !== 200) throw imagoError('INGRESS_UNREACHABLE', `data plane ${method} ${p} → ${r.status}: ${r.text.slice(0, 300)}`);
    return JSON.parse(r.text) as T;
  }

  async record(): Promise<DataPlaneRecord> {
    const r = await this.json<Omit<DataPlaneRecord, 'raw' | 'record'> & { record: string }>('GET', '/record');
    return { ...r, raw: r.record, record: decodeRecord(r.record) };
  }

  /** Stores `raw` if the version is still `expect` (and, with drained, if nothing is in flight). */
  put(expect: number, raw: string, opts: { drained?: boolean; notes?: Array<[string, string]> } = {}): Promise<PutResult> {
    const q = new URLSearchParams({ expect: String(expect), drained: opts.drained ? '1' : '0' });
    for (const [what, detail] of opts.notes ?? []) q.append('note', `${what}\t${detail}`);
    return this.json('POST', `/put?${q}`, raw);
  }

  async status(): Promise<DataPlaneStatus> {
    const r = await this.json<Omit<DataPlaneStatus, 'raw' | 'record'> & { record: string }>('GET', '/status');
    return { ...r, raw: r.record, record: decodeRecord(r.record) };
  }

  drained(waitMs: number): Promise<{ drained: boolean; held: boolean; inFlight: number; heldCount: number; target: string }> {
    return this.json('GET', `/drained?waitMs=${waitMs}`, undefined, waitMs + 10_000);
  }

  async served(since: number, limit: number): Promise<ServedReply> {
    const r = await this.request('GET', `/served?since=${since}&limit=${limit}`, undefined, 60_000);
    if (r.status !== 200) throw imagoError('INGRESS_UNREACHABLE', `data plane GET /served → ${r.status}`);
    const lines = r.text.split('\n');
    const [next, lost] = lines[0].split(' ').map(Number);
    const records = lines.slice(1).filter(Boolean).map((l) => {
      const [seq, upstream, start, end, status] = l.split(' ');
      return { seq: Number(seq), upstream, start: Number(start), end: Number(end), status: Number(status) };
    });
    return { records, next, lost };
  }

  /** 100 ms buckets since `sinceMs`: [t, count, sumMs, maxMs, errors]. */
  timeline(sinceMs: number): Promise<Array<[number, number, number, number, number]>> {
    return this.json('GET', `/timeline?since=${sinceMs}`);
  }

  /** The health endpoint answers 503 from now on (load balancers route around this interceptor). */
  async markStopping(): Promise<void> { await this.json('POST', '/stopping', ''); }

  /** Graceful quit (in-flight requests finish), then harder signals after graceMs. */
  async stop(graceMs = 10_000): Promise<void> {
    this.stopping = true;
    const child = this.child;
    if (child && child.exitCode === null && child.signalCode === null) {
      child.kill('SIGQUIT');
      const hard = setTimeout(() => child.kill('SIGTERM'), graceMs);
      const kill = setTimeout(() => child.kill('SIGKILL'), graceMs + 3_000);
      await this.exited;
      clearTimeout(hard);
      clearTimeout(kill);
    }
    this.agent.destroy();
  }
}
