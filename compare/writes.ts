/**
 * The write judge: a live write went to Uold (the client's reply) and, as a
 * shadow copy, to the sandbox — a clone of Unew's data with a second
 * instance of the new version, never Unew itself. Two comparisons:
 *
 *  1. the replies, by status and shape (keys, types, headers), with the
 *     noise rules: their values depend on state the two universes do not
 *     share exactly (the sandbox is a clone of a moment) and on ids each
 *     store assigns itself;
 *  2. the read-back: what the write stored, read through the same API in
 *     both universes right after it (each with its own assigned id), and
 *     compared value by value — only the write's own record when the rule
 *     names a list, ids mapped, timestamps of "now" within a tolerance. A
 *     wrong date, a wrong amount, a row missing in a second table shows
 *     here.
 *
 * Field names: the reply's as for reads; the read-back's prefixed
 * `readback:` (`readback:$.amount`, `readback:status`).
 */
import type { CompareRules, ReadBackRule } from './rules';
import type { Differ, Difference } from './differ';
import { headerOf, type Normaliser, type NormalisedReply } from './normaliser';
import type { Replayer } from './replayer';
import type { CapturedReply, CapturedRequest, MirroredPair } from './types';

export const ASSIGNED_ID = '<assigned id>';
/** ISO-8601 date-times as JSON APIs write them (with a zone, or without one). */
const ISO_TIME = /^\d{4}-\d\d-\d\dT\d\d:\d\d(:\d\d(\.\d+)?)?(Z|[+-]\d\d:?\d\d)?$/;

export interface WriteJudgement {
  diffs: Difference[];
  /** True when both universes' effects were read back and compared. */
  readBack: boolean;
  /** Why there was no read-back, when there was none. */
  note?: string;
}

interface Target { url: string; id: string | undefined }

export class WriteJudge {
  private readonly rules: Array<{ method: string; re: RegExp; names: string[]; rule: ReadBackRule }>;

  constructor(
    private readonly cfg: Readonly<CompareRules>,
    private readonly normaliser: Normaliser,
    private readonly differ: Differ,
    private readonly uold: Replayer,
    private readonly sandbox: Replayer | undefined,
  ) {
    this.rules = cfg.writes.readBack.map((rule) => {
      const [method, route] = rule.route.split(' ');
      const names: string[] = [];
      const src = route.split('/').map((seg) => {
        if (seg.startsWith(':')) { names.push(seg.slice(1)); return '([^/]+)'; }
        if (seg === '*') return '.*';
        return seg.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
      }).join('/');
      return { method, re: new RegExp(`^${src}/?$`), names, rule };
    });
  }

  async judge(pair: MirroredPair): Promise<WriteJudgement> {
    const reply = this.replyDiffs(pair.primary, pair.shadow);
    const ok = (r: CapturedReply) => !r.error && r.status >= 200 && r.status < 300;
    if (!this.sandbox) return { diffs: reply, readBack: false, note: 'no sandbox URL' };
    if (!ok(pair.primary) || !ok(pair.shadow)) return { diffs: reply, readBack: false, note: 'the write did not succeed in both universes' };
    const left = this.target(pair.request, pair.primary);
    const right = this.target(pair.request, pair.shadow);
    if (!left || !right) return { diffs: reply, readBack: false, note: 'no read-back rule and no Location or id in the reply' };
    const headers = readBackHeaders(pair.request);
    const [a, b] = await Promise.all([
      this.uold.send({ method: 'GET', url: left.url, headers }, 'read-back'),
      this.sandbox.send({ method: 'GET', url: right.url, headers }, 'read-back'),
    ]);
    if (a.error) return { diffs: reply, readBack: false, note: `Uold's read-back failed: ${a.error}` };
    const explicit = !!this.ruleFor(pair.request);
    // Nothing at the guessed URL on either side: a guess, not a finding.
    if (!explicit && a.status === 404 && b.status === 404) return { diffs: reply, readBack: false, note: 'nothing at the guessed read-back URL' };
    return { diffs: [...reply, ...this.readBackDiffs(a, b, left.id, right.id, this.ruleFor(pair.request)?.rule)], readBack: true };
  }

