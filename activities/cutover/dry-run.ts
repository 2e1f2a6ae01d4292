/**
 * The cut-over's dry-run twin: the same steps as the live cut-over, each
 * replaced by the check that tells whether the live step would succeed, with
 * the figure it measured. Nobody is held, nothing is switched. A failed check
 * does not stop the run: every check is made, so the report lists every
 * problem at once. `imago cutover check <id>` prints it; the workflow runs it
 * before every attempt and does not hold anyone when it fails.
 */
import type { IngressControlClient, IngressStatus } from '../../interceptors/ingress';
import { flushTo, readUoldPosition } from '../../transfer/flush';
import { verifyChangedSince } from '../../transfer/verify';
import type { CutoverCheck } from '../../workflows/status';
import { loadConversion, readerServerId } from '../context';
import { SWITCH_MARGIN, UNEW_UPSTREAM, type CutoverContext, type CutoverSteps } from './steps';

/** p99 of a list of durations (ms), or null when empty. */
export function p99(values: number[]): number | null {
  if (!values.length) return null;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil(sorted.length * 0.99) - 1)];
}

/** How many of an interceptor's latest served requests the drain estimate looks at. */
const DRAIN_SAMPLE = 500;

/**
 * The drain a hold would wait for: the p99 of the upstream time (sent →
 * reply finished) of the interceptor's latest requests. Not its client-visible
 * latency, which includes the time requests spent held by earlier holds.
 */
async function drainEstimate(c: IngressControlClient, st: IngressStatus): Promise<number | null> {
  const since = Math.max(0, (st.counters.served ?? 0) - DRAIN_SAMPLE);
  const { records } = await c.served(since, DRAIN_SAMPLE);
  return p99(records.filter((r) => r.end >= r.start && r.status < 600).map((r) => r.end - r.start));
}

export class DryRunSteps implements CutoverSteps {
  readonly checks: CutoverCheck[] = [];
  /** Where the verification got to (the live attempt verifies only what changed after it). */
  verifiedPosition: string | null;
  private statuses: Array<IngressStatus | null> = [];
  private drainMs = 0;
  private flushMs = 0;
  private smokeMs = 0;

  constructor(private readonly ctx: CutoverContext) {
    this.verifiedPosition = ctx.verifiedPosition;
  }

  private add(step: string, name: string, ok: boolean, detail: string, ms?: number): void {
    this.checks.push({ step, name, ok, detail, ...(ms === undefined ? {} : { ms: Math.round(ms * 10) / 10 }) });
  }

  private async timed<T>(fn: () => Promise<T>): Promise<[T, number]> {
    const t = performance.now();
    const v = await fn();
    return [v, performance.now() - t];
  }

  async prepare(): Promise<void> {
    const { clients, handle, provider } = this.ctx;
    this.statuses = await Promise.all(clients.map(async (c) => {
      try {
        const [st, ms] = await this.timed(() => c.status());
        const fine = !st.hold;
        this.add('prepare', `interceptor ${c.baseUrl}`, fine, fine ? `reachable with its token, target '${st.target}', not held` : `already held (since ${new Date(st.hold!.startedAt).toISOString()}): another cut-over is running or stuck`, ms);
        return st;
      } catch (err) {
        this.add('prepare', `interceptor ${c.baseUrl}`, false, (err as Error).message);
        return null;
      }
    }));
    if (!handle.appUrls.length) this.add('prepare', 'Unew upstream', false, 'Unew has no application URL');
    else this.add('prepare', 'Unew upstream', true, `${UNEW_UPSTREAM} = ${handle.appUrls[0]}`);
    try {
      const prepared = await provider.prepareSwitch(handle, 'unew');
      for (const c of prepared.checks) this.add('prepare', `provider ${provider.name}: ${c.name}`, c.ok, c.detail);
      if (!prepared.checks.length) this.add('prepare', `provider ${provider.name}`, true, prepared.changes.length ? `${prepared.changes.length} change(s) to apply inside the hold` : 'no provider-level switch');
    } catch (err) {
      this.add('prepare', `provider ${provider.name}`, false, (err as Error).message);
    }
  }

  async hold(): Promise<void> {
    const reachable = this.statuses.filter(Boolean).length;
    this.add('hold', 'hold', reachable === this.ctx.clients.length, `would hold ${reachable} of ${this.ctx.clients.length} interceptor(s) for at most ${this.ctx.plan.switchover.holdTimeoutMs} ms`);
  }

  async waitDrained(): Promise<void> {
    // A hold drains the requests in flight: the slowest typical request bounds it.
    const p99s: number[] = [];
    for (const [i, st] of this.statuses.entries()) {
      if (!st) continue;
      const v = await drainEstimate(this.ctx.clients[i], st).catch(() => null);
      if (v !== null) p99s.push(v);
    }
    this.drainMs = p99s.length ? Math.max(...p99s) : 0;
    const limit = this.ctx.plan.switchover.drainTimeoutMs;
    this.add('waitDrained', 'drain', this.drainMs <= limit, p99s.length ? `p99 upstream time of the latest requests through the interceptors is ${Math.round(this.drainMs * 10) / 10} ms (drain timeout ${limit} ms)` : 'no request seen yet: nothing to drain', this.drainMs);
  }

