/**
 * Workload generator: a RUBiS-like client emulator against one base URL.
 * Open loop (`rate` requests/s, whatever the latency) or closed loop
 * (`clients` each waiting for its reply, then `thinkMs`). Bounded by
 * `durationMs` and `maxRequests`, ended early by `signal` or stop().
 * Every acknowledged write is recorded in the ledger exactly as the reply gave
 * it; a failed request is counted, never retried.
 *
 *   npx tsx examples/auction/workload/generator.ts --url http://127.0.0.1:8080 --mix bidding --rate 200 \
 *     --duration 10000 --users 1-1000 --items 1-5000 --ledger ledger.json --timeline timeline.json
 */
import * as fs from 'node:fs';
import * as http from 'node:http';
import { parseArgs } from 'node:util';
import Ajv from 'ajv';
import { auctionError } from '../errors';
import { rng } from '../data';
import { learn, nextOp, type LedgerEntry, type MixName, type MixState, type Op } from './mix';
import { LatencyRecorder, type LatencySummary, type TimelineBucket } from './stats';

export type { LedgerEntry } from './mix';
export type { TimelineBucket, LatencySummary } from './stats';

export interface WorkloadOptions {
  baseUrl: string;
  mix: MixName;
  /** Open loop: requests per second. */
  rate?: number;
  /** Closed loop: concurrent clients (default 8 when no rate is given). */
  clients?: number;
  thinkMs?: number;
  durationMs: number;
  maxRequests?: number;
  seed?: number;
  users: [number, number];
  items: [number, number];
  /** Per-request timeout (default 10 s); a timeout counts as an error. */
  timeoutMs?: number;
  /** Open loop: most requests outstanding at once; beyond it a request is counted as 'overload' and not sent (default 512). */
  maxInFlight?: number;
  signal?: AbortSignal;
  /** Called with each failed request as it is seen (errors and overload), e.g. to list them with their time. */
  onFailure?: (f: FailedRequest) => void;
}

/** One failed request, as the generator saw it. */
export interface FailedRequest {
  /** Wall-clock ms when the request left (for 'overload': when it was due). */
  at: number;
  /** Until the failure was seen (0 for 'overload': never sent). */
  latencyMs: number;
  endpoint: string;
  method: string;
  path: string;
  /**
   * 'overload': not sent, the generator's own limit of outstanding requests was reached (the generator, not
   * the site, is the cause); an HTTP status ('502', '404'); or a network error ('ECONNRESET', 'timeout', 'reply-cut').
   */
  kind: string;
}

export interface WorkloadResult {
  requests: number;
  /** Network failures, timeouts, 5xx, and 4xx other than 409 (the generator only sends well-formed requests). */
  errors: number;
  /** 409s: a bid not above the max, sold out, ... (expected business outcomes). */
  rejected: number;
  byStatus: Record<string, number>;
  elapsedMs: number;
  throughput: number;
  latencies: LatencySummary & { byEndpoint: Record<string, LatencySummary> };
  ledger: LedgerEntry[];
  timeline: TimelineBucket[];
}

const range = { type: 'array', items: { type: 'integer', minimum: 1 }, minItems: 2, maxItems: 2 };
const validate = new Ajv({ allErrors: true }).compile({
  type: 'object', additionalProperties: false, required: ['baseUrl', 'mix', 'durationMs', 'users', 'items'],
  properties: {
    baseUrl: { type: 'string', pattern: '^https?://' }, mix: { enum: ['browsing', 'bidding', 'bidding-indexed'] },
    rate: { type: 'number', exclusiveMinimum: 0, maximum: 100_000 }, clients: { type: 'integer', minimum: 1, maximum: 1000 },
    thinkMs: { type: 'number', minimum: 0 }, durationMs: { type: 'number', exclusiveMinimum: 0, maximum: 6 * 3_600_000 },
    maxRequests: { type: 'integer', minimum: 1 }, seed: { type: 'integer' }, users: range, items: range,
    timeoutMs: { type: 'integer', minimum: 1 }, maxInFlight: { type: 'integer', minimum: 1 },
  },
});