  /** Status, headers and shape: value differences are left to the read-back. */
  replyDiffs(primary: CapturedReply, shadow: CapturedReply): Difference[] {
    const diffs = this.differ.diff(this.normaliser.normalise(primary), this.normaliser.normalise(shadow));
    return diffs.filter((d) => {
      if (d.field === 'status' || d.field === 'error' || d.field.startsWith('header:')) return true;
      if (d.field === 'body') return d.kind === 'type';
      if (d.field === 'text') return false;
      return d.kind === 'missing' || d.kind === 'extra' || d.kind === 'type';
    });
  }

  private ruleFor(req: CapturedRequest) {
    const method = req.method.toUpperCase();
    const path = pathOf(req.url);
    for (const r of this.rules) {
      const m = r.method === method ? r.re.exec(path) : null;
      if (m) return { rule: r.rule, params: Object.fromEntries(r.names.map((n, i) => [n, decodeURIComponent(m[i + 1])])) };
    }
    return undefined;
  }

  /** Where one universe's effect of the write is read back, and the id it assigned. */
  target(req: CapturedRequest, reply: CapturedReply): Target | undefined {
    const body = parseJson(reply.body);
    const requestBody = parseJson(req.body);
    const found = this.ruleFor(req);
    if (found) {
      const { rule, params } = found;
      const id = lookup(rule.id ?? '{reply.id}', params, body, requestBody);
      const url = rule.get.replace(/\{([^}]*)\}/g, (_, key: string) => encodeURIComponent(lookup(`{${key}}`, params, body, requestBody) ?? ''));
      if (/\{|\/\/|\/$/.test(url) && url !== '/') return undefined;
      return { url, id };
    }
    const idKey = this.cfg.writes.idKeys[0] ?? 'id';
    const id = scalar((body as Record<string, unknown> | undefined)?.[idKey]);
    const location = headerOf(reply.headers, 'location');
    if (location) {
      try { const u = new URL(location, 'http://x'); return { url: u.pathname + u.search, id }; } catch { /* not a URL: fall through */ }
    }
    const method = req.method.toUpperCase();
    const path = pathOf(req.url);
    if (method === 'POST' && id !== undefined) return { url: `${path.replace(/\/$/, '')}/${encodeURIComponent(id)}`, id };
    if (method === 'PUT' || method === 'PATCH' || method === 'DELETE') return { url: req.url, id };
    return undefined;
  }

  /** Diffs the two read-backs: only the write's own record when the rule names a list; ids mapped; "now" within the tolerance. */
  readBackDiffs(a: CapturedReply, b: CapturedReply, idA: string | undefined, idB: string | undefined, rule?: ReadBackRule): Difference[] {
    const out: Difference[] = [];
    const na = this.normaliser.normalise(a);
    const nb = this.normaliser.normalise(b);
    if (b.error) return [{ field: 'readback:error', kind: 'value', left: 'none', right: b.error }];
    if (na.status !== nb.status) out.push({ field: 'readback:status', kind: 'value', left: String(na.status), right: String(nb.status) });
    if (na.body.kind !== 'json' || nb.body.kind !== 'json') {
      for (const d of this.differ.diff({ ...na, headers: {} }, { ...nb, headers: {}, status: na.status })) out.push({ ...d, field: `readback:${d.field}` });
      return out;
    }
    let va: unknown = na.body.value;
    let vb: unknown = nb.body.value;
    if (rule?.list) {
      const key = rule.match ?? 'id';
      const ra = pick(va, rule.list, key, idA);
      const rb = pick(vb, rule.list, key, idB);
      const where = `readback:${rule.list}[${key}=${ASSIGNED_ID}]`;
      if (ra === undefined && rb === undefined) return out;
      if (rb === undefined) return [...out, { field: where, kind: 'missing', left: show(ra) }];
      if (ra === undefined) return [...out, { field: where, kind: 'extra', right: show(rb) }];
      va = maskId(ra, [key], idA);
      vb = maskId(rb, [key], idB);
    } else {
      va = maskId(va, this.cfg.writes.idKeys, idA);
      vb = maskId(vb, this.cfg.writes.idKeys, idB);
    }
    vb = alignTimes(va, vb, this.cfg.writes.timeToleranceMs);
    const json = (value: unknown): NormalisedReply => ({ status: 200, headers: {}, body: { kind: 'json', value } });
    const base = rule?.list ? `${rule.list}[*]` : '$';
    for (const d of this.differ.diff(json(va), json(vb))) out.push({ ...d, field: `readback:${d.field.startsWith('$') ? base + d.field.slice(1) : d.field}` });
    return out;
  }
}

