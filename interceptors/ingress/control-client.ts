/**
 * A typed client for one interceptor's control API (node:http or node:https,
 * one keep-alive agent per client). Errors come from the registry:
 * INGRESS_UNAUTHORIZED (401), the code the interceptor sent for a 400
 * (INGRESS_BAD_TRANSITION, INGRESS_BAD_REQUEST), INGRESS_UNREACHABLE when it
 * does not answer in time, INGRESS_TLS_FAILED when the TLS link cannot be made
 * (its certificate does not verify, it requires a client certificate this
 * client does not have, http/https mismatched).
 */
import { createHash } from 'node:crypto';
import * as http from 'node:http';
import * as https from 'node:https';
import { ERRORS, imagoError, type ErrorCode, type ImagoError } from '../../lib/errors';
import type {
  CompareReply, DrainedReply, HoldReply, IngressStatus, MirrorReply, MirrorRequest, RecordedReply, ReleaseReply, ServedRecord, ServedReply,
  TargetReply, TimelineReply, UpstreamsReply,
} from './api';

export type { DrainedReply, IngressStatus, MirrorRequest, ServedRecord } from './api';

/** The client's side of an HTTPS control API (PEM text): the CA to verify it with, and the certificate it requires of callers. */
export interface ControlClientTls {
  /** The CA that signed the interceptor's certificate (default: Node's public CAs). */
  ca?: string | Buffer;
  cert?: string | Buffer;
  key?: string | Buffer;
  /** The name to verify the certificate against, when the URL's host is not in it. */
  serverName?: string;
}

/** OpenSSL and Node codes that say the TLS link itself failed (a setting to fix), as opposed to a host that is down. */
const TLS_VERIFY = /CERT|SELF_SIGNED|UNABLE_TO_(GET|VERIFY)|ALTNAME|HOSTNAME_MISMATCH/;

/** Explains a failed call when the cause is the TLS link; undefined when it is not (the interceptor is down, slow). */
export function controlTlsError(link: string, err: unknown, hasClientCert: boolean): ImagoError | undefined {
  const e = err as NodeJS.ErrnoException & { closedAfterHandshake?: boolean };
  const code = String(e?.code ?? '');
  const text = `${code} ${e?.message ?? ''}`;
  let why: string | undefined;
  // The peer's alerts first: their codes contain CERTIFICATE too, but they say the interceptor refused us.
  if (/CERTIFICATE_REQUIRED|alert certificate required/i.test(text) || (!hasClientCert && /HANDSHAKE_FAILURE/i.test(text))) {
    why = `it requires a client certificate, and this client presents none (tls.certRef, tls.keyRef) (${e.message.trim()})`;
  } else if (/ALERT_(UNKNOWN_CA|BAD_CERTIFICATE|CERTIFICATE_UNKNOWN|UNSUPPORTED_CERTIFICATE|HANDSHAKE_FAILURE|ACCESS_DENIED|DECRYPT_ERROR)|alert (unknown ca|bad certificate|decrypt error)/i.test(text)) {
    why = `it refused this client's certificate (${e.message.trim()}): it must be signed by the CA the interceptor trusts (--control-client-ca)`;
  } else if (e?.closedAfterHandshake) {
    // TLS 1.3: the server checks the client's certificate after the client's side of the handshake is done, and a refusal reaches the client as a closed connection.
    why = hasClientCert
      ? "it closed the connection right after the TLS handshake, without an answer: it refused this client's certificate (it must be signed by the CA the interceptor trusts, --control-client-ca)"
      : 'it closed the connection right after the TLS handshake, without an answer: it requires a client certificate, and this client presents none (tls.certRef, tls.keyRef)';
  } else if (TLS_VERIFY.test(code) || /certificate/.test(e?.message ?? '') && !/alert/i.test(text)) {
    why = `its certificate does not verify (${e.message.trim()}): the CA that signed it must be given (tls.caRef), and the certificate must name the URL's host (or tls.serverName)`;
  } else if (/WRONG_VERSION_NUMBER|wrong version number|packet length too long|HTTP_REQUEST/i.test(text)) {
    why = `it does not speak TLS there (${e.message.trim()}): use http:// for a plain control API, https:// for one given --control-cert`;
  } else if (/KEY_VALUES_MISMATCH|PEM|NO_START_LINE|BAD_DECRYPT/i.test(text)) {
    why = `this client's TLS material is unusable (${e.message.trim()}): tls.certRef and tls.keyRef must be a PEM certificate and its key`;
  }
  return why ? imagoError('INGRESS_TLS_FAILED', `${link}: ${why}`, err) : undefined;
}

