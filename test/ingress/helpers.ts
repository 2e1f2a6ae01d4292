/**
 * Test helpers for the ingress interceptor: a tiny node:http upstream that
 * says who it is, a recording comparer (a test double for the compare engine),
 * and a small HTTP client that never throws (it reports what happened).
 */
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import type { Comparer, MirroredPair } from '../../compare/types';
import { startIngress, type Ingress } from '../../interceptors/ingress/ingress';
import type { IngressOptionsInput } from '../../interceptors/ingress/options';
import { IngressControlClient } from '../../interceptors/ingress/control-client';
import { onTeardown } from '../fixtures/servers';

export const TOKEN = 'test-token-0123456789abcdef';

export interface TestUpstream {
  name: string;
  url: string;
  server: http.Server;
  /** Requests received, in order: method, url, headers. */
  seen: Array<{ method: string; url: string; headers: http.IncomingHttpHeaders; body: number }>;
  connections: number;
  /** Delay before answering, ms (per request: ?delay=N overrides). */
  delayMs: number;
  close(): Promise<void>;
}

/**
 * Routes: any path answers 200 JSON {upstream, url}; ?delay=N waits N ms;
 * POST /echo streams the body back; ?status=N answers with that status.
 */
export async function startUpstream(name: string, delayMs = 0): Promise<TestUpstream> {
  const up: TestUpstream = { name, url: '', server: undefined as never, seen: [], connections: 0, delayMs, close: async () => undefined };
  const server = http.createServer((req, res) => {
    const u = new URL(req.url ?? '/', 'http://x');
    let body = 0;
    if (u.pathname === '/echo') {
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'x-upstream': name });
      req.on('data', (c: Buffer) => { body += c.length; });
      req.on('end', () => up.seen.push({ method: req.method!, url: req.url!, headers: req.headers, body }));
      req.pipe(res);
      return;
    }
    req.on('data', (c: Buffer) => { body += c.length; });
    req.on('end', () => {
      up.seen.push({ method: req.method!, url: req.url!, headers: req.headers, body });
      const delay = Number(u.searchParams.get('delay') ?? up.delayMs);
      const status = Number(u.searchParams.get('status') ?? 200);
      const reply = (): void => {
        const text = JSON.stringify({ upstream: name, url: req.url, headers: req.headers });
        res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), 'x-upstream': name, 'keep-alive': 'timeout=5', 'x-hop': 'drop me' , connection: 'x-hop, keep-alive' });
        res.end(req.method === 'HEAD' ? undefined : text);
      };
      if (delay > 0) setTimeout(reply, delay); else reply();
    });
  });
  server.on('connection', () => { up.connections += 1; });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as { port: number }).port;
  up.server = server;
  up.url = `http://127.0.0.1:${port}`;
  up.close = () => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); });
  onTeardown(up.close);
  return up;
}

/** Test double for the compare engine: records every pair it is handed. */
export class RecordingComparer implements Comparer {
  readonly pairs: Array<MirroredPair & { receivedAt: number }> = [];
  constructor(readonly config: unknown) {}
  onPair(pair: MirroredPair): void { this.pairs.push({ ...pair, receivedAt: Date.now() }); }
  report(): unknown { return { recorded: this.pairs.length, config: this.config }; }
  verdict(): unknown { return { pass: true }; }
}

export async function ingressFor(up: TestUpstream, extra: Partial<IngressOptionsInput> = {}): Promise<{ ingress: Ingress; control: IngressControlClient; comparers: RecordingComparer[] }> {
  const comparers: RecordingComparer[] = [];
  const ingress = await startIngress({
    upstream: { name: up.name, url: up.url }, token: TOKEN,
    comparerFactory: (cfg) => { const c = new RecordingComparer(cfg); comparers.push(c); return c; },
    ...extra,
  });
  onTeardown(() => closeAndCheck(ingress));
  return { ingress, control: new IngressControlClient(ingress.controlUrl, TOKEN), comparers };
}

const alive = (pid: number): boolean => { try { process.kill(pid, 0); return true; } catch { return false; } };

/** The data plane's processes now: the nginx master and its workers. */
export async function dataPlanePids(ingress: Ingress): Promise<number[]> {
  const pids = (await ingress.status()).dataPlane.workers.map((w) => w.pid).filter((p) => p > 0);
  try { pids.push(Number(fs.readFileSync(path.join(ingress.runDir, 'nginx.pid'), 'utf8'))); } catch { /* not written yet */ }
  return pids;
}

/** Closes an interceptor and fails if any of its nginx processes outlives it (the run's leak sweep cannot see nginx: it rewrites its environment). */
export async function closeAndCheck(ingress: Ingress): Promise<void> {
  const pids = await dataPlanePids(ingress).catch(() => [] as number[]);
  await ingress.close(1_000);
  await until(() => pids.every((p) => !alive(p)), `the data plane's processes (${pids.join(', ')}) to exit`, 10_000);
}

export interface Outcome { status: number; body: string; headers: http.IncomingHttpHeaders; error?: string; endedAt: number }

/** One request; resolves with what happened (status 0 and `error` when it failed). */
export function request(url: string, opts: http.RequestOptions & { body?: Buffer | string } = {}): Promise<Outcome> {
  return new Promise((resolve) => {
    const req = http.request(url, opts, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString(), headers: res.headers, endedAt: Date.now() }));
      res.on('error', (e) => resolve({ status: 0, body: '', headers: {}, error: e.message, endedAt: Date.now() }));
    });
    req.on('error', (e) => resolve({ status: 0, body: '', headers: {}, error: e.message, endedAt: Date.now() }));
    req.end(opts.body);
  });
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Polls `fn` every 10 ms until it returns true (bounded). */
export async function until(fn: () => boolean | Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await fn())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}
