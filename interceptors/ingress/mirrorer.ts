/**
 * The mirrorer: sends a copy of safe requests to a shadow upstream and hands
 * (request, primary reply, shadow reply) to the comparer.
 *
 * The client never waits for the shadow: the copy is sent on the next turn of
 * the event loop over its own connection pool, its replies are read only into
 * memory for the comparer, and at most `shadowQueueSize` copies are
 * outstanding — more are dropped and counted, never queued behind the client.
 */
import * as http from 'node:http';
import type { CapturedReply, CapturedRequest, Comparer, MirroredPair } from '../../compare/types';
import { imagoError } from '../../lib/errors';
import { forwardHeaders, type Upstream } from './forwarder';
import type { ComparerFactory } from './options';
import { nowMs, type Recorder } from './recorder';

export interface MirrorConfig { on: boolean; shadow?: string; percent?: number; methods?: string[]; compare?: unknown }

const SHADOW_TIMEOUT_MS = 10_000;

type AnyComparer = Comparer & { report?(): unknown; verdict?(): unknown };

export interface MirrorTicket {
  /** Called by the forwarder with the reply the client got. */
  onPrimary(reply: CapturedReply): void;
}

export class Mirrorer {
  on = false;
  shadow: Upstream | undefined;
  percent = 100;
  methods = new Set(['GET', 'HEAD']);
  comparer: AnyComparer | undefined;
  private compareKey: string | undefined;
  private outstanding = 0;
  private credit = 0;
  private nextPairId = 1;
  pairs = 0;

  constructor(private readonly recorder: Recorder, private readonly queueSize: number, private readonly captureBytes: number, private readonly factory?: ComparerFactory) {}

  configure(cfg: MirrorConfig, upstreams: Map<string, Upstream>, target: Upstream): { changed: boolean } {
    if (!cfg.on) { const changed = this.on; this.on = false; return { changed } }
    const shadow = cfg.shadow === undefined ? this.shadow : upstreams.get(cfg.shadow);
    if (!shadow) throw imagoError('INGRESS_BAD_TRANSITION', `mirror needs a registered shadow upstream (got ${JSON.stringify(cfg.shadow)}; known: ${[...upstreams.keys()].join(', ')})`);
    if (shadow === target) throw imagoError('INGRESS_BAD_TRANSITION', `the shadow '${shadow.name}' is the current target; mirror to another upstream`);
    if (cfg.compare !== undefined || !this.comparer) {
      const key = JSON.stringify(cfg.compare ?? {});
      // A retried call with the same rules keeps the comparer and its report.
      if (this.factory && key !== this.compareKey) { this.comparer = this.factory(cfg.compare ?? {}); this.compareKey = key; }
    }
    const before = JSON.stringify([this.on, this.shadow?.name, this.percent, [...this.methods]]);
    this.on = true;
    this.shadow = shadow;
    if (cfg.percent !== undefined) this.percent = cfg.percent;
    if (cfg.methods !== undefined) this.methods = new Set(cfg.methods.map((m) => m.toUpperCase()));
    return { changed: before !== JSON.stringify([this.on, this.shadow?.name, this.percent, [...this.methods]]) };
  }

  /** Stops mirroring to an upstream that has become the target. */
  onTargetChanged(target: Upstream): void { if (this.shadow === target) this.on = false; }

  /** Decides for one request; returns a ticket when it is mirrored. */
  select(req: http.IncomingMessage, arrived: number): MirrorTicket | undefined {
    if (!this.on || !this.shadow || !this.methods.has(req.method ?? '')) return undefined;
    // Requests with a body are not mirrored: the copy would need the body
    // buffered before the client's request can stream on.
    if (req.headers['transfer-encoding'] || (req.headers['content-length'] && req.headers['content-length'] !== '0')) return undefined;
    // Deterministic sampling: exactly `percent` of eligible requests.
    this.credit += this.percent;
    if (this.credit < 100) return undefined;
    this.credit -= 100;
    if (this.outstanding >= this.queueSize) { this.recorder.count('shadowDropped'); return undefined; }
    this.outstanding += 1;
    this.recorder.count('mirrored');
    const request: CapturedRequest = { method: req.method!, url: req.url!, headers: { ...req.headers } };
    const headers = forwardHeaders(req);
    headers['x-imago-shadow'] = '1';
    let primary: CapturedReply | undefined;
    let shadowReply: CapturedReply | undefined;
    const pairId = this.nextPairId++;
    const deliver = (): void => {
      if (!primary || !shadowReply) return;
      this.outstanding -= 1;
      this.pairs += 1;
      const pair: MirroredPair = { id: pairId, at: arrived, request, primary, shadow: shadowReply };
      try { this.comparer?.onPair(pair); } catch { this.recorder.count('comparerErrors'); }
    };
    const shadow = this.shadow;
    setImmediate(() => this.send(shadow, req.method!, req.url!, headers, (r) => { shadowReply = r; deliver(); }));
    return { onPrimary: (r) => { primary = r; deliver(); } };
  }

  private send(up: Upstream, method: string, path: string, headers: http.OutgoingHttpHeaders, done: (r: CapturedReply) => void, retry = true): void {
    const start = nowMs();
    let settled = false;
    const settle = (r: Omit<CapturedReply, 'latencyMs'>): void => {
      if (settled) return;
      settled = true;
      if (r.error) this.recorder.count('shadowErrors');
      done({ ...r, latencyMs: nowMs() - start });
    };
    let answered = false;
    const req = http.request({ host: up.host, port: up.port, method, path, headers, agent: retry ? up.agent : false, timeout: SHADOW_TIMEOUT_MS });
    req.on('timeout', () => req.destroy(new Error(`shadow timeout after ${SHADOW_TIMEOUT_MS} ms`)));
    req.on('error', (e) => {
      // A pooled socket the upstream closed as we reused it: not Unew's failure. Mirrored
      // methods are safe, so send once more on a fresh connection; the verdict counts
      // a Unew that does not answer as a server error, and must not for this race.
      if (retry && !answered && req.reusedSocket) { settled = true; this.send(up, method, path, headers, done, false); return; }
      settle({ status: 0, headers: {}, body: Buffer.alloc(0), error: e.message });
    });
    req.on('response', (res) => {
      answered = true;
      const chunks: Buffer[] = [];
      let size = 0;
      let truncated = false;
      res.on('data', (c: Buffer) => {
        if (truncated) return;
        size += c.length;
        if (size > this.captureBytes) { truncated = true; chunks.length = 0; } else chunks.push(c);
      });
      res.on('end', () => settle({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks), ...(truncated ? { error: 'reply larger than the capture limit' } : {}) }));
      res.on('error', (e) => settle({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks), error: e.message }));
      res.on('aborted', () => settle({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks), error: 'shadow reply cut' }));
    });
    req.end();
  }

  status(): Record<string, unknown> {
    return { on: this.on, shadow: this.shadow?.name ?? null, percent: this.percent, methods: [...this.methods], outstanding: this.outstanding, pairs: this.pairs, comparer: !!this.comparer };
  }
}