/**
 * Keep-alive agents shared by the clients with the same TLS material: a
 * cut-over makes several calls within milliseconds and each must not pay a
 * new (TLS) handshake, while activities make new clients on every attempt.
 * Idle connections close after 30 s (before the interceptor's 65 s), are not
 * counted as work that keeps the process alive, and the cache is bounded.
 */
const agents = new Map<string, http.Agent>();
const IDLE_MS = 30_000;
function agentFor(secure: boolean, tls: ControlClientTls | undefined): http.Agent {
  const h = createHash('sha256');
  for (const v of [tls?.ca, tls?.cert, tls?.key, tls?.serverName]) h.update(String(v ?? '')).update('\0');
  const key = `${secure ? 'https' : 'http'}:${h.digest('hex')}`;
  let agent = agents.get(key);
  if (!agent) {
    agent = secure
      ? new https.Agent({ keepAlive: true, timeout: IDLE_MS, ca: tls?.ca, cert: tls?.cert, key: tls?.key, servername: tls?.serverName, minVersion: 'TLSv1.2' })
      : new http.Agent({ keepAlive: true, timeout: IDLE_MS });
    if (agents.size >= 32) { const [oldest, a] = agents.entries().next().value!; agents.delete(oldest); a.destroy(); }
    agents.set(key, agent);
  }
  return agent;
}

export class IngressControlClient {
  readonly baseUrl: string;
  private readonly agent: http.Agent;
  private readonly secure: boolean;

  constructor(baseUrl: string, private readonly token: string, private readonly timeoutMs = 10_000, private readonly tls?: ControlClientTls) {
    this.baseUrl = baseUrl.replace(/\/$/, '');
    this.secure = this.baseUrl.startsWith('https://');
    if (tls && !this.secure) throw imagoError('IMAGO_OPTIONS_INVALID', `control client for ${this.baseUrl}: TLS settings given for an http:// URL; use https://`);
    this.agent = agentFor(this.secure, tls);
  }

  /** The link, as error messages name it. */
  private get link(): string { return `control API of the interceptor at ${this.baseUrl}`; }

