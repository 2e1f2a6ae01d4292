/**
 * The tally: bounded counters per endpoint and per field, the noise
 * classification, and bounded examples. Everything here has a cap
 * (endpoints, fields, difference signatures, examples, example bytes), so a
 * long mirroring run costs the same memory as a short one.
 */
import type { Difference, DiffKind, Example, ReplyExample } from './report-schema';
import type { CompareRules } from './rules';
import type { CapturedReply, MirroredPair } from './types';

export const OTHER_ENDPOINTS = '(other endpoints)';
export const OTHER_FIELDS = '(other fields)';
/** Pairs whose set of differing fields did not fit the signature cap: counted as regressions (the safe side). */
const OVERFLOW_SIGNATURE = '\u0000overflow';
const MAX_SIGNATURES = 512;
const MAX_DIFFS_IN_EXAMPLE = 20;

export type { Example, ReplyExample } from './report-schema';

export interface FieldTally {
  field: string;
  /** Pairs where Uold and Unew differ on this field (after lag rechecks). */
  differences: number;
  /** Uold-vs-Uold samples where this field differed. */
  noiseDifferences: number;
  /** Pairs where the field differed at first and agreed on recheck. */
  lagExplained: number;
  kinds: Partial<Record<DiffKind, number>>;
  examples: Example[];
}

export interface EndpointTally {
  endpoint: string;
  samples: number;
  noiseSamples: number;
  lagExplainedPairs: number;
  rechecks: number;
  recheckSkipped: number;
  /** Pairs where Unew failed (5xx or no reply) and Uold did not, still so after rechecks. */
  serverErrors: number;
  serverErrorExample?: Example;
  fields: Map<string, FieldTally>;
  /** Sorted differing-field sets -> pairs; lets the report count regressed pairs exactly once noise is known. */
  signatures: Map<string, number>;
  /** 'write': a write endpoint, mirrored into the sandbox and judged by reply shape and read-back. */
  kind: 'read' | 'write';
  /** Pairs that active sampling replayed (counted in samples too), and a few of their URLs. */
  replayed: number;
  replayedUrls: string[];
  /** Write pairs whose effect was read back in both universes; and those with nothing to read back. */
  readBacks: number;
  readBackSkipped: number;
  /** Latencies of live pairs (Uold's reply, Unew's reply to the same request): a bounded reservoir. */
  latency: LatencyReservoir;
}

/** Uniform sample (Vitter's algorithm R) of at most LATENCY_RESERVOIR pairs of latencies. */
export interface LatencyReservoir { seen: number; uold: number[]; unew: number[] }

export const LATENCY_RESERVOIR = 1024;
const REPLAYED_URLS_KEPT = 5;

export class Tally {
  readonly endpoints = new Map<string, EndpointTally>();
  private examples = 0;

  constructor(private readonly rules: Readonly<CompareRules>) {}

  endpoint(name: string): EndpointTally {
    let e = this.endpoints.get(name);
    if (e) return e;
    if (this.endpoints.size >= this.rules.limits.maxEndpoints) name = OTHER_ENDPOINTS;
    e = this.endpoints.get(name);
    if (!e) {
      e = {
        endpoint: name, samples: 0, noiseSamples: 0, lagExplainedPairs: 0, rechecks: 0, recheckSkipped: 0, serverErrors: 0, fields: new Map(), signatures: new Map(),
        kind: 'read', replayed: 0, replayedUrls: [], readBacks: 0, readBackSkipped: 0, latency: { seen: 0, uold: [], unew: [] },
      };
      this.endpoints.set(name, e);
    }
    return e;
  }

  private field(e: EndpointTally, name: string): FieldTally {
    let f = e.fields.get(name);
    if (f) return f;
    if (e.fields.size >= this.rules.limits.maxFieldsPerEndpoint) name = OTHER_FIELDS;
    f = e.fields.get(name);
    if (!f) {
      f = { field: name, differences: 0, noiseDifferences: 0, lagExplained: 0, kinds: {}, examples: [] };
      e.fields.set(name, f);
    }
    return f;
  }