export function validateWorkloadOptions(opts: WorkloadOptions): void {
  const { signal: _signal, onFailure: _onFailure, ...rest } = opts;
  const problems = validate(rest) ? [] : (validate.errors ?? []).map((e) => `${e.instancePath || '/'} ${e.message}`);
  if (opts.rate !== undefined && (opts.clients !== undefined || opts.thinkMs !== undefined)) problems.push('give either rate (open loop) or clients/thinkMs (closed loop), not both');
  for (const k of ['users', 'items'] as const) if (Array.isArray(opts[k]) && opts[k][0] > opts[k][1]) problems.push(`/${k} must be [low, high]`);
  if (problems.length) throw auctionError('AUCTION_WORKLOAD_INVALID', problems.join('; '));
}

/** Starts a run; `done` resolves with the result, stop() ends it early (in-flight requests still complete and count). */
export function startWorkload(opts: WorkloadOptions): { done: Promise<WorkloadResult>; stop(): void } {
  validateWorkloadOptions(opts);
  const ctl = new AbortController();
  opts.signal?.addEventListener('abort', () => ctl.abort(), { once: true });
  return { done: execute(opts, ctl.signal), stop: () => ctl.abort() };
}

export function runWorkload(opts: WorkloadOptions): Promise<WorkloadResult> { return startWorkload(opts).done; }

async function execute(opts: WorkloadOptions, signal: AbortSignal): Promise<WorkloadResult> {
  const base = new URL(opts.baseUrl);
  const seed = opts.seed ?? 1;
  // timeout: Node's agent then honours the server's `Keep-Alive: timeout=N` hint and drops an idle socket a second
  // before the server would close it (without an agent timeout it ignores the hint); otherwise a request sent on a
  // socket the server is closing at that instant fails with ECONNRESET, a failure of this client, not of the site.
  const agent = new http.Agent({ keepAlive: true, maxSockets: opts.rate ? 256 : (opts.clients ?? 8), timeout: opts.timeoutMs ?? 10_000 });
  const t0 = Date.now();
  const rec = new LatencyRecorder(t0);
  const byStatus: Record<string, number> = {};
  const ledger: LedgerEntry[] = [];
  let requests = 0, errors = 0, rejected = 0, inflight = 0;
  const endAt = t0 + opts.durationMs;
  const budgetLeft = () => opts.maxRequests === undefined || requests < opts.maxRequests;
  const running = () => !signal.aborted && Date.now() < endAt && budgetLeft();
  const runTag = `${seed.toString(36)}${t0.toString(36)}`;
  const state = (i: number): MixState => ({ rand: rng(seed * 1000 + i), users: opts.users, items: opts.items, knownMax: new Map(), buyNowItems: [], runTag: `${runTag}c${i}`, counter: 0 });

  const issue = async (s: MixState): Promise<void> => {
    const op = nextOp(opts.mix, s);
    requests++;
    inflight++;
    const started = Date.now();
    const r = await send(agent, base, op, opts.timeoutMs ?? 10_000);
    inflight--;
    const latency = Date.now() - started;
    const key = r.status === 0 ? r.error ?? 'network' : String(r.status);
    byStatus[key] = (byStatus[key] ?? 0) + 1;
    const isError = r.status === 0 || r.status >= 500 || (r.status >= 400 && r.status !== 409);
    if (isError) {
      errors++;
      opts.onFailure?.({ at: started, latencyMs: latency, endpoint: op.endpoint, method: op.method, path: op.path, kind: key });
    }
    if (r.status === 409) rejected++;
    rec.record(op.endpoint, started, latency, isError);
    if (op.ack && r.status === 201 && r.body) ledger.push(op.ack(r.body, Date.now()));
    learn(s, op, r.status, r.body);
  };

  const sleep = (ms: number) => new Promise<void>((resolve) => {
    if (signal.aborted || ms <= 0) { resolve(); return; }
    const t = setTimeout(done, ms);
    function done() { clearTimeout(t); signal.removeEventListener('abort', done); resolve(); }
    signal.addEventListener('abort', done, { once: true });
  });

  if (opts.rate) {
    // Open loop: requests leave on schedule whatever the latency, so a pause
    // in the server shows up as latency and backlog, not as fewer requests.
    const s = state(0);
    const pending = new Set<Promise<void>>();
    const maxInFlight = opts.maxInFlight ?? 512;
    let sent = 0;
    while (running()) {
      const due = Math.floor(((Date.now() - t0) / 1000) * opts.rate) + 1;
      while (sent < due && running()) {
        sent++;
        if (inflight >= maxInFlight) {
          requests++; errors++; byStatus.overload = (byStatus.overload ?? 0) + 1;
          opts.onFailure?.({ at: Date.now(), latencyMs: 0, endpoint: '-', method: '-', path: '-', kind: 'overload' });
          continue;
        }
        const p = issue(s).finally(() => pending.delete(p));
        pending.add(p);
      }
      await sleep(Math.max(1, Math.min(10, 1000 / opts.rate)));
    }
    await Promise.all(pending);
  } else {
    const clients = opts.clients ?? 8;
    await Promise.all(Array.from({ length: clients }, async (_, i) => {
      const s = state(i + 1);
      while (running()) {
        await issue(s);
        if (opts.thinkMs) await sleep(opts.thinkMs * (0.5 + s.rand()));
      }
    }));
  }
  agent.destroy();
  const elapsedMs = Date.now() - t0;
  return {
    requests, errors, rejected, byStatus, elapsedMs, throughput: Math.round((requests / (elapsedMs / 1000)) * 10) / 10,
    latencies: { ...rec.overall(), byEndpoint: rec.perEndpoint() }, ledger, timeline: rec.timeline(),
  };
}

