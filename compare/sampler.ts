/**
 * Active sampling: a real site always has endpoints that see a handful of
 * requests a minute, and the verdict needs minSamplesPerEndpoint pairs of
 * each endpoint with traffic. For an endpoint still short of them once live
 * traffic had `afterMs` to provide them, the sampler re-sends its recent
 * recorded safe requests to Uold, then to Unew, and hands the two replies on
 * as a pair marked 'replayed' (compared like a live one, noise and lag
 * included). Bounded: one replay per short endpoint per interval, at most
 * maxPerEndpoint per endpoint and maxTotal overall; reads only (a write is
 * never replayed: it would write twice).
 */
import type { CompareRules } from './rules';
import type { Recorder } from './recorder';
import type { Replayer } from './replayer';
import type { MirroredPair } from './types';

export class ActiveSampler {
  replayed = 0;
  skipped = 0;
  private readonly perEndpoint = new Map<string, number>();
  private readonly inFlight = new Map<string, number>();
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  private nextId = -1;

  constructor(
    private readonly rules: Readonly<CompareRules>,
    private readonly recorder: Recorder,
    private readonly uold: Replayer,
    private readonly unew: Replayer,
    /** Pairs compared so far for an endpoint (live and replayed). */
    private readonly samplesOf: (endpoint: string) => number,
    private readonly onPair: (pair: MirroredPair) => void,
  ) {}

  start(): void {
    const a = this.rules.activeSampling;
    if (!a.enabled || a.maxTotal === 0 || a.maxPerEndpoint === 0) return;
    this.timer = setTimeout(() => {
      this.timer = setInterval(() => this.tick(), a.intervalMs);
      this.timer.unref();
      this.tick();
    }, a.afterMs);
    this.timer.unref();
  }

  stop(): void {
    this.closed = true;
    if (this.timer) { clearTimeout(this.timer); clearInterval(this.timer); }
  }

  /** One round: a replay for each endpoint still short of samples, within the bounds. */
  tick(): void {
    const a = this.rules.activeSampling;
    const need = this.rules.minSamplesPerEndpoint;
    for (const endpoint of this.recorder.endpoints()) {
      if (this.closed || this.replayed + this.inFlightTotal() >= a.maxTotal) return;
      const flying = this.inFlight.get(endpoint) ?? 0;
      if (flying > 0 || this.samplesOf(endpoint) >= need || (this.perEndpoint.get(endpoint) ?? 0) >= a.maxPerEndpoint) continue;
      const req = this.recorder.nextFor(endpoint);
      if (!req) continue;
      this.inFlight.set(endpoint, flying + 1);
      void this.replay(endpoint, req).finally(() => this.inFlight.set(endpoint, (this.inFlight.get(endpoint) ?? 1) - 1));
    }
  }

  private inFlightTotal(): number {
    let n = 0;
    for (const v of this.inFlight.values()) n += v;
    return n;
  }

  private async replay(endpoint: string, request: MirroredPair['request']): Promise<void> {
    const at = Date.now();
    // Uold first, as a mirrored pair has it: Unew's reply then reflects at least what Uold's did, or the lag checker sees to it.
    const primary = await this.uold.send(request, 'active-sample');
    if (this.closed) return;
    if (primary.error) { this.skipped += 1; return; }
    const shadow = await this.unew.send(request, 'active-sample');
    if (this.closed) return;
    this.perEndpoint.set(endpoint, (this.perEndpoint.get(endpoint) ?? 0) + 1);
    this.replayed += 1;
    this.onPair({ id: this.nextId--, at, request, primary, shadow, kind: 'replayed' });
  }
}