  /** One compared pair with its final differences and the fields a recheck explained by lag. */
  recordPair(endpoint: string, pair: MirroredPair, diffs: Difference[], lagExplained: string[], judged: Example['judged']): void {
    const e = this.endpoint(endpoint);
    e.samples++;
    if (pair.kind === 'write') e.kind = 'write';
    if (pair.kind === 'replayed') {
      e.replayed++;
      if (e.replayedUrls.length < REPLAYED_URLS_KEPT && !e.replayedUrls.includes(pair.request.url)) e.replayedUrls.push(pair.request.url.slice(0, 200));
    }
    // Latency is judged on live reads only: a replay's timing is the engine's,
    // and a write's shadow is the sandbox, not Unew.
    if ((pair.kind ?? 'read') === 'read' && !pair.primary.error && !pair.shadow.error && pair.shadow.status > 0) this.recordLatency(e.latency, pair.primary.latencyMs, pair.shadow.latencyMs);
    if (lagExplained.length) e.lagExplainedPairs++;
    for (const name of lagExplained) this.field(e, name).lagExplained++;
    const names: string[] = [];
    for (const d of diffs) {
      const f = this.field(e, d.field);
      f.differences++;
      f.kinds[d.kind] = (f.kinds[d.kind] ?? 0) + 1;
      names.push(f.field);
      if (f.examples.length < this.rules.limits.examplesPerField && this.examples < this.rules.limits.maxExamples) {
        f.examples.push(this.example(pair, diffs, judged));
        this.examples++;
      }
    }
    // A server error is judged on the final differences: one a recheck explained (lag) is not counted.
    // No reply at all (status 0) or a 5xx; a 200 cut at the capture limit is not a failure.
    const unewFailed = pair.shadow.status === 0 || pair.shadow.status >= 500;
    const uoldFine = pair.primary.error === undefined && pair.primary.status < 500;
    if (unewFailed && uoldFine && diffs.some((d) => d.field === 'status' || d.field === 'error')) {
      e.serverErrors++;
      e.serverErrorExample ??= this.example(pair, diffs, judged);
    }
    if (names.length) {
      let sig = [...new Set(names)].sort().join('\n');
      if (!e.signatures.has(sig) && e.signatures.size >= MAX_SIGNATURES) sig = OVERFLOW_SIGNATURE;
      e.signatures.set(sig, (e.signatures.get(sig) ?? 0) + 1);
    }
  }

  /** Counts a write pair's read-back: done in both universes, or nothing to read back. */
  recordReadBack(endpoint: string, done: boolean): void {
    const e = this.endpoint(endpoint);
    if (done) e.readBacks++; else e.readBackSkipped++;
  }

  private recordLatency(r: LatencyReservoir, uoldMs: number, unewMs: number): void {
    if (!Number.isFinite(uoldMs) || !Number.isFinite(unewMs)) return;
    r.seen++;
    if (r.uold.length < LATENCY_RESERVOIR) { r.uold.push(uoldMs); r.unew.push(unewMs); return; }
    const j = Math.floor(Math.random() * r.seen);
    if (j < LATENCY_RESERVOIR) { r.uold[j] = uoldMs; r.unew[j] = unewMs; }
  }

  /** One Uold-vs-Uold sample. */
  recordNoise(endpoint: string, diffs: Difference[]): void {
    const e = this.endpoint(endpoint);
    e.noiseSamples++;
    for (const d of diffs) this.field(e, d.field).noiseDifferences++;
  }

  recordRecheck(endpoint: string, skipped: boolean): void {
    const e = this.endpoint(endpoint);
    if (skipped) e.recheckSkipped++; else e.rechecks++;
  }

  /**
   * Diffy's rule: a field that differs between two Uold replies about as often
   * as between Uold and Unew is noise. "About as often" = at least `ratio` of
   * the Uold-vs-Unew rate, over at least `minSamples` Uold-vs-Uold samples.
   */
  isNoise(e: EndpointTally, f: FieldTally): boolean {
    const { minSamples, ratio } = this.rules.noise;
    if (e.noiseSamples < minSamples || f.noiseDifferences === 0) return false;
    const noiseRate = f.noiseDifferences / e.noiseSamples;
    const diffRate = e.samples ? f.differences / e.samples : 0;
    return noiseRate >= ratio * diffRate;
  }

  isNoiseField(endpoint: string, field: string): boolean {
    const e = this.endpoints.get(endpoint);
    const f = e?.fields.get(field);
    return !!(e && f && this.isNoise(e, f));
  }

  /** Pairs of the endpoint with at least one difference that is not noise. */
  regressedPairs(e: EndpointTally): number {
    const noise = new Set([...e.fields.values()].filter((f) => this.isNoise(e, f)).map((f) => f.field));
    let n = 0;
    for (const [sig, count] of e.signatures) {
      if (sig === OVERFLOW_SIGNATURE || sig.split('\n').some((name) => !noise.has(name))) n += count;
    }
    return n;
  }

  private example(pair: MirroredPair, diffs: Difference[], judged: Example['judged']): Example {
    return {
      at: pair.at,
      request: { method: pair.request.method, url: pair.request.url.slice(0, 512) },
      uold: this.replyExample(pair.primary),
      unew: this.replyExample(pair.shadow),
      diff: diffs.slice(0, MAX_DIFFS_IN_EXAMPLE),
      judged,
    };
  }

  private replyExample(r: CapturedReply): ReplyExample {
    const max = this.rules.limits.exampleBodyBytes;
    const ct = r.headers['content-type'];
    const body = r.body ?? Buffer.alloc(0);
    // Why: copy into a new string so the example does not pin the pair's whole Buffer in memory.
    const text = body.subarray(0, max).toString('utf8') + (body.length > max ? `… (${body.length} bytes)` : '');
    const out: ReplyExample = { status: r.status, body: text };
    if (ct !== undefined) out.contentType = Array.isArray(ct) ? ct.join(', ') : ct;
    if (r.error) out.error = r.error;
    return out;
  }
}
