/**
 * The forwarder: sends one client request to one upstream over a keep-alive
 * pool and streams the reply back. Bodies stream both ways (nothing is
 * buffered unless a capture is asked for, for the comparer); hop-by-hop
 * headers are dropped; X-Forwarded-For/-Proto are added.
 */
import * as http from 'node:http';
import type { CapturedReply } from '../../compare/types';
import { nowMs } from './recorder';

export interface Upstream {
  name: string;
  url: string;
  host: string;
  port: number;
  agent: http.Agent;
}

/**
 * A keep-alive pool for one upstream. `idleTimeoutMs` closes a pooled socket
 * that stayed idle that long, so that I, not the upstream, ends an idle
 * connection (the keep-alive race: reusing a socket at the moment the
 * upstream closes it fails the request). Node 20's Agent also honours the
 * upstream's `Keep-Alive: timeout=N` hint, as N·1000 − 1000 ms — but only
 * when it is shorter than the agent's own `timeout`, and never when that
 * timeout is 0 (the default): without `timeout` idle sockets lived forever.
 */
export function makeUpstream(name: string, url: string, maxSockets: number, idleTimeoutMs = 4_000): Upstream {
  const u = new URL(url);
  return {
    name, url, host: u.hostname, port: Number(u.port || 80),
    agent: new http.Agent({ keepAlive: true, maxSockets, maxFreeSockets: maxSockets, scheduling: 'lifo', timeout: idleTimeoutMs, noDelay: true } as http.AgentOptions),
  };
}

// RFC 9110 §7.6.1: these describe one connection, not the message, so a proxy
// must not pass them on (plus any header named in Connection).
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'proxy-authenticate', 'proxy-authorization', 'expect']);

function connectionTokens(value: string | string[] | undefined): Set<string> | undefined {
  if (!value) return undefined;
  const set = new Set<string>();
  for (const t of String(value).split(',')) { const k = t.trim().toLowerCase(); if (k && k !== 'close' && k !== 'keep-alive') set.add(k); }
  return set.size ? set : undefined;
}

export function forwardHeaders(req: http.IncomingMessage): http.OutgoingHttpHeaders {
  const extra = connectionTokens(req.headers.connection);
  const out: http.OutgoingHttpHeaders = {};
  for (const k in req.headers) {
    if (HOP_BY_HOP.has(k) || extra?.has(k)) continue;
    out[k] = req.headers[k];
  }
  const ip = req.socket.remoteAddress ?? 'unknown';
  const prior = req.headers['x-forwarded-for'];
  out['x-forwarded-for'] = prior ? `${prior}, ${ip}` : ip;
  out['x-forwarded-proto'] = 'http';
  return out;
}

/**
 * The reply's headers as a flat [name, value, ...] list (the form writeHead
 * takes without copying into an object), hop-by-hop ones dropped.
 */
function replyHeaders(raw: string[]): string[] {
  let extra: Set<string> | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    if (raw[i].length === 10 && raw[i].toLowerCase() === 'connection') {
      const t = connectionTokens(raw[i + 1]);
      if (t) { extra ??= new Set(); for (const x of t) extra.add(x); }
    }
  }
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    const k = raw[i].toLowerCase();
    if (HOP_BY_HOP.has(k) || extra?.has(k)) continue;
    out.push(raw[i], raw[i + 1]);
  }
  return out;
}

/** What the proxy needs to know about a request head, from one pass over its raw headers. */
export interface RequestHead {
  /** Headers to send upstream, flat [name, value, ...]: hop-by-hop dropped, X-Forwarded-* added. */
  headers: string[];
  /** The client sent a Host header (an HTTP/1.0 client may not: the upstream's is used). */
  host: boolean;
  upgrade: boolean;
  /** Content-Length as sent (NaN when absent). */
  contentLength: number;
  chunked: boolean;
  /** No body follows the head. */
  noBody: boolean;
}

