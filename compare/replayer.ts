/**
 * The replayer: re-sends a captured safe request to Uold or Unew (for noise
 * learning and lag rechecks) over keep-alive connections, with a timeout, a
 * reply-size cap and a concurrency cap, and captures the reply in the same
 * shape the ingress interceptor uses.
 */
import http from 'node:http';
import https from 'node:https';
import type { CapturedReply, CapturedRequest } from './types';

/** Hop-by-hop and per-connection headers that must not be forwarded. */
const DROP_HEADERS = new Set(['connection', 'keep-alive', 'transfer-encoding', 'upgrade', 'proxy-connection', 'proxy-authorization', 'te', 'trailer', 'host', 'content-length', 'expect']);

export class Replayer {
  private readonly base: URL;
  private readonly agent: http.Agent;
  private inFlight = 0;
  private readonly waiters: Array<() => void> = [];

  constructor(baseUrl: string, private readonly opts: { timeoutMs: number; maxBodyBytes: number; maxConcurrent: number }) {
    this.base = new URL(baseUrl);
    const Agent = this.base.protocol === 'https:' ? https.Agent : http.Agent;
    this.agent = new Agent({ keepAlive: true, maxSockets: opts.maxConcurrent });
  }

  /** True when a request could start now; noise sampling skips rather than queue. */
  get idle(): boolean {
    return this.inFlight < this.opts.maxConcurrent;
  }

  async send(req: CapturedRequest, tag: string): Promise<CapturedReply> {
    await this.acquire();
    try { return await this.once(req, tag); } finally { this.release(); }
  }

  close(): void {
    this.agent.destroy();
  }

  private acquire(): Promise<void> {
    if (this.inFlight < this.opts.maxConcurrent) { this.inFlight++; return Promise.resolve(); }
    return new Promise((resolve) => this.waiters.push(() => { this.inFlight++; resolve(); }));
  }

  private release(): void {
    this.inFlight--;
    this.waiters.shift()?.();
  }

  private once(req: CapturedRequest, tag: string): Promise<CapturedReply> {
    const started = performance.now();
    const headers: http.OutgoingHttpHeaders = {};
    for (const [k, v] of Object.entries(req.headers)) if (v !== undefined && !DROP_HEADERS.has(k.toLowerCase())) headers[k] = v;
    // Lets the application (and its logs) tell a replay from a user request.
    headers['x-imago-replay'] = tag;
    if (req.body?.length) headers['content-length'] = req.body.length;
    const target = new URL(req.url, this.base);
    const lib = target.protocol === 'https:' ? https : http;
    return new Promise((resolve) => {
      const fail = (error: string, status = 0, partial: Buffer = Buffer.alloc(0)) =>
        resolve({ status, headers: {}, body: partial, latencyMs: performance.now() - started, error });
      const r = lib.request(target, { method: req.method, headers, agent: this.agent, timeout: this.opts.timeoutMs }, (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size > this.opts.maxBodyBytes) { res.destroy(); fail(`reply larger than ${this.opts.maxBodyBytes} bytes`, res.statusCode ?? 0); return; }
          chunks.push(c);
        });
        res.on('error', (e) => fail(`reply cut: ${e.message}`, res.statusCode ?? 0));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks), latencyMs: performance.now() - started }));
      });
      // eslint-disable-next-line no-restricted-syntax -- a socket's destroy reason, counted as a failed request
      r.on('timeout', () => r.destroy(new Error(`no reply within ${this.opts.timeoutMs} ms`)));
      r.on('error', (e) => fail(e.message));
      r.end(req.body?.length ? req.body : undefined);
    });
  }
}
