/**
 * The normaliser: turns a request into its endpoint name and a reply into the
 * form the differ compares (status, the headers worth comparing, and a body
 * that is parsed JSON with ignored paths removed and ignored values replaced,
 * or text with ignored patterns removed, or a hash).
 */
import { createHash } from 'node:crypto';
import type { CapturedReply, CapturedRequest } from './types';
import type { CompareRules } from './rules';
import { childPath, compilePaths, itemPath } from './json-path';

export type NormalisedBody =
  | { kind: 'json'; value: unknown }
  | { kind: 'text'; value: string }
  | { kind: 'hash'; value: string };

export interface NormalisedReply {
  status: number;
  headers: Record<string, string>;
  body: NormalisedBody;
  error?: string;
}

export const IGNORED_VALUE = '<ignored>';

/** Headers that differ between any two servers or replies and say nothing about the application. */
const BUILTIN_IGNORED_HEADERS = [
  'date', 'server', 'connection', 'keep-alive', 'transfer-encoding', 'content-length', 'etag', 'last-modified',
  'age', 'expires', 'via', 'x-powered-by', 'x-request-id', 'x-response-time', 'set-cookie', 'vary', 'report-to', 'nel',
];

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);
export function isSafeMethod(method: string): boolean {
  return SAFE_METHODS.has(method.toUpperCase());
}

/** A path segment that is an identifier of a record rather than part of the route. */
const ID_SEGMENT = /^(?:\d+|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|[0-9a-f]{16,}|(?=[^/]*\d)[\w-]{20,})$/i;

interface CompiledValueRule { re: RegExp; paths?: RegExp }

export class Normaliser {
  private readonly routes: Array<{ re: RegExp; name: string }>;
  private readonly ignoredHeaders: Set<string>;
  private readonly ignorePaths: RegExp | undefined;
  private readonly valueRules: CompiledValueRule[];
  private readonly textRules: RegExp[];

  constructor(private readonly rules: Readonly<CompareRules>) {
    this.routes = rules.routes.map((r) => ({ re: routeRegex(r), name: r }));
    this.ignoredHeaders = new Set([...BUILTIN_IGNORED_HEADERS, ...rules.ignoreHeaders.map((h) => h.toLowerCase())]);
    this.ignorePaths = compilePaths(rules.ignorePaths);
    this.valueRules = rules.ignoreValues.map((v) => ({ re: new RegExp(v.pattern, 'g'), paths: v.paths ? compilePaths(v.paths) : undefined }));
    this.textRules = rules.textPatterns.map((p) => new RegExp(p, 'g'));
  }

  /** `GET /items/:id`: the first matching route pattern, else the path with id-like segments replaced. */
  endpointOf(req: CapturedRequest): string {
    const method = req.method.toUpperCase();
    const q = req.url.indexOf('?');
    const path = (q < 0 ? req.url : req.url.slice(0, q)) || '/';
    for (const r of this.routes) if (r.re.test(path)) return `${method} ${r.name}`;
    const generic = path.split('/').map((s) => (ID_SEGMENT.test(s) ? ':id' : s)).join('/');
    return `${method} ${generic}`;
  }

  normalise(reply: CapturedReply): NormalisedReply {
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(reply.headers)) {
      const name = k.toLowerCase();
      if (v === undefined || this.ignoredHeaders.has(name)) continue;
      headers[name] = normaliseHeaderValue(name, Array.isArray(v) ? v.join(', ') : String(v));
    }
    const out: NormalisedReply = { status: reply.status, headers, body: this.normaliseBody(reply) };
    if (reply.error) out.error = reply.error;
    return out;
  }

  private normaliseBody(reply: CapturedReply): NormalisedBody {
    const buf = reply.body ?? Buffer.alloc(0);
    // Why: a huge body parsed and walked on the interceptor's event loop would
    // stall live traffic; past the limit we only know "same bytes or not".
    if (buf.length > this.rules.limits.maxBodyBytes) return { kind: 'hash', value: sha1(buf) };
    const ct = String(headerOf(reply.headers, 'content-type') ?? '').toLowerCase();
    const looksJson = ct.includes('json') || (!ct && /^\s*[[{]/.test(buf.subarray(0, 16).toString('latin1')));
    if (looksJson) {
      try {
        return { kind: 'json', value: this.normaliseJson(JSON.parse(buf.toString('utf8')), '$') };
      } catch { /* not JSON after all: compare as text */ }
    }
    if (!ct || ct.startsWith('text/') || /json|xml|html|javascript|x-www-form-urlencoded/.test(ct)) {
      let text = buf.toString('utf8');
      for (const re of this.textRules) text = text.replace(re, IGNORED_VALUE);
      return { kind: 'text', value: text };
    }
    return { kind: 'hash', value: sha1(buf) };
  }

  /** A copy of the value without ignored paths, ignored string values replaced. */
  private normaliseJson(v: unknown, path: string): unknown {
    if (typeof v === 'string') return this.normaliseString(v, path);
    if (Array.isArray(v)) {
      const p = itemPath(path);
      if (this.ignorePaths?.test(p)) return [];
      return v.map((x) => this.normaliseJson(x, p));
    }
    if (v && typeof v === 'object') {
      const out: Record<string, unknown> = {};
      for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
        const p = childPath(path, k);
        if (this.ignorePaths?.test(p)) continue;
        out[k] = this.normaliseJson(x, p);
      }
      return out;
    }
    return v;
  }

  private normaliseString(s: string, path: string): string {
    for (const r of this.valueRules) {
      if (r.paths && !r.paths.test(path)) continue;
      r.re.lastIndex = 0;
      s = s.replace(r.re, IGNORED_VALUE);
    }
    return s;
  }
}

function routeRegex(route: string): RegExp {
  const src = route.split('/').map((seg) => {
    if (seg === '*') return '.*';
    if (seg.startsWith(':')) return '[^/]+';
    return seg.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  }).join('/');
  return new RegExp(`^${src}/?$`);
}

function normaliseHeaderValue(name: string, v: string): string {
  // Why: "application/json; charset=utf-8" and "application/json;charset=UTF-8" mean the same.
  return name === 'content-type' ? v.toLowerCase().replace(/\s+/g, '') : v.trim();
}

export function headerOf(headers: CapturedReply['headers'], name: string): string | undefined {
  for (const [k, v] of Object.entries(headers)) if (k.toLowerCase() === name) return Array.isArray(v) ? v.join(', ') : v;
  return undefined;
}

function sha1(b: Buffer): string {
  return createHash('sha1').update(b).digest('hex');
}