  async readFinalPosition(): Promise<string> {
    try {
      const [pos, ms] = await this.timed(() => readUoldPosition(this.ctx.sourceUrl));
      this.add('readFinalPosition', "Uold's position", true, pos || '(empty binlog)', ms);
      return pos;
    } catch (err) {
      this.add('readFinalPosition', "Uold's position", false, (err as Error).message);
      return '';
    }
  }

  async flush(position: string): Promise<void> {
    // The time Unew takes to reach Uold's position of now is the flush the hold will wait for (and the transfer's lag).
    const { plan, targetUrl, handle, reportedLagMs } = this.ctx;
    try {
      const [, ms] = await this.timed(() => flushTo(targetUrl, handle.db.database, position, plan.switchover.flushTimeoutMs));
      this.flushMs = ms;
      this.add('flush', 'lag', ms <= plan.switchover.maxLagMsToBegin, `Unew reached Uold's current position in ${Math.round(ms)} ms (limit switchover.maxLagMsToBegin = ${plan.switchover.maxLagMsToBegin} ms${reportedLagMs !== null ? `; the transfer last reported ${reportedLagMs} ms` : ''})`, ms);
    } catch (err) {
      this.flushMs = plan.switchover.flushTimeoutMs;
      this.add('flush', 'lag', false, (err as Error).message);
    }
  }

  async verifyWindow(): Promise<void> {
    const { plan, handle, sourceUrl, targetUrl } = this.ctx;
    if (!plan.verify.enabled || !this.verifiedPosition) {
      this.add('verifyWindow', 'rows changed since the verification', true, plan.verify.enabled ? 'no full verification yet: nothing to check' : 'verification is off in the plan');
      return;
    }
    try {
      const [v, ms] = await this.timed(() => verifyChangedSince({
        source: { url: sourceUrl, database: plan.uold.db.database }, target: { url: targetUrl, database: handle.db.database },
        conversion: loadConversion(plan), serverId: readerServerId(handle.upgradeId, 'cutover'), flushTimeoutMs: Math.max(30_000, plan.switchover.flushTimeoutMs),
      }, this.verifiedPosition!));
      const bad = [...v.missing, ...v.extra, ...v.different];
      this.add('verifyWindow', 'rows changed since the verification', bad.length === 0, bad.length ? `${bad.length} differ in Unew (e.g. ${JSON.stringify(bad[0])})` : `${v.rowsChecked} row(s) checked, 0 differences`, ms);
      if (!bad.length) this.verifiedPosition = v.position;
    } catch (err) {
      this.add('verifyWindow', 'rows changed since the verification', false, (err as Error).message);
    }
  }

  async smokeTest(): Promise<void> {
    const { handle, plan } = this.ctx;
    const url = `${handle.appUrls[0] ?? ''}${plan.switchover.smokePath}`;
    const t = performance.now();
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(1_000) });
      await res.arrayBuffer().catch(() => undefined);
      this.smokeMs = performance.now() - t;
      this.add('smokeTest', 'smoke test', res.ok, `GET ${url} → ${res.status}`, this.smokeMs);
    } catch (err) {
      this.smokeMs = performance.now() - t;
      this.add('smokeTest', 'smoke test', false, `GET ${url}: ${(err as Error).message}`);
    }
  }

  async switchInterceptors(): Promise<void> {
    // The live cut-over switches only while SWITCH_MARGIN of the hold is left:
    // what comes before the switch must fit in the rest.
    const { holdTimeoutMs } = this.ctx.plan.switchover;
    const budget = holdTimeoutMs * (1 - SWITCH_MARGIN);
    const need = this.drainMs + this.flushMs + this.smokeMs;
    this.add('switchInterceptors', 'hold budget', need <= budget,
      `${Math.round(budget)} ms of the ${holdTimeoutMs} ms hold are usable before the switch; the measured drain ${Math.round(this.drainMs)} ms + flush ${Math.round(this.flushMs)} ms + smoke test ${Math.round(this.smokeMs)} ms = ${Math.round(need)} ms${need <= budget ? '' : ': raise switchover.holdTimeoutMs or lower the load'}`, need);
  }

  async recordPointOfNoReturn(): Promise<void> { /* a dry run never passes it */ }
  async switchProvider(): Promise<void> { /* checked in prepare */ }
  async commitInterceptors(): Promise<void> { /* nothing held: nothing to commit */ }
  async release(): Promise<void> { /* nothing held: nothing to release */ }
  async restore(): Promise<string[]> { return []; }
}