  private request(method: 'GET' | 'POST', path: string, body: string | undefined, timeoutMs: number): Promise<{ status: number; text: string }> {
    const url = new URL(this.baseUrl + path);
    const mod = this.secure ? https : http;
    return new Promise((resolve, reject) => {
      const req = mod.request(url, {
        method, agent: this.agent,
        headers: { authorization: `Bearer ${this.token}`, ...(body !== undefined ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } : {}) },
        ...(this.tls?.serverName ? { servername: this.tls.serverName } : {}),
      }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => { clearTimeout(timer); resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }); });
        res.on('error', (e) => { clearTimeout(timer); reject(e); });
      });
      // eslint-disable-next-line no-restricted-syntax -- a socket's destroy reason; the request's error handler raises INGRESS_UNREACHABLE
      const timer = setTimeout(() => req.destroy(Object.assign(new Error(`no answer within ${timeoutMs} ms`), { code: 'ETIMEDOUT' })), timeoutMs);
      // A new TLS connection closed before any answer: how a TLS 1.3 server refuses a client's certificate.
      let handshook = false;
      req.on('socket', (sock) => { if (this.secure) sock.once('secureConnect', () => { handshook = true; }); });
      req.on('error', (e: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        reject(handshook && (e.code === 'ECONNRESET' || /socket hang up/.test(e.message)) ? Object.assign(e, { closedAfterHandshake: true }) : e);
      });
      req.end(body);
    });
  }

  private async call<T>(method: 'GET' | 'POST', path: string, body?: unknown, timeoutMs = this.timeoutMs): Promise<T> {
    let res: { status: number; text: string };
    try {
      res = await this.request(method, path, body === undefined ? undefined : JSON.stringify(body), timeoutMs);
    } catch (e) {
      throw controlTlsError(`${method} ${path}: ${this.link}`, e, !!this.tls?.cert)
        ?? imagoError('INGRESS_UNREACHABLE', `${method} ${this.baseUrl}${path}: ${(e as Error).message}`, e);
    }
    const text = res.text;
    if (res.status === 401) throw imagoError('INGRESS_UNAUTHORIZED', `${method} ${this.baseUrl}${path}`);
    if (res.status !== 200) {
      let code: ErrorCode = res.status >= 500 ? 'INGRESS_UNREACHABLE' : 'INGRESS_BAD_REQUEST';
      let message = text;
      try {
        const j = JSON.parse(text) as { error?: string; message?: string };
        if (j.error && j.error in ERRORS && res.status < 500) code = j.error as ErrorCode;
        message = j.message ?? text;
      } catch { /* not JSON: keep the text */ }
      throw imagoError(code, `${method} ${this.baseUrl}${path} → ${res.status}: ${message}`);
    }
    return (path === '/metrics' ? text : JSON.parse(text)) as T;
  }

  status(): Promise<IngressStatus> { return this.call('GET', '/status'); }
  metrics(): Promise<string> { return this.call('GET', '/metrics'); }
  addUpstream(name: string, url: string): Promise<UpstreamsReply> { return this.call('POST', '/upstreams', { name, url }); }
  mirror(req: MirrorRequest): Promise<MirrorReply> { return this.call('POST', '/mirror', req); }
  compare(): Promise<CompareReply> { return this.call('GET', '/compare'); }
  /** The comparer's latest live requests, reads and writes apart (what the load test replays). */
  recorded(limit = 2000): Promise<RecordedReply> { return this.call('GET', `/recorded?limit=${limit}`); }
  hold(timeoutMs?: number): Promise<HoldReply> {
    return this.call('POST', '/hold', timeoutMs === undefined ? {} : { timeoutMs });
  }
  /** Waits up to waitMs (≤ 60 000) on the interceptor for in-flight requests to end. */
  drained(waitMs = 0): Promise<DrainedReply> { return this.call('GET', `/drained?waitMs=${waitMs}`, undefined, waitMs + this.timeoutMs); }
  switch(target: string): Promise<TargetReply> { return this.call('POST', '/switch', { target }); }
  /** Decides the switch under the current hold: its hard timeout then releases forward (see switcher.ts). */
  commit(): Promise<TargetReply> { return this.call('POST', '/commit', {}); }
  release(): Promise<ReleaseReply> { return this.call('POST', '/release', {}); }
  served(since = 0, limit?: number): Promise<ServedReply> {
    return this.call('GET', `/served?since=${since}${limit ? `&limit=${limit}` : ''}`);
  }
  /** Every served record since `since`, following pages. */
  async servedAll(since = 0): Promise<ServedRecord[]> {
    const all: ServedRecord[] = [];
    for (;;) {
      const page = await this.served(since);
      all.push(...page.records);
      if (!page.records.length || page.next === since) return all;
      since = page.next;
    }
  }
  timeline(sinceMs = 0): Promise<TimelineReply> {
    return this.call('GET', `/timeline?since=${sinceMs}`);
  }
}

/**
 * The atomicity evidence read from served records: how many requests each
 * version served, and how many Uold served after Unew's first (must be 0).
 */
export function atomicityOf(records: ServedRecord[], oldName = 'uold', newName = 'unew'): { uold: number; unew: number; violations: number } {
  const firstNew = Math.min(...records.filter((r) => r.upstream === newName).map((r) => r.start));
  return {
    uold: records.filter((r) => r.upstream === oldName).length,
    unew: records.filter((r) => r.upstream === newName).length,
    violations: records.filter((r) => r.upstream === oldName && r.start >= firstNew).length,
  };
}