/** One pass over req.rawHeaders (req.headers, a lazily built object, is not touched). */
export function scanRequest(req: http.IncomingMessage): RequestHead {
  const raw = req.rawHeaders;
  let extra: Set<string> | undefined;
  let upgrade = false;
  let contentLength = NaN;
  let chunked = false;
  let prior: string | undefined;
  let host = false;
  const headers: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    const k = raw[i].toLowerCase();
    const v = raw[i + 1];
    switch (k) {
      case 'connection': { const t = connectionTokens(v); if (t) { extra ??= new Set(); for (const x of t) extra.add(x); } continue; }
      case 'upgrade': upgrade = true; continue;
      case 'transfer-encoding': chunked = true; continue;
      case 'content-length': contentLength = Number(v); break;
      case 'x-forwarded-for': prior = prior === undefined ? v : `${prior}, ${v}`; continue;
      case 'x-forwarded-proto': continue;
      case 'host': host = true; break;
      default: if (HOP_BY_HOP.has(k)) continue;
    }
    headers.push(raw[i], v);
  }
  if (extra) {
    for (let i = headers.length - 2; i >= 0; i -= 2) if (extra.has(headers[i].toLowerCase())) headers.splice(i, 2);
  }
  const ip = req.socket.remoteAddress ?? 'unknown';
  headers.push('X-Forwarded-For', prior ? `${prior}, ${ip}` : ip, 'X-Forwarded-Proto', 'http');
  return { headers, host, upgrade, contentLength, chunked, noBody: !chunked && !(contentLength > 0) };
}

/** Ends a request the interceptor answers itself. */
export function answer(res: http.ServerResponse, status: number, message: string, extra: http.OutgoingHttpHeaders = {}): void {
  if (res.headersSent) { res.destroy(); return; }
  const body = JSON.stringify({ error: message });
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), ...extra });
  res.end(body);
}

export interface ForwardResult {
  /** The status the client got; 499 when the client went away first, 502 when the upstream failed. */
  status: number;
  start: number;
  end: number;
  /** The reply as the client got it, when a capture was asked for. */
  captured?: CapturedReply;
}

export interface ForwardOptions {
  maxBodyBytes: number;
  /** Request bodies up to this size are kept until the reply begins, so that the request can be retried. */
  retryBodyBytes: number;
  /** Capture up to this many reply bytes for the comparer (undefined: no capture). */
  captureBytes?: number;
  onBodyTooLarge(): void;
  /** Called when a request is sent again after a failure on a reused connection. */
  onRetry(): void;
}

/**
 * Methods whose repetition has the same effect as one request (RFC 9110
 * §9.2.2): retried after a reused connection failed before any reply byte.
 */
const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE', 'TRACE']);
/**
 * Errors that show the request never reached the upstream application: the
 * socket was already closed (EPIPE) or destroyed when I wrote to it. Only
 * these allow retrying a non-idempotent request (POST, PATCH). ECONNRESET and
 * "socket hang up" do not: the upstream may have read the request and acted
 * on it before the connection died.
 */
const NOT_SENT = new Set(['EPIPE', 'ERR_STREAM_DESTROYED', 'ERR_STREAM_WRITE_AFTER_END']);

