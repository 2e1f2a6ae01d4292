/**
 * The comparer: the engine the ingress interceptor feeds. onPair only queues
 * (bounded, drops counted); a pump compares queued pairs in short slices of
 * the event loop, samples Uold-vs-Uold replays for noise, and hands
 * suspicious differences to the lag checker before they are tallied.
 */
import type { Comparer, MirroredPair } from './types';
import { checkCompareRules, type CompareRules, type CompareRulesInput } from './rules';
import { Normaliser, isSafeMethod, type NormalisedReply } from './normaliser';
import { Differ, type Difference } from './differ';
import { Tally } from './tally';
import { Replayer } from './replayer';
import { LagChecker, positionReached, type PositionHook } from './lag-checker';
import { buildReport, buildVerdict, type CompareReport, type CompareVerdict, type EngineCounters } from './report';
import { Recorder } from './recorder';
import { ActiveSampler } from './sampler';
import { WriteJudge } from './writes';
import type { RecordedRequest } from './types';
import { imagoError } from '../lib/errors';

export interface CompareConfig extends CompareRulesInput {
  /** Base URL of Uold (noise replays and lag rechecks go there). */
  uoldUrl: string;
  /** Base URL of Unew (lag rechecks, active sampling). */
  unewUrl: string;
  /** Base URL of the sandbox that mirrored writes go to (read-backs); none: writes are not read back. */
  sandboxUrl?: string;
  /** Optional replication positions: rechecks wait until Unew has applied Uold's read position. */
  positions?: PositionHook;
  /** The compare window's generation: the interceptor keeps its comparer for an identical config, so a new epoch starts a fresh one. */
  epoch?: number;
}

export interface CompareEngine extends Comparer {
  report(): CompareReport;
  verdict(): CompareVerdict;
  /** Resolves when every queued pair, noise replay and recheck is done (or after timeoutMs). */
  drain(timeoutMs?: number): Promise<void>;
  /** The latest live requests, reads and writes apart, oldest first (what the load test replays). */
  recorded(limit?: number): { reads: RecordedRequest[]; writes: RecordedRequest[] };
  close(): Promise<void>;
}

/** Longest slice of the event loop one pump run may take: the interceptor shares the loop with live traffic. */
const SLICE_MS = 8;

function validateConfig(config: CompareConfig): { rules: Readonly<CompareRules>; uoldUrl: string; unewUrl: string; sandboxUrl?: string; positions?: PositionHook } {
  const { uoldUrl, unewUrl, sandboxUrl, positions, epoch: _epoch, ...rest } = (config ?? {}) as CompareConfig;
  const { rules, errors } = checkCompareRules(rest);
  for (const [name, url] of [['uoldUrl', uoldUrl], ['unewUrl', unewUrl], ...(sandboxUrl !== undefined ? [['sandboxUrl', sandboxUrl]] : [])] as const) {
    if (typeof url !== 'string' || !/^https?:\/\/[^/]/.test(url)) errors.push(`compare/${name}: must be an http(s) URL, got ${JSON.stringify(url)}`);
  }
  // Why: read-backs of mirrored writes go to sandboxUrl; Unew must never be it (writes must never reach Unew).
  if (sandboxUrl !== undefined && sandboxUrl.replace(/\/$/, '') === String(unewUrl).replace(/\/$/, '')) errors.push('compare/sandboxUrl: must not be Unew (mirrored writes go to a sandbox, never into Unew)');
  if (positions !== undefined && (typeof positions?.uold !== 'function' || typeof positions?.unewApplied !== 'function')) {
    errors.push('compare/positions: must have functions uold() and unewApplied()');
  }
  if (errors.length || !rules) throw imagoError('COMPARE_RULES_INVALID', errors.join('; '));
  return { rules, uoldUrl, unewUrl, sandboxUrl, positions };
}

export class CompareEngineImpl implements CompareEngine {
  private readonly rules: Readonly<CompareRules>;
  private readonly normaliser: Normaliser;
  private readonly differ = new Differ();
  private readonly tally: Tally;
  private readonly uold: Replayer;
  private readonly unew: Replayer;
  /** Noise replays get their own connections so lag rechecks cannot starve them. */
  private readonly uoldNoise: Replayer;
  private readonly lag: LagChecker;
  private readonly positions?: PositionHook;
  private readonly recorder: Recorder;
  private readonly sampler: ActiveSampler;
  private readonly writes: WriteJudge;
  /** Active sampling's own connections, so its replays never wait behind rechecks or noise. */
  private readonly sampleUold: Replayer;
  private readonly sampleUnew: Replayer;
  private readonly sandbox?: Replayer;
  private queue: MirroredPair[] = [];
  private head = 0;
  private scheduled = false;
  private closed = false;
  private rechecking = 0;
  private replaying = 0;
  private readonly idleWaiters = new Set<() => void>();
  private readonly counters: EngineCounters = { received: 0, compared: 0, dropped: 0, skipped: 0, pending: 0, noiseSamples: 0, noiseSkipped: 0 };