function pathOf(url: string): string {
  const q = url.indexOf('?');
  return (q < 0 ? url : url.slice(0, q)) || '/';
}

function parseJson(b: Buffer | undefined): unknown {
  if (!b?.length) return undefined;
  try { return JSON.parse(b.toString('utf8')); } catch { return undefined; }
}

function scalar(v: unknown): string | undefined {
  return typeof v === 'number' || typeof v === 'string' ? String(v) : undefined;
}

function lookup(template: string, params: Record<string, string>, reply: unknown, request: unknown): string | undefined {
  const m = /^\{(path|reply|request)\.([^}]+)\}$/.exec(template);
  if (!m) return undefined;
  if (m[1] === 'path') return params[m[2]];
  const from = (m[1] === 'reply' ? reply : request) as Record<string, unknown> | undefined;
  return scalar(from && typeof from === 'object' ? from[m[2]] : undefined);
}

/** The record of the list at `listPath` whose `key` holds `id`. */
function pick(value: unknown, listPath: string, key: string, id: string | undefined): unknown {
  if (id === undefined) return undefined;
  let cur: unknown = value;
  for (const k of listPath.slice(2).split('.')) cur = cur && typeof cur === 'object' && !Array.isArray(cur) ? (cur as Record<string, unknown>)[k] : undefined;
  if (!Array.isArray(cur)) return undefined;
  return cur.find((x) => x && typeof x === 'object' && scalar((x as Record<string, unknown>)[key]) === id);
}

/** The assigned id replaced by a placeholder at the id keys (each universe assigns its own). */
function maskId(v: unknown, keys: readonly string[], id: string | undefined): unknown {
  if (id === undefined || !v || typeof v !== 'object' || Array.isArray(v)) return v;
  const out = { ...(v as Record<string, unknown>) };
  for (const k of keys) if (scalar(out[k]) === id) out[k] = ASSIGNED_ID;
  return out;
}

/** b with every timestamp that is within `tol` ms of a's at the same place replaced by a's. */
export function alignTimes(a: unknown, b: unknown, tol: number): unknown {
  if (typeof a === 'string' && typeof b === 'string' && a !== b && ISO_TIME.test(a) && ISO_TIME.test(b)) {
    const ta = Date.parse(a); const tb = Date.parse(b);
    return Number.isFinite(ta) && Number.isFinite(tb) && Math.abs(ta - tb) <= tol ? a : b;
  }
  if (Array.isArray(a) && Array.isArray(b)) return b.map((x, i) => (i < a.length ? alignTimes(a[i], x, tol) : x));
  if (a && b && typeof a === 'object' && typeof b === 'object' && !Array.isArray(a) && !Array.isArray(b)) {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(b as Record<string, unknown>)) out[k] = k in (a as object) ? alignTimes((a as Record<string, unknown>)[k], x, tol) : x;
    return out;
  }
  return b;
}

function readBackHeaders(req: CapturedRequest): CapturedRequest['headers'] {
  const out: CapturedRequest['headers'] = {};
  for (const [k, v] of Object.entries(req.headers)) {
    const name = k.toLowerCase();
    if (name === 'content-type' || name === 'content-length' || name.startsWith('x-imago')) continue;
    out[k] = v;
  }
  out.accept ??= 'application/json';
  return out;
}

function show(v: unknown): string {
  const s = JSON.stringify(v) ?? String(v);
  return s.length > 160 ? `${s.slice(0, 160)}…` : s;
}
