/**
 * The mirrorer: the Node side of mirroring. The data plane samples requests
 * (exactly `percent`% of those with a listed method and no body; and, when a
 * write shadow is set, `writePercent`% of the writes), captures the reply the
 * client got, and ships (request, primary reply) here over a unix socket
 * once the client's exchange is over; the mirrorer sends the copy to the
 * shadow — a write to the write shadow, the sandbox, never to Unew — and
 * hands (request, primary, shadow) to the comparer.
 *
 * The client never waits for the shadow: the copy leaves after the client
 * has its reply, over the shadow's own pool, and at most `shadowQueueSize`
 * copies are outstanding — more are dropped and counted, never queued.
 */
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import type { CapturedReply, CapturedRequest, Comparer, MirroredPair } from '../../compare/types';
import type { ComparerFactory } from './options';

const SHADOW_TIMEOUT_MS = 10_000;
const MAX_FRAME_BYTES = 64 * 1024 * 1024;

type AnyComparer = Comparer & { report?(): unknown; verdict?(): unknown; recorded?(limit?: number): { reads: unknown[]; writes: unknown[] } };

/**
 * One shipment from the data plane: `IMAGO1 <metaLen> <bodyLen>\n<meta><body>`,
 * meta a query string. A write's body starts with its request body (`qlen`
 * bytes, from meta), then the reply's.
 */
export interface Frame { meta: URLSearchParams; body: Buffer }

/** Splits a byte stream into frames (the data plane may send several on one connection). */
export class FrameReader {
  private buf: Buffer = Buffer.alloc(0);

  push(chunk: Buffer): Frame[] {
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    const out: Frame[] = [];
    for (;;) {
      const nl = this.buf.indexOf(10);
      if (nl < 0) {
        // eslint-disable-next-line no-restricted-syntax -- the frame reader's caller closes the mirror connection on any error
        if (this.buf.length > 64) throw new Error('mirror frame: header line too long');
        return out;
      }
      const m = /^IMAGO1 (\d+) (\d+)$/.exec(this.buf.subarray(0, nl).toString('latin1'));
      // eslint-disable-next-line no-restricted-syntax -- the frame reader's caller closes the mirror connection on any error
      if (!m) throw new Error('mirror frame: bad header line');
      const metaLen = Number(m[1]);
      const bodyLen = Number(m[2]);
      // eslint-disable-next-line no-restricted-syntax -- the frame reader's caller closes the mirror connection on any error
      if (metaLen + bodyLen > MAX_FRAME_BYTES) throw new Error('mirror frame: too large');
      const end = nl + 1 + metaLen + bodyLen;
      if (this.buf.length < end) return out;
      out.push({ meta: new URLSearchParams(this.buf.subarray(nl + 1, nl + 1 + metaLen).toString('utf8')), body: Buffer.from(this.buf.subarray(nl + 1 + metaLen, end)) });
      this.buf = this.buf.subarray(end);
    }
  }
}

/** "Name:value" lines to Node's header object shape (lower-case names; repeated ones joined, set-cookie as a list). */
export function headersOf(lines: string[]): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const l of lines) {
    const i = l.indexOf(':');
    if (i <= 0) continue;
    const k = l.slice(0, i).toLowerCase();
    const v = l.slice(i + 1);
    const had = out[k];
    if (had === undefined) out[k] = k === 'set-cookie' ? [v] : v;
    else if (Array.isArray(had)) had.push(v);
    else out[k] = `${had}, ${v}`;
  }
  return out;
}

// RFC 9110 §7.6.1: not passed on to the shadow either.
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'proxy-authenticate', 'proxy-authorization', 'expect']);

export function shadowHeaders(req: Record<string, string | string[]>, clientIp: string): http.OutgoingHttpHeaders {
  const named = new Set(String(req.connection ?? '').split(',').map((t) => t.trim().toLowerCase()).filter(Boolean));
  const out: http.OutgoingHttpHeaders = {};
  for (const [k, v] of Object.entries(req)) if (!HOP_BY_HOP.has(k) && !named.has(k)) out[k] = v;
  const prior = req['x-forwarded-for'];
  out['x-forwarded-for'] = prior ? `${prior}, ${clientIp}` : clientIp;
  out['x-forwarded-proto'] = 'http';
  out['x-imago-shadow'] = '1';
  return out;
}

export interface MirrorCounters { mirrored: number; shadowDropped: number; shadowErrors: number; comparerErrors: number; writes: number }

export class Mirrorer {
  comparer: AnyComparer | undefined;
  private compareKey: string | undefined;
  outstanding = 0;
  pairs = 0;
  private nextPairId = 1;
  readonly counters: MirrorCounters = { mirrored: 0, shadowDropped: 0, shadowErrors: 0, comparerErrors: 0, writes: 0 };
  private readonly agents = new Map<string, http.Agent>();
  private server: net.Server | undefined;
  private readonly sockets = new Set<net.Socket>();

  constructor(private readonly queueSize: number, private readonly captureBytes: number, private readonly idleTimeoutMs: number, private readonly factory?: ComparerFactory) {}

  /** A comparer for these rules; a retried call with the same rules keeps the comparer and its report. */
  useRules(compare: unknown): void {
    if (compare === undefined && this.comparer) return;
    const key = JSON.stringify(compare ?? {});
    if (this.factory && key !== this.compareKey) { this.comparer = this.factory(compare ?? {}); this.compareKey = key; }
  }