  constructor(config: CompareConfig) {
    const v = validateConfig(config);
    this.rules = v.rules;
    this.positions = v.positions;
    this.normaliser = new Normaliser(v.rules);
    this.tally = new Tally(v.rules);
    const l = v.rules.limits;
    const replayOpts = { timeoutMs: l.requestTimeoutMs, maxBodyBytes: l.maxBodyBytes, maxConcurrent: l.maxConcurrentRequests };
    this.uold = new Replayer(v.uoldUrl, replayOpts);
    this.unew = new Replayer(v.unewUrl, replayOpts);
    this.uoldNoise = new Replayer(v.uoldUrl, replayOpts);
    this.lag = new LagChecker(this.uold, this.unew, (a, b) => this.differ.diff(this.normaliser.normalise(a), this.normaliser.normalise(b)), {
      attempts: v.rules.lag.attempts, delayMs: v.rules.lag.recheckDelayMs, positionTimeoutMs: v.rules.lag.positionTimeoutMs, positions: v.positions,
    });
    const sampleOpts = { ...replayOpts, maxConcurrent: Math.min(2, l.maxConcurrentRequests) };
    this.sampleUold = new Replayer(v.uoldUrl, sampleOpts);
    this.sampleUnew = new Replayer(v.unewUrl, sampleOpts);
    if (v.sandboxUrl) this.sandbox = new Replayer(v.sandboxUrl, replayOpts);
    this.recorder = new Recorder({ recentPerEndpoint: v.rules.activeSampling.recentPerEndpoint, maxEndpoints: l.maxEndpoints });
    this.writes = new WriteJudge(v.rules, this.normaliser, this.differ, this.uold, this.sandbox);
    this.sampler = new ActiveSampler(v.rules, this.recorder, this.sampleUold, this.sampleUnew, (e) => this.tally.endpoints.get(e)?.samples ?? 0, (p) => this.onPair(p));
    this.sampler.start();
  }

  recorded(limit?: number): { reads: RecordedRequest[]; writes: RecordedRequest[] } {
    return this.recorder.recent(limit);
  }

  onPair(pair: MirroredPair): void {
    this.counters.received++;
    // Why: the interceptor calls this on its request path; never block or grow
    // without bound — a full queue drops the pair and counts it.
    if (this.closed || this.queue.length - this.head >= this.rules.limits.queueSize) { this.counters.dropped++; return; }
    this.queue.push(pair);
    this.schedule();
  }

  report(): CompareReport {
    return buildReport(this.tally, this.rules, { ...this.counters, pending: this.pending() }, { activeSampling: { replayed: this.sampler.replayed, skipped: this.sampler.skipped } });
  }

  verdict(): CompareVerdict {
    return buildVerdict(this.report());
  }

