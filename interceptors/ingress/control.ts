/**
 * The control API: HTTP/JSON on its own port (loopback by default), every call
 * with `Authorization: Bearer <token>`. Transitions are idempotent; a bad body
 * or an impossible transition is a 400 with the reason.
 */
import * as http from 'node:http';
import { timingSafeEqual, createHash } from 'node:crypto';
import { imagoError, isImagoError, type ImagoError } from '../../lib/errors';
import { makeUpstream } from './forwarder';
import type { Mirrorer, MirrorConfig } from './mirrorer';
import { upstreamError, type IngressOptions } from './options';
import type { Recorder } from './recorder';
import { MAX_HOLD_TIMEOUT_MS, type Switcher } from './switcher';

const MAX_CONTROL_BODY = 64 * 1024;
const MAX_DRAIN_WAIT_MS = 60_000;

export interface ControlDeps { options: IngressOptions; switcher: Switcher; mirrorer: Mirrorer; recorder: Recorder }

export function ingressStatus({ switcher: sw, mirrorer, recorder }: ControlDeps): Record<string, unknown> {
  return {
    state: sw.held ? 'held' : mirrorer.on ? 'mirror' : 'forward',
    target: sw.target.name,
    upstreams: Object.fromEntries([...sw.upstreams.values()].map((u) => [u.name, u.url])),
    inFlight: sw.inFlight,
    held: sw.heldCount,
    hold: sw.held ? { startedAt: sw.holdStartedAt, deadline: sw.holdDeadline, origin: sw.holdOrigin.name, committed: sw.committed } : null,
    mirror: mirrorer.status(),
    counters: { ...recorder.counters },
    latency: recorder.latency(),
    transitions: sw.transitions.slice(-20),
  };
}

const digest = (s: string): Buffer => createHash('sha256').update(s).digest();

function authorized(req: http.IncomingMessage, expected: Buffer): boolean {
  const h = req.headers.authorization ?? '';
  const m = /^Bearer (.+)$/.exec(h);
  // Compare digests so the comparison takes the same time whatever the length.
  return !!m && timingSafeEqual(digest(m[1]), expected);
}

function send(res: http.ServerResponse, status: number, body: unknown): void {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  res.writeHead(status, { 'content-type': typeof body === 'string' ? 'text/plain; version=0.0.4' : 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function readJson(req: http.IncomingMessage): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_CONTROL_BODY) { reject(imagoError('INGRESS_BAD_REQUEST', `body larger than ${MAX_CONTROL_BODY} bytes`)); req.destroy(); return; }
      chunks.push(c);
    });
    req.on('error', reject);
    req.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8').trim();
      if (!text) { resolve({}); return; }
      try {
        const v = JSON.parse(text);
        if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new Error('not a JSON object');
        resolve(v);
      } catch (e) { reject(imagoError('INGRESS_BAD_REQUEST', `${req.method} ${req.url}: body is not a JSON object (${(e as Error).message})`)); }
    });
  });
}

function expectKeys(body: Record<string, unknown>, allowed: string[], where: string): void {
  const unknown = Object.keys(body).filter((k) => !allowed.includes(k));
  if (unknown.length) throw imagoError('INGRESS_BAD_REQUEST', `${where}: unknown field(s) ${unknown.join(', ')}; allowed: ${allowed.join(', ') || 'none'}`);
}

function validateMirror(b: Record<string, unknown>): MirrorConfig {
  expectKeys(b, ['on', 'shadow', 'percent', 'methods', 'compare'], 'POST /mirror');
  const errs: string[] = [];
  if (typeof b.on !== 'boolean') errs.push('on must be true or false');
  if (b.shadow !== undefined && typeof b.shadow !== 'string') errs.push('shadow must be an upstream name');
  if (b.percent !== undefined && (typeof b.percent !== 'number' || b.percent < 0 || b.percent > 100)) errs.push('percent must be a number in 0..100');
  if (b.methods !== undefined && (!Array.isArray(b.methods) || !b.methods.every((m) => typeof m === 'string' && /^[A-Za-z]+$/.test(m)))) errs.push('methods must be a list of HTTP method names');
  if (errs.length) throw imagoError('INGRESS_BAD_REQUEST', `POST /mirror: ${errs.join('; ')}`);
  return b as unknown as MirrorConfig;
}

