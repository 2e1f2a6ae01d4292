/**
 * The control API: HTTP/JSON on its own port (loopback by default), every call
 * with `Authorization: Bearer <token>` (the scheme case-insensitive, RFC 7235).
 * Given a certificate it is served over HTTPS only, and given a client CA it
 * also requires every caller to present a certificate that CA signed (mTLS):
 * the token alone, which can hold and switch all traffic, then never crosses
 * a network in clear and is useless without a client certificate.
 * Bodies are validated against the shapes in api.ts; a bad body or an
 * impossible transition is a 400 with the reason, a body over 64 KiB a 413,
 * a head over 16 KiB a 431 (answered, then the connection lingers so the
 * client reads the answer instead of a reset).
 *
 * Transitions (switcher.ts) are computed here and stored at the data plane
 * with a compare-and-set, one at a time; the state file is written before a
 * transition is applied and again with its outcome.
 */
import * as http from 'node:http';
import * as fs from 'node:fs';
import * as https from 'node:https';
import { isIP } from 'node:net';
import type { Socket } from 'node:net';
import { timingSafeEqual, createHash } from 'node:crypto';
import Ajv, { type ErrorObject } from 'ajv';
import type { TSchema } from 'typebox';
import { imagoError, isImagoError, type ImagoError } from '../../lib/errors';
import {
  EmptyRequest, HoldRequest, MirrorRequest, SwitchRequest, UpstreamRequest,
  type CompareReply, type DrainedReply, type HoldReply, type IngressStatus, type MirrorReply, type MirrorStatus, type ReleaseReply,
  type RecordedReply, type ServedReply, type TargetReply, type TimelineReply, type UpstreamsReply,
} from './api';
import type { DataPlaneRecord, NginxDataPlane } from './dataplane';
import { prometheusText, LATENCY_BOUNDS_MS } from './metrics';
import type { Mirrorer } from './mirrorer';
import type { IngressOptions } from './options';
import { encodeRecord, type SwitchRecord } from './record';
import * as switcher from './switcher';
import type { Allowlist } from './upstream-policy';
import { resolveUpstream } from './upstream-policy';

export const MAX_CONTROL_BODY = 64 * 1024;
export const MAX_CONTROL_HEADER = 16 * 1024;
const MAX_DRAIN_WAIT_MS = 60_000;
const LINGER_MS = 5_000;

class HttpError extends Error {
  constructor(readonly status: number, readonly code: string, message: string) { super(message); }
}

export interface ControlDeps {
  options: IngressOptions;
  dataPlane: NginxDataPlane;
  mirrorer: Mirrorer;
  allowlist: Allowlist;
  /** Keeps the state across restarts (state-file.ts); called before and after each transition. */
  persist(rec: SwitchRecord): void;
  /** Told every record read or stored (the supervisor restarts from the latest). */
  seen(rec: SwitchRecord): void;
}

// ---- authentication

const digest = (s: string): Buffer => createHash('sha256').update(s).digest();

/** The token of an `Authorization: Bearer <token>` header; the scheme is case-insensitive (RFC 7235 §2.1). */
export function bearerToken(header: string | undefined): string | undefined {
  const m = /^bearer[ \t]+([^ \t]+)[ \t]*$/i.exec(header ?? '');
  return m?.[1];
}

export function authorized(header: string | undefined, expected: Buffer): boolean {
  const token = bearerToken(header);
  // Compare digests so the comparison takes the same time whatever the length.
  return token !== undefined && timingSafeEqual(digest(token), expected);
}

// ---- bodies

const ajv = new Ajv({ allErrors: true, verbose: true });