  drain(timeoutMs = 60000): Promise<void> {
    if (this.pending() === 0 && this.replaying === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => { clearTimeout(t); this.idleWaiters.delete(done); resolve(); };
      const t = setTimeout(done, timeoutMs);
      this.idleWaiters.add(done);
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    this.counters.dropped += this.queue.length - this.head;
    this.queue = []; this.head = 0;
    this.sampler.stop();
    this.uold.close(); this.unew.close(); this.uoldNoise.close(); this.sampleUold.close(); this.sampleUnew.close(); this.sandbox?.close();
    for (const w of [...this.idleWaiters]) w();
  }

  private pending(): number {
    return this.queue.length - this.head + this.rechecking;
  }

  private schedule(): void {
    if (this.scheduled || this.closed) return;
    this.scheduled = true;
    setImmediate(() => this.pump());
  }

  private pump(): void {
    this.scheduled = false;
    const deadline = performance.now() + SLICE_MS;
    while (this.head < this.queue.length && !this.closed) {
      const pair = this.queue[this.head];
      this.queue[this.head++] = undefined as unknown as MirroredPair;
      try { this.handle(pair); } catch (e) { this.counters.skipped++; console.error('compare: pair', pair.id, 'not compared:', e); }
      if (performance.now() >= deadline) break;
    }
    if (this.head > 1024 && this.head * 2 > this.queue.length) { this.queue = this.queue.slice(this.head); this.head = 0; }
    if (this.head < this.queue.length) this.schedule();
    this.checkIdle();
  }

  private checkIdle(): void {
    if (this.pending() === 0 && this.replaying === 0) for (const w of [...this.idleWaiters]) w();
  }

  private handle(pair: MirroredPair): void {
    const endpoint = this.normaliser.endpointOf(pair.request);
    const kind = pair.kind ?? 'read';
    if (kind !== 'replayed') this.recorder.record(endpoint, pair.request, kind === 'write', pair.at);
    // Uold's own failure says nothing about Unew: the pair cannot be judged.
    if (pair.primary.error) { this.counters.skipped++; return; }
    if (kind === 'write') { this.handleWrite(pair, endpoint); return; }
    const left = this.normaliser.normalise(pair.primary);
    const diffs = this.differ.diff(left, this.normaliser.normalise(pair.shadow));
    const safe = isSafeMethod(pair.request.method);
    if (safe) this.sampleNoise(pair, endpoint, left);
    const suspicious = new Set(diffs.filter((d) => !this.tally.isNoiseField(endpoint, d.field)).map((d) => d.field));
    if (!suspicious.size || !safe || !this.mayBeLag(pair)) { this.record(endpoint, pair, diffs, [], 'observed'); return; }
    if (this.rechecking >= this.rules.lag.maxPending) {
      this.tally.recordRecheck(endpoint, true);
      this.record(endpoint, pair, diffs, [], 'observed');
      return;
    }
    this.rechecking++;
    this.lag.recheck(pair.request, suspicious, pair.positions?.primary)
      .then((res) => {
        if (this.closed) return;
        this.tally.recordRecheck(endpoint, false);
        if (res.inconclusive) { this.record(endpoint, pair, diffs, [], 'observed'); return; }
        const still = new Set(res.still.map((d) => d.field));
        const final = diffs.filter((d) => !suspicious.has(d.field) || still.has(d.field));
        const explained = [...suspicious].filter((f) => !still.has(f));
        const judged = final.some((d) => suspicious.has(d.field)) ? 'confirmed' : 'lag-explained';
        this.record(endpoint, pair, final, explained, judged);
      })
      .catch((e) => { if (!this.closed) { console.error('compare: recheck failed:', e); this.record(endpoint, pair, diffs, [], 'observed'); } })
      .finally(() => { this.rechecking--; this.checkIdle(); });
  }

  /** A write mirrored into the sandbox: reply shape now, then the read-back of both effects; counted pending meanwhile. */
  private handleWrite(pair: MirroredPair, endpoint: string): void {
    this.rechecking++;
    this.writes.judge(pair)
      .then((j) => {
        if (this.closed) return;
        this.tally.recordReadBack(endpoint, j.readBack);
        this.record(endpoint, pair, j.diffs, [], 'observed');
      })
      .catch((e) => { if (!this.closed) { console.error('compare: write judge failed:', e); this.counters.skipped++; } })
      .finally(() => { this.rechecking--; this.checkIdle(); });
  }

  /** False when the pair's own positions prove Unew had already applied Uold's read position: then a difference cannot be lag. */
  private mayBeLag(pair: MirroredPair): boolean {
    if (this.rules.lag.attempts === 0) return false;
    const p = pair.positions;
    if (p?.primary && p.shadow && positionReached(p.primary, p.shadow)) return false;
    return true;
  }

  private record(endpoint: string, pair: MirroredPair, diffs: Difference[], explained: string[], judged: 'observed' | 'confirmed' | 'lag-explained'): void {
    this.tally.recordPair(endpoint, pair, diffs, explained, judged);
    this.counters.compared++;
  }

  private sampleNoise(pair: MirroredPair, endpoint: string, left: NormalisedReply): void {
    const rate = this.rules.noiseSamplingRate;
    if (rate <= 0) return;
    // Until an endpoint has the minimum Uold-vs-Uold samples, sample every
    // request (at most noise.minSamples extra per endpoint): a quiet endpoint
    // must still learn its noise. After that, the plan's sampling rate.
    const warmingUp = this.tally.endpoint(endpoint).noiseSamples < this.rules.noise.minSamples;
    if (!warmingUp && Math.random() >= rate) return;
    // Noise learning is best effort: when replays are busy, skip rather than queue.
    if (!this.uoldNoise.idle) { this.counters.noiseSkipped++; return; }
    this.replaying++;
    this.uoldNoise.send(pair.request, 'noise')
      .then((again) => {
        if (this.closed) return;
        if (again.error) { this.counters.noiseSkipped++; return; }
        this.tally.recordNoise(endpoint, this.differ.diff(left, this.normaliser.normalise(again)));
        this.counters.noiseSamples++;
      })
      .catch(() => { this.counters.noiseSkipped++; })
      .finally(() => { this.replaying--; this.checkIdle(); });
  }
}

export function createCompareEngine(config: CompareConfig): CompareEngine {
  return new CompareEngineImpl(config);
}
