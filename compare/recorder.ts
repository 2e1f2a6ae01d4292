/**
 * The recorder: the recent live requests the compare engine saw, bounded.
 * Two views of them: per endpoint, the latest safe requests (what active
 * sampling replays for an endpoint short of samples); and the latest
 * requests of every kind in arrival order, reads and writes apart (what the
 * load test replays, in the live mix). Nothing else is kept: no reply.
 */
import type { CapturedRequest, RecordedRequest } from './types';

/** Requests kept for the load test, and the bytes of their bodies at most. */
const MAX_RECENT = 2000;
const MAX_BODY_BYTES_TOTAL = 8 * 1024 * 1024;
/** A body larger than this is not kept (the request is not recorded). */
const MAX_BODY_BYTES = 64 * 1024;

/** Headers a replay must not carry over: they belong to the original connection or identify the original client's replay. */
const NOT_RECORDED = new Set(['connection', 'keep-alive', 'transfer-encoding', 'content-length', 'host', 'x-imago-shadow', 'x-imago-replay', 'x-forwarded-for', 'x-forwarded-proto', 'expect', 'te', 'trailer', 'upgrade']);

export class Recorder {
  private readonly perEndpoint = new Map<string, { list: CapturedRequest[]; next: number }>();
  private readonly reads: RecordedRequest[] = [];
  private readonly writes: RecordedRequest[] = [];
  private bodyBytes = 0;

  constructor(private readonly opts: { recentPerEndpoint: number; maxEndpoints: number }) {}

  /** One live request (not a replay), with the endpoint the engine named it. */
  record(endpoint: string, req: CapturedRequest, write: boolean, at: number): void {
    const body = req.body?.length ? req.body : undefined;
    if (body && body.length > MAX_BODY_BYTES) return;
    if (!write) this.keepForSampling(endpoint, req);
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(req.headers)) {
      if (v === undefined || NOT_RECORDED.has(k.toLowerCase())) continue;
      headers[k] = Array.isArray(v) ? v.join(', ') : String(v);
    }
    const rec: RecordedRequest = { method: req.method, url: req.url, headers, endpoint, write, at, ...(body ? { bodyBase64: body.toString('base64') } : {}) };
    const list = write ? this.writes : this.reads;
    list.push(rec);
    this.bodyBytes += body?.length ?? 0;
    // Both lists together stay within MAX_RECENT requests and the body budget: the oldest go first.
    while (this.reads.length + this.writes.length > MAX_RECENT || this.bodyBytes > MAX_BODY_BYTES_TOTAL) {
      const from = this.writes.length && (!this.reads.length || this.writes[0].at <= this.reads[0].at) ? this.writes : this.reads;
      const gone = from.shift();
      this.bodyBytes -= gone?.bodyBase64 ? Buffer.byteLength(gone.bodyBase64, 'base64') : 0;
    }
  }

  private keepForSampling(endpoint: string, req: CapturedRequest): void {
    let e = this.perEndpoint.get(endpoint);
    if (!e) {
      if (this.perEndpoint.size >= this.opts.maxEndpoints) return;
      e = { list: [], next: 0 };
      this.perEndpoint.set(endpoint, e);
    }
    // Only what a replay needs: no body (safe requests carry none), the headers as sent.
    e.list.push({ method: req.method, url: req.url, headers: { ...req.headers } });
    if (e.list.length > this.opts.recentPerEndpoint) e.list.shift();
  }

  /** Endpoints with at least one recorded safe request. */
  endpoints(): string[] {
    return [...this.perEndpoint.keys()];
  }

  /** The endpoint's recorded safe requests, in turn (the latest first, then older ones). */
  nextFor(endpoint: string): CapturedRequest | undefined {
    const e = this.perEndpoint.get(endpoint);
    if (!e || !e.list.length) return undefined;
    const req = e.list[e.list.length - 1 - (e.next % e.list.length)];
    e.next += 1;
    return req;
  }

  /** The latest recorded requests, reads and writes, oldest first (at most `limit` of each). */
  recent(limit = MAX_RECENT): { reads: RecordedRequest[]; writes: RecordedRequest[] } {
    return { reads: this.reads.slice(-limit), writes: this.writes.slice(-limit) };
  }
}