/** Forwards req to `up`; `done` is called exactly once, when the client's exchange is over. */
export function forward(req: http.IncomingMessage, res: http.ServerResponse, head: RequestHead, up: Upstream, opts: ForwardOptions, done: (r: ForwardResult) => void): void {
  const start = nowMs();
  let status = 0;
  let finished = false;
  let upstreamFailed = false;
  let responded = false;
  let retried = false;
  let ownStatus = 0; // set when we answered ourselves (413)
  let chunks: Buffer[] | undefined;
  let captured = 0;
  let capturedHeaders: http.IncomingHttpHeaders = {};
  let truncated = false;
  // Body bytes kept for a retry (undefined once over retryBodyBytes).
  let replay: Buffer[] | undefined = head.noBody ? undefined : [];
  let replayBytes = 0;

  const finish = (): void => {
    if (finished) return;
    finished = true;
    const end = nowMs();
    const clientGotAll = res.writableFinished;
    const final = ownStatus || (upstreamFailed ? 502 : clientGotAll ? status : 499);
    let reply: CapturedReply | undefined;
    if (opts.captureBytes !== undefined) {
      reply = {
        status: final, headers: capturedHeaders, body: Buffer.concat(chunks ?? []), latencyMs: end - start,
        ...(truncated ? { error: 'reply larger than the capture limit' } : upstreamFailed ? { error: 'upstream unreachable' } : !clientGotAll ? { error: 'reply cut' } : {}),
      };
    }
    done({ status: final, start, end, captured: reply });
  };

  const onResponse = (upRes: http.IncomingMessage): void => {
    responded = true;
    replay = undefined;
    if (ownStatus) { upRes.resume(); return; }
    status = upRes.statusCode ?? 502;
    if (opts.captureBytes !== undefined) {
      capturedHeaders = upRes.headers;
      chunks = [];
      const limit = opts.captureBytes;
      upRes.on('data', (c: Buffer) => {
        if (truncated) return;
        if (captured + c.length > limit) { truncated = true; chunks = []; return; }
        captured += c.length;
        chunks!.push(c);
      });
    }
    res.writeHead(status, upRes.statusMessage, replyHeaders(upRes.rawHeaders));
    upRes.pipe(res);
    // A reply cut by the upstream must not look complete to the client.
    upRes.on('aborted', () => res.destroy());
    upRes.on('error', () => res.destroy());
  };

  const canRetry = (sent: http.ClientRequest, err: NodeJS.ErrnoException): boolean => {
    if (retried || responded || ownStatus || !sent.reusedSocket || res.destroyed || res.headersSent) return false;
    if (!head.noBody && replay === undefined) return false; // body too large to send again
    if (IDEMPOTENT.has(req.method ?? '')) return true;
    return req.complete && NOT_SENT.has(err.code ?? '');
  };

  const send = (fresh: boolean): http.ClientRequest => {
    const r = http.request({
      host: up.host, port: up.port, method: req.method, path: req.url,
      headers: head.host ? head.headers : [...head.headers, 'Host', `${up.host}:${up.port}`],
      // A retry goes over a new connection, outside the pool: every pooled
      // socket may be as stale as the one that just failed.
      agent: fresh ? false : up.agent,
    });
    r.on('response', onResponse);
    r.on('error', (err: NodeJS.ErrnoException) => {
      if (r !== upReq || ownStatus) return;
      if (canRetry(r, err)) {
        retried = true;
        opts.onRetry();
        req.unpipe(r);
        upReq = send(true);
        if (!head.noBody) {
          for (const c of replay!) upReq.write(c);
          if (req.complete) upReq.end(); else req.pipe(upReq);
        } else upReq.end();
        return;
      }
      if (res.headersSent) { res.destroy(); return; }
      upstreamFailed = true;
      answer(res, 502, `upstream '${up.name}' failed`, { connection: 'close' });
    });
    return r;
  };
  let upReq = send(false);

  // Whatever ends the client's exchange (reply finished, client gone, error)
  // ends ours: drop the upstream request if it is still running.
  res.on('close', () => {
    if (!upReq.writableFinished || !res.writableFinished) upReq.destroy();
    finish();
  });

  if (head.noBody) { upReq.end(); return; }
  let received = 0;
  const keep = opts.retryBodyBytes;
  req.on('data', (c: Buffer) => {
    received += c.length;
    if (replay !== undefined) {
      replayBytes += c.length;
      if (replayBytes > keep) replay = undefined; else replay.push(c);
    }
    if (received > opts.maxBodyBytes && !ownStatus) {
      ownStatus = 413;
      req.unpipe(upReq);
      upReq.destroy();
      opts.onBodyTooLarge();
      // The rest of the body is unread: close the connection after the reply.
      answer(res, 413, `request body larger than ${opts.maxBodyBytes} bytes`, { connection: 'close' });
    }
  });
  req.pipe(upReq);
}
