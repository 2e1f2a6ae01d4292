/**
 * A typed client for one interceptor's control API (global fetch). Errors come
 * from the registry: INGRESS_UNAUTHORIZED (401), the code the interceptor sent
 * for a 400 (INGRESS_BAD_TRANSITION, INGRESS_BAD_REQUEST), INGRESS_UNREACHABLE
 * when it does not answer in time.
 */
import { ERRORS, imagoError, type ErrorCode } from '../../lib/errors';
import type {
  CompareReply, DrainedReply, HoldReply, IngressStatus, MirrorReply, MirrorRequest, RecordedReply, ReleaseReply, ServedRecord, ServedReply,
  TargetReply, TimelineReply, UpstreamsReply,
} from './api';

export type { DrainedReply, IngressStatus, MirrorRequest, ServedRecord } from './api';

export class IngressControlClient {
  readonly baseUrl: string;

  constructor(baseUrl: string, private readonly token: string, private readonly timeoutMs = 10_000) {
    this.baseUrl = baseUrl.replace(/\/$/, '');
  }

  private async call<T>(method: 'GET' | 'POST', path: string, body?: unknown, timeoutMs = this.timeoutMs): Promise<T> {
    let res: Response;
    try {
      res = await fetch(this.baseUrl + path, {
        method,
        headers: { authorization: `Bearer ${this.token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(timeoutMs),
      });
    } catch (e) {
      throw imagoError('INGRESS_UNREACHABLE', `${method} ${this.baseUrl}${path}: ${(e as Error).message}`, e);
    }
    const text = await res.text().catch(() => '');
    if (res.status === 401) throw imagoError('INGRESS_UNAUTHORIZED', `${method} ${this.baseUrl}${path}`);
    if (res.status !== 200) {
      let code: ErrorCode = res.status >= 500 ? 'INGRESS_UNREACHABLE' : 'INGRESS_BAD_REQUEST';
      let message = text;
      try {
        const j = JSON.parse(text) as { error?: string; message?: string };
        if (j.error && j.error in ERRORS && res.status < 500) code = j.error as ErrorCode;
        message = j.message ?? text;
      } catch { /* not JSON: keep the text */ }
      throw imagoError(code, `${method} ${this.baseUrl}${path} → ${res.status}: ${message}`);
    }
    return (path === '/metrics' ? text : JSON.parse(text)) as T;
  }

  status(): Promise<IngressStatus> { return this.call('GET', '/status'); }
  metrics(): Promise<string> { return this.call('GET', '/metrics'); }
  addUpstream(name: string, url: string): Promise<UpstreamsReply> { return this.call('POST', '/upstreams', { name, url }); }
  mirror(req: MirrorRequest): Promise<MirrorReply> { return this.call('POST', '/mirror', req); }
  compare(): Promise<CompareReply> { return this.call('GET', '/compare'); }
  /** The comparer's latest live requests, reads and writes apart (what the load test replays). */
  recorded(limit = 2000): Promise<RecordedReply> { return this.call('GET', `/recorded?limit=${limit}`); }
  hold(timeoutMs?: number): Promise<HoldReply> {
    return this.call('POST', '/hold', timeoutMs === undefined ? {} : { timeoutMs });
  }
  /** Waits up to waitMs (≤ 60 000) on the interceptor for in-flight requests to end. */
  drained(waitMs = 0): Promise<DrainedReply> { return this.call('GET', `/drained?waitMs=${waitMs}`, undefined, waitMs + this.timeoutMs); }
  switch(target: string): Promise<TargetReply> { return this.call('POST', '/switch', { target }); }
  /** Decides the switch under the current hold: its hard timeout then releases forward (see switcher.ts). */
  commit(): Promise<TargetReply> { return this.call('POST', '/commit', {}); }
  release(): Promise<ReleaseReply> { return this.call('POST', '/release', {}); }
  served(since = 0, limit?: number): Promise<ServedReply> {
    return this.call('GET', `/served?since=${since}${limit ? `&limit=${limit}` : ''}`);
  }
  /** Every served record since `since`, following pages. */
  async servedAll(since = 0): Promise<ServedRecord[]> {
    const all: ServedRecord[] = [];
    for (;;) {
      const page = await this.served(since);
      all.push(...page.records);
      if (!page.records.length || page.next === since) return all;
      since = page.next;
    }
  }
  timeline(sinceMs = 0): Promise<TimelineReply> {
    return this.call('GET', `/timeline?since=${sinceMs}`);
  }
}

/**
 * The atomicity evidence read from served records: how many requests each
 * version served, and how many Uold served after Unew's first (must be 0).
 */
export function atomicityOf(records: ServedRecord[], oldName = 'uold', newName = 'unew'): { uold: number; unew: number; violations: number } {
  const firstNew = Math.min(...records.filter((r) => r.upstream === newName).map((r) => r.start));
  return {
    uold: records.filter((r) => r.upstream === oldName).length,
    unew: records.filter((r) => r.upstream === newName).length,
    violations: records.filter((r) => r.upstream === oldName && r.start >= firstNew).length,
  };
}