/** The reason of one validation error, in words ("percent must be a number in 0..100"). */
function reason(e: ErrorObject): string {
  const field = e.instancePath.replace(/^\//, '').replace(/\//g, '.');
  const desc = (e.parentSchema as { description?: string } | undefined)?.description;
  if (desc && field) return `${field} ${desc}`;
  return `${field || 'body'} ${e.message}`;
}

/** A validator for one request shape: unknown fields and every other error listed together. */
export function bodyValidator<T>(schema: TSchema, where: string): (body: Record<string, unknown>) => T {
  const check = ajv.compile(schema);
  const allowed = Object.keys((schema as { properties?: object }).properties ?? {});
  return (body) => {
    if (check(body)) return body as T;
    const errors = check.errors ?? [];
    const unknown = errors.filter((e) => e.keyword === 'additionalProperties').map((e) => (e.params as { additionalProperty: string }).additionalProperty);
    const rest = errors.filter((e) => e.keyword !== 'additionalProperties' && !(e.keyword === 'type' && e.schemaPath.includes('additionalProperties')));
    const parts = [...(unknown.length ? [`unknown field(s) ${unknown.join(', ')}; allowed: ${allowed.join(', ') || 'none'}`] : []), ...rest.map(reason)];
    throw imagoError('INGRESS_BAD_REQUEST', `${where}: ${parts.join('; ')}`);
  };
}

const holdBody = bodyValidator<{ timeoutMs?: number }>(HoldRequest, 'POST /hold');
const switchBody = bodyValidator<{ target: string }>(SwitchRequest, 'POST /switch');
const emptyCommit = bodyValidator<Record<string, never>>(EmptyRequest, 'POST /commit');
const emptyRelease = bodyValidator<Record<string, never>>(EmptyRequest, 'POST /release');
const upstreamBody = bodyValidator<{ name: string; url: string }>(UpstreamRequest, 'POST /upstreams');
const mirrorBody = bodyValidator<switcher.MirrorConfig & { compare?: unknown }>(MirrorRequest, 'POST /mirror');

function readJson(req: http.IncomingMessage): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const where = `${req.method} ${req.url}`;
    const tooLarge = (): HttpError => new HttpError(413, 'INGRESS_BAD_REQUEST', `${where}: body larger than ${MAX_CONTROL_BODY} bytes`);
    if (Number(req.headers['content-length'] ?? 0) > MAX_CONTROL_BODY) { req.resume(); reject(tooLarge()); return; }
    const chunks: Buffer[] = [];
    let size = 0;
    let over = false;
    req.on('data', (c: Buffer) => {
      if (over) return; // the rest is read and dropped: the client gets the 413, not a reset
      size += c.length;
      if (size > MAX_CONTROL_BODY) { over = true; chunks.length = 0; reject(tooLarge()); return; }
      chunks.push(c);
    });
    req.on('error', reject);
    req.on('end', () => {
      if (over) return;
      const text = Buffer.concat(chunks).toString('utf8').trim();
      if (!text) { resolve({}); return; }
      try {
        const v = JSON.parse(text);
        // eslint-disable-next-line no-restricted-syntax -- caught below into INGRESS_BAD_REQUEST
        if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new Error('not a JSON object');
        resolve(v);
      } catch (e) { reject(imagoError('INGRESS_BAD_REQUEST', `${where}: body is not a JSON object (${(e as Error).message})`)); }
    });
  });
}

