/**
 * The differ: field-by-field differences between two normalised replies.
 * Field names: `status`, `error`, `header:<name>`, `body` (kinds differ or
 * hashed bodies), `text` (text bodies), and JSON paths like `$.items[*].price`.
 * A list whose elements are the same records in another order gives one
 * `order` difference on the list itself, then its records are matched by
 * identity and compared field by field.
 */
import type { NormalisedReply } from './normaliser';
import { childPath, itemPath } from './json-path';

import type { Difference } from './report-schema';

export type { Difference, DiffKind } from './report-schema';

const SHOW = 160;
/** Keys that identify a record in a list, in order of preference. */
const IDENTITY_KEYS = ['id', '_id', 'uuid', 'key', 'code', 'name'];

export class Differ {
  /** At most `maxPerPair` differences per pair, one per field name. */
  constructor(private readonly maxPerPair = 50) {}

  diff(left: NormalisedReply, right: NormalisedReply): Difference[] {
    const out = new DiffSink(this.maxPerPair);
    if (left.error || right.error) {
      if (left.error !== right.error) out.add({ field: 'error', kind: 'value', left: show(left.error ?? null), right: show(right.error ?? null) });
      if (left.error && right.error) return out.list;
    }
    if (left.status !== right.status) out.add({ field: 'status', kind: 'value', left: String(left.status), right: String(right.status) });
    for (const name of new Set([...Object.keys(left.headers), ...Object.keys(right.headers)])) {
      const a = left.headers[name]; const b = right.headers[name];
      if (a === b) continue;
      out.add({ field: `header:${name}`, kind: a === undefined ? 'extra' : b === undefined ? 'missing' : 'value', left: show(a), right: show(b) });
    }
    const lb = left.body; const rb = right.body;
    if (lb.kind !== rb.kind) out.add({ field: 'body', kind: 'type', left: lb.kind, right: rb.kind });
    else if (lb.kind === 'json') diffJson(lb.value, (rb as typeof lb).value, '$', out);
    else if (lb.value !== rb.value) {
      if (lb.kind === 'hash') out.add({ field: 'body', kind: 'value', left: lb.value, right: String(rb.value) });
      else out.add({ field: 'text', kind: 'value', ...firstDifferingLine(lb.value, String(rb.value)) });
    }
    return out.list;
  }
}

class DiffSink {
  readonly list: Difference[] = [];
  private readonly seen = new Set<string>();
  constructor(private readonly max: number) {}
  add(d: Difference): void {
    if (this.seen.has(d.field) || this.list.length >= this.max) return;
    this.seen.add(d.field);
    this.list.push(d);
  }
}

function typeOf(v: unknown): string {
  return v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v;
}

function diffJson(a: unknown, b: unknown, path: string, out: DiffSink): void {
  const ta = typeOf(a); const tb = typeOf(b);
  if (ta !== tb) { out.add({ field: path, kind: 'type', left: show(a), right: show(b) }); return; }
  if (ta === 'array') { diffArrays(a as unknown[], b as unknown[], path, out); return; }
  if (ta === 'object') {
    const ao = a as Record<string, unknown>; const bo = b as Record<string, unknown>;
    for (const k of Object.keys(ao)) {
      const p = childPath(path, k);
      if (!(k in bo)) out.add({ field: p, kind: 'missing', left: show(ao[k]) });
      else diffJson(ao[k], bo[k], p, out);
    }
    for (const k of Object.keys(bo)) if (!(k in ao)) out.add({ field: childPath(path, k), kind: 'extra', right: show(bo[k]) });
    return;
  }
  if (a !== b) out.add({ field: path, kind: 'value', left: show(a), right: show(b) });
}

function diffArrays(a: unknown[], b: unknown[], path: string, out: DiffSink): void {
  const item = itemPath(path);
  if (a.length !== b.length) {
    out.add({ field: path, kind: 'length', left: `${a.length} items`, right: `${b.length} items` });
    return;
  }
  const idKey = identityKey(a, b);
  if (idKey) {
    const ids = (xs: unknown[]) => xs.map((x) => JSON.stringify((x as Record<string, unknown>)[idKey]));
    const ia = ids(a); const ib = ids(b);
    if (ia.join('\u0000') !== ib.join('\u0000') && sameMultiset(ia, ib)) {
      out.add({ field: path, kind: 'order', left: show(ia.slice(0, 10).join(',')), right: show(ib.slice(0, 10).join(',')) });
      // Same records in another order: compare each record with its twin.
      const byId = new Map<string, unknown>();
      b.forEach((x, i) => byId.set(ib[i], x));
      a.forEach((x, i) => diffJson(x, byId.get(ia[i]), item, out));
      return;
    }
  } else if (a.length > 1 && a.every(isPrimitive) && b.every(isPrimitive)) {
    const sa = a.map((x) => JSON.stringify(x)); const sb = b.map((x) => JSON.stringify(x));
    if (sa.join('\u0000') !== sb.join('\u0000') && sameMultiset(sa, sb)) {
      out.add({ field: path, kind: 'order', left: show(sa.slice(0, 10).join(',')), right: show(sb.slice(0, 10).join(',')) });
      return;
    }
  }
  for (let i = 0; i < a.length; i++) diffJson(a[i], b[i], item, out);
}

/** The first identity key that every record of both lists has, with unique values. */
function identityKey(a: unknown[], b: unknown[]): string | undefined {
  if (a.length < 2) return undefined;
  const all = [...a, ...b];
  if (!all.every((x) => x !== null && typeof x === 'object' && !Array.isArray(x))) return undefined;
  for (const k of IDENTITY_KEYS) {
    if (!all.every((x) => isPrimitive((x as Record<string, unknown>)[k]) && (x as Record<string, unknown>)[k] !== undefined)) continue;
    if (new Set(a.map((x) => (x as Record<string, unknown>)[k])).size === a.length) return k;
  }
  return undefined;
}

function isPrimitive(x: unknown): boolean {
  return x === null || (typeof x !== 'object' && typeof x !== 'function');
}

function sameMultiset(a: string[], b: string[]): boolean {
  const sa = [...a].sort(); const sb = [...b].sort();
  return sa.every((x, i) => x === sb[i]);
}

function show(v: unknown): string {
  const s = typeof v === 'string' ? JSON.stringify(v) : v === undefined ? 'undefined' : JSON.stringify(v) ?? String(v);
  return s.length > SHOW ? `${s.slice(0, SHOW)}…` : s;
}

function firstDifferingLine(a: string, b: string): { left: string; right: string } {
  const la = a.split('\n'); const lb = b.split('\n');
  for (let i = 0; i < Math.max(la.length, lb.length); i++) {
    if (la[i] !== lb[i]) return { left: show(`line ${i + 1}: ${la[i] ?? ''}`), right: show(`line ${i + 1}: ${lb[i] ?? ''}`) };
  }
  return { left: '', right: '' };
}
