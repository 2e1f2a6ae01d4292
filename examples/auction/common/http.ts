/**
 * HTTP plumbing shared by v1 and v2 (not their logic): JSON bodies with a size
 * cap, JSON replies, typed client errors, a tiny router, and a graceful stop.
 */
import * as http from 'node:http';

export class HttpError extends Error {
  constructor(readonly status: number, readonly code: string, message: string, readonly extra: Record<string, unknown> = {}) { super(message); }
}

export const badRequest = (msg: string) => new HttpError(400, 'BAD_REQUEST', msg);
export const notFound = (msg: string) => new HttpError(404, 'NOT_FOUND', msg);
export const conflict = (msg: string, extra: Record<string, unknown> = {}) => new HttpError(409, 'CONFLICT', msg, extra);

export function readJson(req: http.IncomingMessage, maxBytes: number): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared > maxBytes) { req.resume(); reject(new HttpError(413, 'PAYLOAD_TOO_LARGE', `body of ${declared} bytes exceeds the limit of ${maxBytes}`)); return; }
    const chunks: Buffer[] = [];
    let size = 0;
    let failed = false;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > maxBytes && !failed) { failed = true; reject(new HttpError(413, 'PAYLOAD_TOO_LARGE', `body exceeds the limit of ${maxBytes} bytes`)); }
      if (!failed) chunks.push(c);
    });
    req.on('error', reject);
    req.on('end', () => {
      if (failed) return;
      const text = Buffer.concat(chunks).toString('utf8');
      if (text.trim() === '') { reject(badRequest('a JSON object body is required')); return; }
      try {
        const v = JSON.parse(text);
        if (v === null || typeof v !== 'object' || Array.isArray(v)) reject(badRequest('the body must be a JSON object'));
        else resolve(v);
      } catch (err) { reject(badRequest(`malformed JSON: ${(err as Error).message}`)); }
    });
  });
}

export function sendJson(res: http.ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

export function sendError(res: http.ServerResponse, err: unknown, log: (line: string) => void): void {
  if (err instanceof HttpError) { sendJson(res, err.status, { error: { code: err.code, message: err.message, ...err.extra } }); return; }
  // One line per failure: a database outage must not flood the log with stacks.
  const e = err as NodeJS.ErrnoException;
  log(`internal error: ${e?.code ? `${e.code} ` : ''}${e?.message ?? err}${e?.stack ? ` at ${e.stack.split('\n')[1]?.trim()}` : ''}`);
  sendJson(res, 500, { error: { code: 'INTERNAL', message: 'internal error' } });
}

/** Field validators that throw a 400 naming the field. */
export const field = {
  int(body: Record<string, unknown>, name: string, opts: { min?: number; max?: number; optional?: number } = {}): number {
    const v = body[name] ?? opts.optional;
    if (typeof v !== 'number' || !Number.isInteger(v)) throw badRequest(`'${name}' must be an integer`);
    if (opts.min !== undefined && v < opts.min) throw badRequest(`'${name}' must be at least ${opts.min}`);
    if (opts.max !== undefined && v > opts.max) throw badRequest(`'${name}' must be at most ${opts.max}`);
    return v;
  },
  str(body: Record<string, unknown>, name: string, min: number, max: number, pattern?: RegExp): string {
    const v = body[name];
    if (typeof v !== 'string') throw badRequest(`'${name}' must be a string`);
    const s = v.trim().replace(/\s+/g, ' ');
    if (s.length < min || s.length > max) throw badRequest(`'${name}' must be ${min} to ${max} characters`);
    if (pattern && !pattern.test(s)) throw badRequest(`'${name}' has an invalid format`);
    return s;
  },
  /** A positive amount of money with at most two decimals, returned as integer cents. */
  cents(body: Record<string, unknown>, name: string): number {
    const v = body[name];
    if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0 || v > 100_000_000) throw badRequest(`'${name}' must be a positive number up to 100000000`);
    const cents = Math.round(v * 100);
    if (Math.abs(cents - v * 100) > 1e-6) throw badRequest(`'${name}' must have at most two decimals`);
    return cents;
  },
  /** Query string integer with a default and bounds. */
  query(url: URL, name: string, def: number, min: number, max: number): number {
    const raw = url.searchParams.get(name);
    if (raw === null) return def;
    const v = Number(raw);
    if (!Number.isInteger(v) || v < min || v > max) throw badRequest(`query parameter '${name}' must be an integer from ${min} to ${max}`);
    return v;
  },
};

export function pathId(raw: string, what: string): number {
  const v = Number(raw);
  if (!/^\d{1,10}$/.test(raw) || v < 1 || v > 2_147_483_647) throw badRequest(`${what} id '${raw}' is not a positive integer`);
  return v;
}

export type Handler = (ctx: { req: http.IncomingMessage; url: URL; params: string[]; body: () => Promise<Record<string, unknown>> }) => Promise<[number, unknown]>;

export interface Route { method: string; pattern: RegExp; handler: Handler }

/**
 * Serves routes; on stop() it stops accepting connections, lets in-flight
 * requests finish (their replies carry Connection: close), then resolves.
 */
export function serve(routes: Route[], opts: { port: number; maxBodyBytes: number; logRequests: boolean; log: (l: string) => void }) {
  let stopping = false;
  let inflight = 0;
  const server = http.createServer((req, res) => {
    inflight++;
    const t0 = Date.now();
    res.on('close', () => {
      inflight--;
      if (opts.logRequests) opts.log(`${req.method} ${req.url} ${res.statusCode} ${Date.now() - t0}ms`);
      if (stopping) server.closeIdleConnections();
    });
    // Why: once stopping, a kept-alive socket must not carry another request
    // after this reply; the client reconnects and finds the port closed.
    if (stopping) res.setHeader('connection', 'close');
    const url = new URL(req.url ?? '/', 'http://localhost');
    const match = routes.map((r) => ({ r, m: req.method === r.method ? r.pattern.exec(url.pathname) : null })).find((x) => x.m);
    if (!match) {
      const known = routes.some((r) => r.pattern.test(url.pathname));
      sendError(res, known ? new HttpError(405, 'METHOD_NOT_ALLOWED', `${req.method} is not allowed on ${url.pathname}`) : notFound(`no such endpoint: ${url.pathname}`), opts.log);
      req.resume();
      return;
    }
    match.r.handler({ req, url, params: match.m!.slice(1), body: () => readJson(req, opts.maxBodyBytes) })
      .then(([status, body]) => sendJson(res, status, body))
      .catch((err) => {
        if (err instanceof HttpError && err.status === 413) res.setHeader('connection', 'close');
        sendError(res, err, opts.log);
      });
  });
  server.keepAliveTimeout = 5_000;
  return {
    server,
    listen: () => new Promise<number>((resolve, reject) => {
      server.once('error', reject);
      server.listen(opts.port, '127.0.0.1', () => resolve((server.address() as { port: number }).port));
    }),
    get inflight() { return inflight; },
    stop: (timeoutMs: number) => new Promise<void>((resolve) => {
      stopping = true;
      // Why the sweep: a keep-alive socket whose request was already in flight
      // when stopping began becomes idle only after its reply; close it then,
      // not after keepAliveTimeout.
      const sweep = setInterval(() => server.closeIdleConnections(), 50);
      const timer = setTimeout(() => { server.closeAllConnections(); }, timeoutMs);
      server.close(() => { clearTimeout(timer); clearInterval(sweep); resolve(); });
      server.closeIdleConnections();
    }),
  };
}
