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

export function makeUpstream(name: string, url: string, maxSockets: number): Upstream {
  const u = new URL(url);
  return {
    name, url, host: u.hostname, port: Number(u.port || 80),
    agent: new http.Agent({ keepAlive: true, maxSockets, maxFreeSockets: maxSockets, scheduling: 'lifo' }),
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

function replyHeaders(headers: http.IncomingHttpHeaders): http.OutgoingHttpHeaders {
  const extra = connectionTokens(headers.connection);
  const out: http.OutgoingHttpHeaders = {};
  for (const k in headers) {
    if (HOP_BY_HOP.has(k) || extra?.has(k)) continue;
    out[k] = headers[k];
  }
  return out;
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
  /** Capture up to this many reply bytes for the comparer (undefined: no capture). */
  captureBytes?: number;
  onBodyTooLarge(): void;
}

/** Forwards req to `up`; `done` is called exactly once, when the client's exchange is over. */
export function forward(req: http.IncomingMessage, res: http.ServerResponse, up: Upstream, opts: ForwardOptions, done: (r: ForwardResult) => void): void {
  const start = nowMs();
  let status = 0;
  let finished = false;
  let upstreamFailed = false;
  let ownStatus = 0; // set when we answered ourselves (413)
  let chunks: Buffer[] | undefined;
  let captured = 0;
  let capturedHeaders: http.IncomingHttpHeaders = {};
  let truncated = false;

  const upReq = http.request({
    host: up.host, port: up.port, method: req.method, path: req.url, headers: forwardHeaders(req), agent: up.agent,
  });

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

  upReq.on('response', (upRes) => {
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
    res.writeHead(status, upRes.statusMessage, replyHeaders(upRes.headers));
    upRes.pipe(res);
    // A reply cut by the upstream must not look complete to the client.
    upRes.on('aborted', () => res.destroy());
    upRes.on('error', () => res.destroy());
  });

  upReq.on('error', () => {
    if (ownStatus) return;
    if (res.headersSent) { res.destroy(); return; }
    upstreamFailed = true;
    answer(res, 502, `upstream '${up.name}' failed`, { connection: 'close' });
  });

  // Whatever ends the client's exchange (reply finished, client gone, error)
  // ends ours: drop the upstream request if it is still running.
  res.on('close', () => {
    if (!upReq.writableFinished || !res.writableFinished) upReq.destroy();
    finish();
  });

  let received = 0;
  req.on('data', (c: Buffer) => {
    received += c.length;
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