function send(agent: http.Agent, base: URL, op: Op, timeoutMs: number): Promise<{ status: number; body?: any; error?: string }> {
  return new Promise((resolve) => {
    const payload = op.body ? JSON.stringify(op.body) : undefined;
    const req = http.request({
      host: base.hostname, port: base.port, method: op.method, path: op.path, agent, timeout: timeoutMs,
      headers: payload ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } : {},
    }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { text += d; });
      res.on('error', () => resolve({ status: 0, error: 'reply-cut' }));
      res.on('end', () => {
        let body: any;
        try { body = text ? JSON.parse(text) : undefined; } catch { body = undefined; }
        resolve({ status: res.statusCode ?? 0, body });
      });
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (e) => resolve({ status: 0, error: e.message === 'timeout' ? 'timeout' : (e as NodeJS.ErrnoException).code ?? 'network' }));
    req.end(payload);
  });
}

if (require.main === module) {
  const { values } = parseArgs({
    options: {
      url: { type: 'string' }, mix: { type: 'string', default: 'bidding' }, rate: { type: 'string' }, clients: { type: 'string' },
      think: { type: 'string' }, duration: { type: 'string', default: '10000' }, max: { type: 'string' }, seed: { type: 'string', default: '1' },
      users: { type: 'string', default: '1-1000' }, items: { type: 'string', default: '1-5000' }, ledger: { type: 'string' }, timeline: { type: 'string' },
    },
  });
  const pair = (s: string) => s.split('-').map(Number) as [number, number];
  const num = (s?: string) => (s === undefined ? undefined : Number(s));
  const w = startWorkload({
    baseUrl: values.url ?? '', mix: values.mix as MixName, rate: num(values.rate), clients: num(values.clients),
    thinkMs: num(values.think), durationMs: Number(values.duration), maxRequests: num(values.max), seed: Number(values.seed),
    users: pair(values.users!), items: pair(values.items!),
  });
  process.once('SIGINT', () => w.stop());
  w.done.then((r) => {
    if (values.ledger) fs.writeFileSync(values.ledger, JSON.stringify(r.ledger, null, 1));
    if (values.timeline) fs.writeFileSync(values.timeline, JSON.stringify(r.timeline, null, 1));
    const { ledger: _l, timeline: _t, ...summary } = r;
    console.log(JSON.stringify({ ...summary, ledgerEntries: r.ledger.length }, null, 2));
    process.exit(r.errors > 0 ? 1 : 0);
  }, (e) => { console.error(e.message); process.exit(2); });
}