function send(res: http.ServerResponse, status: number, body: unknown): void {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  res.writeHead(status, { 'content-type': typeof body === 'string' ? 'text/plain; version=0.0.4' : 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

const intParam = (url: URL, name: string, def: number): number => {
  const v = url.searchParams.get(name);
  return v === null ? def : Number(v);
};

// ---- the handler

export function createControlHandler(deps: ControlDeps): http.RequestListener & { status(): Promise<IngressStatus> } {
  const { options, dataPlane: dp, mirrorer } = deps;
  const expected = digest(options.token);
  let queue: Promise<unknown> = Promise.resolve();
  /** Transitions one at a time (each reads, computes and stores the record). */
  const serial = <T>(fn: () => Promise<T>): Promise<T> => {
    const run = queue.then(fn, fn);
    queue = run.catch(() => undefined);
    return run;
  };

  /** The last record read or stored, with its version: usually still current (the data plane's own timeout is the only other writer). */
  let cached: { version: number; record: SwitchRecord } | undefined;
  const record = async (): Promise<DataPlaneRecord> => {
    const r = await dp.record();
    cached = { version: r.version, record: r.record };
    deps.seen(r.record);
    return r;
  };

  /**
   * Computes the transition from the cached record and stores it with a
   * compare-and-set (one round trip); when the record changed meanwhile (the
   * data plane's own hard timeout fired) or the answer would be "nothing to
   * do", reads the record again first: an idempotent answer must come from
   * the current record, never from a cached one.
   */
  const transit = <T>(compute: (rec: SwitchRecord, snap?: DataPlaneRecord) => switcher.Transition, answer: (t: switcher.Transition, counts: { heldCount: number; inFlight: number }) => T): Promise<T> => serial(async () => {
    let fresh: DataPlaneRecord | undefined;
    for (let attempt = 0; attempt < 50; attempt += 1) {
      const base = cached && !fresh ? cached : (fresh = await record());
      let t: switcher.Transition;
      try { t = compute(base.record, fresh); } catch (e) {
        if (fresh) throw e;
        cached = undefined; // a refusal, too, must come from the current record
        continue;
      }
      if (!t.changed) {
        if (!fresh) { cached = undefined; continue; } // confirm "nothing to do" on the current record
        deps.persist(fresh.record);
        return answer(t, fresh);
      }
      // Written before it is applied: a restart after the data plane took
      // it must not bring back a target the switch already left.
      deps.persist(t.next);
      const raw = encodeRecord(t.next, t.next.held ? switcher.timeoutPlan(t.next) : undefined);
      const put = await dp.put(base.version, raw, { drained: t.needsDrained, notes: t.notes });
      if (put.ok) {
        cached = { version: put.version, record: t.next };
        deps.seen(t.next);
        return answer(t, put);
      }
      fresh = await record();
      deps.persist(fresh.record);
      if (put.reason === 'inflight') throw switcher.inFlightError(t.next.target, put.inFlight);
      fresh = undefined; // the version moved: compute again from a fresh read
      cached = undefined;
    }
    throw imagoError('INGRESS_BAD_TRANSITION', 'the interceptor state kept changing under this call; read GET /status and try again');
  });

  const upstreamsOf = (rec: SwitchRecord): Record<string, string> => Object.fromEntries(rec.upstreams.map((u) => [u.name, u.url]));

  const mirrorStatus = (rec: SwitchRecord): MirrorStatus => ({
    on: rec.mirror.on, shadow: rec.mirror.shadow, percent: rec.mirror.percent, methods: rec.mirror.methods,
    outstanding: mirrorer.outstanding, pairs: mirrorer.pairs, comparer: !!mirrorer.comparer,
    writeShadow: rec.mirror.writeShadow ?? null, writePercent: rec.mirror.writePercent ?? 100, writeMethods: rec.mirror.writeMethods ?? [], writes: mirrorer.counters.writes,
  });

  const status = async (): Promise<IngressStatus> => {
    const s = await dp.status();
    deps.seen(s.record);
    const rec = s.record;
    const count = s.latency.counts.reduce((a, b) => a + b, 0);
    const m = mirrorer.counters;
    return {
      state: rec.held ? 'held' : rec.mirror.on ? 'mirror' : 'forward',
      target: rec.target,
      upstreams: upstreamsOf(rec),
      inFlight: s.inFlight,
      held: s.heldCount,
      hold: rec.held ? { startedAt: rec.startedAt, deadline: rec.deadline, origin: rec.origin, committed: rec.committed } : null,
      mirror: mirrorStatus(rec),
      counters: {
        ...s.counters,
        mirrored: m.mirrored, shadowDropped: (s.counters.shadowDropped ?? 0) + m.shadowDropped, shadowErrors: m.shadowErrors, comparerErrors: m.comparerErrors,
        dataPlaneRestarts: dp.restarts,
      },
      latency: { boundsMs: LATENCY_BOUNDS_MS, counts: s.latency.counts, count, meanMs: count ? s.latency.sumMs / count : 0 },
      transitions: s.transitions.slice(-20),
      dataPlane: { kind: 'nginx', workers: s.workers, restarts: dp.restarts, orphaned: s.orphaned },
    };
  };

  const route = async (req: http.IncomingMessage, url: URL): Promise<[number, unknown]> => {
    const key = `${req.method} ${url.pathname}`;
    switch (key) {
      case 'GET /status': return [200, await status()];
      case 'GET /metrics': {
        const st = await status();
        return [200, prometheusText(st)];
      }
      case 'GET /served': {
        const since = intParam(url, 'since', 0);
        const limit = intParam(url, 'limit', 10_000);
        if (!Number.isInteger(since) || since < 0 || !Number.isInteger(limit) || limit < 1) throw imagoError('INGRESS_BAD_REQUEST', 'GET /served: since and limit must be non-negative integers');
        return [200, (await dp.served(since, Math.min(limit, 50_000))) satisfies ServedReply];
      }
      case 'GET /timeline': {
        const since = intParam(url, 'since', 0) || 0;
        const buckets = (await dp.timeline(since)).map(([t, count, sum, max, errors]) => ({ t, count, meanMs: count ? sum / count : 0, maxMs: max, errors }));
        return [200, { bucketMs: 100, buckets } satisfies TimelineReply];
      }
      case 'GET /compare':
        return [200, { comparer: !!mirrorer.comparer, pairs: mirrorer.pairs, report: mirrorer.comparer?.report?.() ?? null, verdict: mirrorer.comparer?.verdict?.() ?? null } satisfies CompareReply];
      case 'GET /recorded': {
        const limit = intParam(url, 'limit', 2000);
        if (!Number.isInteger(limit) || limit < 1) throw imagoError('INGRESS_BAD_REQUEST', 'GET /recorded: limit must be a positive integer');
        return [200, (mirrorer.comparer?.recorded?.(limit) ?? { reads: [], writes: [] }) satisfies RecordedReply];
      }
      case 'GET /drained': {
        const waitMs = intParam(url, 'waitMs', 0);
        if (!Number.isInteger(waitMs) || waitMs < 0 || waitMs > MAX_DRAIN_WAIT_MS) throw imagoError('INGRESS_BAD_REQUEST', `GET /drained: waitMs must be an integer in 0..${MAX_DRAIN_WAIT_MS}`);
        return [200, (await dp.drained(waitMs)) satisfies DrainedReply];
      }
    }
    if (req.method !== 'POST') return [404, { error: 'INGRESS_BAD_REQUEST', message: `no control call ${key}` }];
    const body = await readJson(req);
    switch (key) {
      case 'POST /upstreams': {
        const b = upstreamBody(body);
        const url = b.url.replace(/\/$/, '');
        const addr = await resolveUpstream(b.name, url, deps.allowlist);
        return [200, await transit(
          (rec) => switcher.register(rec, { name: b.name, url, ip: addr.ip, port: addr.port }),
          (t): UpstreamsReply => ({ changed: t.changed, upstreams: upstreamsOf(t.next) }),
        )];
      }
      case 'POST /mirror': {
        const b = mirrorBody(body);
        const r = await transit((rec) => switcher.configureMirror(rec, b), (t) => t);
        if (b.on) mirrorer.useRules(b.compare);
        return [200, { changed: r.changed, mirror: mirrorStatus(r.next) } satisfies MirrorReply];
      }
      case 'POST /hold': {
        const b = holdBody(body);
        const timeoutMs = b.timeoutMs ?? options.limits.defaultHoldTimeoutMs;
        return [200, await transit(
          (rec) => switcher.hold(rec, timeoutMs, Date.now()),
          (t, counts): HoldReply => ({ changed: t.changed, state: 'held', target: t.next.target, deadline: t.next.deadline, inFlight: counts.inFlight }),
        )];
      }
      case 'POST /switch': {
        const b = switchBody(body);
        // In flight is checked where it is exact: by the data plane, when it stores the switch.
        return [200, await transit((rec, snap) => switcher.switchTo(rec, b.target, snap ? snap.inFlight + snap.orphaned : 0), (t): TargetReply => ({ changed: t.changed, target: t.next.target }))];
      }
      case 'POST /commit': {
        emptyCommit(body);
        return [200, await transit((rec) => switcher.commit(rec), (t): TargetReply => ({ changed: t.changed, target: t.next.target }))];
      }
      case 'POST /release': {
        emptyRelease(body);
        return [200, await transit((rec) => switcher.release(rec, Date.now()), (t, counts): ReleaseReply => ({ changed: t.changed, released: t.changed ? counts.heldCount : 0, target: t.next.target }))];
      }
    }
    return [404, { error: 'INGRESS_BAD_REQUEST', message: `no control call ${key}` }];
  };

  const handler = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    if (!authorized(req.headers.authorization, expected)) { req.resume(); send(res, 401, { error: 'INGRESS_UNAUTHORIZED', message: 'missing or wrong bearer token' }); return; }
    const url = new URL(req.url ?? '/', 'http://control');
    route(req, url).then(([status, body]) => send(res, status, body), (err: unknown) => {
      if (err instanceof HttpError) { send(res, err.status, { error: err.code, message: err.message }); return; }
      if (isImagoError(err)) {
        const e = err as ImagoError;
        // The data plane not answering is ours to report as unavailable, not the caller's mistake.
        send(res, e.code === 'INGRESS_UNREACHABLE' ? 503 : 400, { error: e.code, message: e.message });
        return;
      }
      send(res, 500, { error: 'INTERNAL', message: String((err as Error)?.message ?? err) });
    });
  };
  return Object.assign(handler, { status });
}

// ---- the server

/**
 * Answers a connection the HTTP parser gave up on, then keeps reading (and
 * dropping) what the client still sends for a while before closing: closing
 * with unread data would send a reset, and the client would never see the
 * answer.
 */
function answerAndLinger(socket: Socket, status: number, text: string): void {
  socket.removeAllListeners('data');
  socket.on('data', () => undefined);
  socket.on('end', () => socket.destroy());
  socket.resume();
  const body = JSON.stringify({ error: status === 431 ? 'INGRESS_BAD_REQUEST' : 'INGRESS_BAD_REQUEST', message: text });
  socket.end(`HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
  setTimeout(() => socket.destroy(), LINGER_MS).unref();
}

export interface ControlServer { server: http.Server; url: string; close(): Promise<void> }

/** The control API's TLS: its certificate and key, and the CA whose client certificates it requires (PEM text). */
export interface ControlServerTls {
  cert: string | Buffer;
  key: string | Buffer;
  /** When given, every caller must present a certificate this CA signed (checked in the handshake). */
  clientCa?: string | Buffer;
}

/** A host name or address that only this host can reach. */
export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  if (h === 'localhost' || h === '::1') return true;
  const v4 = h.startsWith('::ffff:') ? h.slice(7) : h;
  return isIP(v4) === 4 && v4.startsWith('127.');
}

/**
 * How the control API is served: HTTPS with the options' certificate (and
 * client CA), or plain HTTP — only on loopback, unless the operator allowed
 * it elsewhere knowingly (a warning is logged): the token that can hold and
 * switch all traffic would cross the network in clear, readable and
 * replayable by anyone on the path.
 */
export function controlTransport(options: IngressOptions, log: (line: string) => void): ControlServerTls | undefined {
  const where = `control API on ${options.control.host}:${options.control.port}`;
  const t = options.controlTls;
  if (t) {
    const errors: string[] = [];
    const read = (file: string, what: string): string => {
      try { return fs.readFileSync(file, 'utf8'); } catch (e) { errors.push(`controlTls.${what} ${file}: ${(e as Error).message}`); return ''; }
    };
    const tls: ControlServerTls = { cert: read(t.certFile, 'certFile'), key: read(t.keyFile, 'keyFile'), ...(t.clientCaFile ? { clientCa: read(t.clientCaFile, 'clientCaFile') } : {}) };
    if (errors.length) throw imagoError('IMAGO_OPTIONS_INVALID', `ingress: ${errors.join('; ')}`);
    return tls;
  }
  if (isLoopbackHost(options.control.host)) return undefined;
  if (!options.allowPlainControl) {
    throw imagoError('INGRESS_CONTROL_INSECURE', `${where} is not a loopback address, and no certificate was given (--control-cert/--control-key, controlTls)`);
  }
  log(`WARNING: ${where} in plain HTTP, as allowed by --control-allow-plain-http: the control token and every call cross the network in clear, and anyone on the path can read and replay them`);
  return undefined;
}

/**
 * The control API's HTTP(S) server, created here only (listen options in, a
 * listening server out), so that transport settings live in one place.
 */
export function createControlServer(listen: { host: string; port: number }, handler: http.RequestListener, tls?: ControlServerTls): Promise<ControlServer> {
  const common = {
    maxHeaderSize: MAX_CONTROL_HEADER,
    headersTimeout: 20_000,
    requestTimeout: 120_000,
    // Longer than any stall of the host: a driver's pooled connection is not reset under it.
    keepAliveTimeout: 65_000,
  };
  const server: http.Server = tls
    ? https.createServer({
      ...common, cert: tls.cert, key: tls.key, minVersion: 'TLSv1.2',
      // mTLS: the handshake fails for a caller without a certificate of clientCa, before any byte of HTTP is read.
      ...(tls.clientCa ? { ca: tls.clientCa, requestCert: true, rejectUnauthorized: true } : {}),
    }, handler)
    : http.createServer(common, handler);
  // A refused handshake (no or a wrong client certificate, a plain-HTTP caller) only closes that connection.
  server.on('tlsClientError', (_err: Error, socket: Socket) => { socket.destroy(); });
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
    if (err.code === 'ECONNRESET' || !socket.writable) { socket.destroy(); return; }
    if (err.code === 'HPE_HEADER_OVERFLOW') { answerAndLinger(socket, 431, `request head larger than ${MAX_CONTROL_HEADER} bytes`); return; }
    if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') { answerAndLinger(socket, 408, 'request not complete in time'); return; }
    answerAndLinger(socket, 400, `malformed request (${err.code ?? err.message})`);
  });
  return new Promise((resolve, reject) => {
    const onErr = (e: Error): void => reject(imagoError('INGRESS_LISTEN_FAILED', `control API on ${listen.host}:${listen.port}: ${e.message}`, e));
    server.once('error', onErr);
    server.listen(listen.port, listen.host, () => {
      server.off('error', onErr);
      const a = server.address();
      const port = typeof a === 'object' && a ? a.port : listen.port;
      const host = listen.host.includes(':') ? `[${listen.host}]` : listen.host;
      resolve({
        server, url: `${tls ? 'https' : 'http'}://${host}:${port}`,
        close: () => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }),
      });
    });
  });
}