export function createControlHandler(deps: ControlDeps): http.RequestListener {
  const { options, switcher: sw, mirrorer, recorder } = deps;
  const expected = digest(options.token);

  const route = async (req: http.IncomingMessage, url: URL): Promise<[number, unknown]> => {
    const key = `${req.method} ${url.pathname}`;
    switch (key) {
      case 'GET /status': return [200, ingressStatus(deps)];
      case 'GET /metrics':
        return [200, recorder.metrics({ inFlight: sw.inFlight, held: sw.heldCount, holding: sw.held ? 1 : 0, mirroring: mirrorer.on ? 1 : 0 })];
      case 'GET /served': {
        const since = Number(url.searchParams.get('since') ?? 0);
        const limit = Number(url.searchParams.get('limit') ?? 10_000);
        if (!Number.isInteger(since) || since < 0 || !Number.isInteger(limit) || limit < 1) throw imagoError('INGRESS_BAD_REQUEST', 'GET /served: since and limit must be non-negative integers');
        return [200, recorder.servedSince(since, Math.min(limit, 50_000))];
      }
      case 'GET /timeline': return [200, { bucketMs: 100, buckets: recorder.timeline(Number(url.searchParams.get('since') ?? 0) || 0) }];
      case 'GET /compare':
        return [200, { comparer: !!mirrorer.comparer, pairs: mirrorer.pairs, report: mirrorer.comparer?.report?.() ?? null, verdict: mirrorer.comparer?.verdict?.() ?? null }];
      case 'GET /drained': {
        const waitMs = Number(url.searchParams.get('waitMs') ?? 0);
        if (!Number.isInteger(waitMs) || waitMs < 0 || waitMs > MAX_DRAIN_WAIT_MS) throw imagoError('INGRESS_BAD_REQUEST', `GET /drained: waitMs must be an integer in 0..${MAX_DRAIN_WAIT_MS}`);
        const drained = await sw.waitDrained(waitMs);
        return [200, { drained: drained && sw.inFlight === 0, held: sw.held, inFlight: sw.inFlight, heldCount: sw.heldCount, target: sw.target.name }];
      }
    }
    const body = req.method === 'POST' ? await readJson(req) : {};
    switch (key) {
      case 'POST /upstreams': {
        const err = upstreamError(body);
        if (err) throw imagoError('INGRESS_BAD_REQUEST', `POST /upstreams: ${err}`);
        const b = body as { name: string; url: string };
        const r = sw.register(makeUpstream(b.name, b.url.replace(/\/$/, ''), options.limits.maxSocketsPerUpstream, options.limits.upstreamIdleTimeoutMs));
        return [200, { ...r, upstreams: Object.fromEntries([...sw.upstreams.values()].map((u) => [u.name, u.url])) }];
      }
      case 'POST /mirror': {
        const r = mirrorer.configure(validateMirror(body), sw.upstreams, sw.target);
        return [200, { ...r, mirror: mirrorer.status() }];
      }
      case 'POST /hold': {
        expectKeys(body, ['timeoutMs'], 'POST /hold');
        const timeoutMs = body.timeoutMs === undefined ? options.limits.defaultHoldTimeoutMs : body.timeoutMs;
        if (typeof timeoutMs !== 'number') throw imagoError('INGRESS_BAD_REQUEST', `POST /hold: timeoutMs must be an integer in 1..${MAX_HOLD_TIMEOUT_MS}`);
        const r = sw.hold(timeoutMs);
        return [200, { ...r, state: 'held', target: sw.target.name, deadline: sw.holdDeadline, inFlight: sw.inFlight }];
      }
      case 'POST /switch': {
        expectKeys(body, ['target'], 'POST /switch');
        if (typeof body.target !== 'string') throw imagoError('INGRESS_BAD_REQUEST', 'POST /switch: target must be an upstream name');
        const r = sw.switchTo(body.target);
        mirrorer.onTargetChanged(sw.target);
        return [200, { ...r, target: sw.target.name }];
      }
      case 'POST /commit': {
        expectKeys(body, [], 'POST /commit');
        const r = sw.commit();
        return [200, { ...r, target: sw.target.name }];
      }
      case 'POST /release': {
        expectKeys(body, [], 'POST /release');
        const r = sw.release();
        return [200, { ...r, target: sw.target.name }];
      }
    }
    return [404, { error: 'INGRESS_BAD_REQUEST', message: `no control call ${key}` }];
  };

  return (req, res) => {
    if (!authorized(req, expected)) { req.resume(); send(res, 401, { error: 'INGRESS_UNAUTHORIZED', message: 'missing or wrong bearer token' }); return; }
    const url = new URL(req.url ?? '/', 'http://control');
    route(req, url).then(([status, body]) => send(res, status, body), (err: unknown) => {
      if (isImagoError(err)) { const e = err as ImagoError; send(res, 400, { error: e.code, message: e.message }); return; }
      send(res, 500, { error: 'INTERNAL', message: String((err as Error)?.message ?? err) });
    });
  };
}