  /** Listens for the data plane's shipments on a unix socket. */
  listen(socketPath: string): Promise<void> {
    fs.rmSync(socketPath, { force: true });
    this.server = net.createServer((sock) => {
      this.sockets.add(sock);
      const reader = new FrameReader();
      sock.on('data', (c: Buffer) => {
        let frames: Frame[];
        try { frames = reader.push(c); } catch { sock.destroy(); return; }
        for (const f of frames) this.onFrame(f);
      });
      sock.on('error', () => undefined);
      sock.on('close', () => this.sockets.delete(sock));
    });
    return new Promise((resolve, reject) => {
      this.server!.once('error', reject);
      this.server!.listen(socketPath, () => { fs.chmodSync(socketPath, 0o600); resolve(); });
    });
  }

  /** One sampled request, its primary reply captured: send the shadow copy and pair the replies. */
  onFrame(f: Frame): void {
    const m = f.meta;
    const shadowIp = m.get('sip')?.replace(/^\[|\]$/g, ''); // IPv6 comes in brackets
    const shadowPort = Number(m.get('sport'));
    if (!shadowIp || !shadowPort) return;
    if (this.outstanding >= this.queueSize) { this.counters.shadowDropped += 1; return; }
    const write = m.get('w') === '1';
    const qlen = write ? Math.min(Number(m.get('qlen') ?? 0) || 0, f.body.length) : 0;
    this.outstanding += 1;
    this.counters.mirrored += 1;
    if (write) this.counters.writes += 1;
    const reqHeaders = headersOf(m.getAll('qh'));
    const request: CapturedRequest = { method: m.get('method') ?? 'GET', url: m.get('url') ?? '/', headers: reqHeaders, ...(qlen ? { body: f.body.subarray(0, qlen) } : {}) };
    const err = m.get('err');
    const primary: CapturedReply = {
      status: Number(m.get('status')), headers: headersOf(m.getAll('rh')), body: qlen ? f.body.subarray(qlen) : f.body, latencyMs: Number(m.get('latency')),
      ...(err ? { error: err } : {}),
    };
    const id = this.nextPairId++;
    const at = Number(m.get('at'));
    this.send(shadowIp, shadowPort, request.method, request.url, shadowHeaders(reqHeaders, m.get('ip') ?? ''), (shadow) => {
      this.outstanding -= 1;
      this.pairs += 1;
      const pair: MirroredPair = { id, at, request, primary, shadow, ...(write ? { kind: 'write' as const } : {}) };
      try { this.comparer?.onPair(pair); } catch { this.counters.comparerErrors += 1; }
    }, !write, request.body);
  }

  private agent(ip: string, port: number): http.Agent {
    const key = `${ip}:${port}`;
    let a = this.agents.get(key);
    if (!a) {
      a = new http.Agent({ keepAlive: true, maxSockets: Math.max(1, this.queueSize), scheduling: 'lifo', timeout: this.idleTimeoutMs } as http.AgentOptions);
      this.agents.set(key, a);
    }
    return a;
  }

  /**
   * Sends one shadow copy. A safe request goes over the shadow's keep-alive
   * pool and is sent again once if a pooled socket was closed under it. A
   * write goes on a connection of its own (no pool): a write cannot be sent
   * twice, and a stale pooled socket would fail it for no fault of the sandbox.
   */
  private send(host: string, port: number, method: string, path: string, headers: http.OutgoingHttpHeaders, done: (r: CapturedReply) => void, retry = true, body?: Buffer): void {
    const start = performance.now();
    let settled = false;
    const settle = (r: Omit<CapturedReply, 'latencyMs'>): void => {
      if (settled) return;
      settled = true;
      if (r.error) this.counters.shadowErrors += 1;
      done({ ...r, latencyMs: performance.now() - start });
    };
    let answered = false;
    if (body) headers = { ...headers, 'content-length': body.length };
    const req = http.request({ host, port, method, path, headers, agent: retry ? this.agent(host, port) : false, timeout: SHADOW_TIMEOUT_MS });
    // eslint-disable-next-line no-restricted-syntax -- a socket's destroy reason, counted as a shadow failure
    req.on('timeout', () => req.destroy(new Error(`shadow timeout after ${SHADOW_TIMEOUT_MS} ms`)));
    req.on('error', (e) => {
      // A pooled socket the shadow closed as we reused it: not Unew's failure. Mirrored
      // methods are safe, so send once more on a fresh connection; the verdict counts
      // a Unew that does not answer as a server error, and must not for this race.
      if (retry && !answered && req.reusedSocket) { settled = true; this.send(host, port, method, path, headers, done, false, body); return; }
      settle({ status: 0, headers: {}, body: Buffer.alloc(0), error: e.message });
    });
    req.on('response', (res) => {
      answered = true;
      const chunks: Buffer[] = [];
      let size = 0;
      let truncated = false;
      res.on('data', (c: Buffer) => {
        if (truncated) return;
        size += c.length;
        if (size > this.captureBytes) { truncated = true; chunks.length = 0; } else chunks.push(c);
      });
      res.on('end', () => settle({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks), ...(truncated ? { error: 'reply larger than the capture limit' } : {}) }));
      res.on('error', (e) => settle({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks), error: e.message }));
      res.on('aborted', () => settle({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks), error: 'shadow reply cut' }));
    });
    req.end(body);
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
    for (const a of this.agents.values()) a.destroy();
  }
}
