/**
 * The live cut-over steps: they hold the clients, flush, verify, and switch.
 * Each step throws on failure with a registry error; the driver decides what
 * a failure means (restore before the point of no return, forward after it).
 */
import { forwardUntil, holdAll, restoreAll, switchAll, targetsOf, waitDrainedAll } from '../../interceptors/ingress';
import { imagoError } from '../../lib/errors';
import type { PreparedSwitch } from '../../providers/provider';
import { flushTo, readUoldPosition } from '../../transfer/flush';
import { verifyChangedSince, WindowCheck } from '../../transfer/verify';
import type { CutoverReport } from '../../workflows/status';
import { readerServerId } from '../context';
import { SWITCH_MARGIN, type CutoverContext, type CutoverSteps } from './steps';

/** The provider's read-back after the release; a route found elsewhere is a conflict, finished forward by the next attempt. */
export async function expectSwitched(ctx: CutoverContext, prepared: PreparedSwitch): Promise<void> {
  const bad = (await ctx.provider.verifySwitch(ctx.handle, prepared)).filter((c) => !c.ok);
  if (bad.length) throw imagoError('PROVIDER_AWS_CONFLICT', `after the switch, read back: ${bad.map((c) => `${c.name}: ${c.detail}`).join('; ')}`);
}

export class LiveSteps implements CutoverSteps {
  private oldTargets: string[] = [];
  private deadlines: number[] = [];
  private prepared: PreparedSwitch | null = null;
  private since: string | null;
  /** The last window's check, opened before the hold (its binlog scan already reading): see WindowCheck. */
  private window: WindowCheck | null = null;

  constructor(private readonly ctx: CutoverContext, private readonly report: CutoverReport) {
    this.since = ctx.verifiedPosition;
  }

  private verifyOptions(flushTimeoutMs: number) {
    const { handle, sourceUrl, targetUrl, sourceDatabase, to } = this.ctx;
    return {
      source: { url: sourceUrl, database: sourceDatabase },
      target: { url: targetUrl, database: to.database },
      conversion: this.ctx.conversion(), serverId: readerServerId(handle.upgradeId, 'cutover'), flushTimeoutMs,
    };
  }

  async prepare(): Promise<void> {
    const { clients, handle, provider, plan, to } = this.ctx;
    const statuses = await Promise.all(clients.map((c) => c.status()));
    await Promise.all(clients.map(async (c, i) => {
      if (statuses[i].upstreams[to.upstream] !== to.appUrl) await c.addUpstream(to.upstream, to.appUrl);
    }));
    this.oldTargets = statuses.map((s) => s.target);
    // Every describe and check of the provider's switch happens here, before
    // anyone is held: inside the hold only its changes are applied.
    this.prepared = await provider.prepareSwitch(handle, to.side);
    const bad = this.prepared.checks.filter((c) => !c.ok);
    if (bad.length) throw imagoError('IMAGO_CUTOVER_FAILED', `the provider's switch cannot be made: ${bad.map((c) => `${c.name}: ${c.detail}`).join('; ')}`);
    // Verify most of the window since the full verification before holding
    // anyone, so the check inside the hold covers only the last moments.
    // Nobody is held yet, so this may wait for Unew longer than the hold's flush budget.
    if (plan.verify.enabled && this.since) {
      const pre = await verifyChangedSince(this.verifyOptions(Math.max(30_000, plan.switchover.flushTimeoutMs)), this.since);
      const bad = [...pre.missing, ...pre.extra, ...pre.different];
      if (bad.length) throw imagoError('TRANSFER_VERIFY_MISMATCH', `${bad.length} rows changed since the full verification differ in ${to.side === 'unew' ? 'Unew' : 'Uold'} (e.g. ${JSON.stringify(bad[0])})`);
      this.since = pre.position;
      // Why here: starting the binlog scan reads Uold's binlog file from its start (about 90 ms per GB);
      // paid now, the check inside the hold only reads the last transactions.
      this.window = await WindowCheck.open(this.verifyOptions(plan.switchover.flushTimeoutMs), this.since);
      // A cancelled attempt runs no more steps: its scan stops with it.
      this.ctx.cancelled.addEventListener('abort', () => { void this.closeWindow(); }, { once: true });
    }
  }

  private async closeWindow(): Promise<void> {
    const w = this.window;
    this.window = null;
    await w?.close();
  }

  async hold(): Promise<void> {
    this.deadlines = await holdAll(this.ctx.clients, this.ctx.plan.switchover.holdTimeoutMs);
  }

  async waitDrained(): Promise<void> {
    await waitDrainedAll(this.ctx.clients, this.ctx.plan.switchover.drainTimeoutMs);
  }

  async readFinalPosition(): Promise<string> {
    this.report.uoldPosition = await readUoldPosition(this.ctx.sourceUrl);
    return this.report.uoldPosition;
  }

  async flush(position: string): Promise<void> {
    await flushTo(this.ctx.targetUrl, this.ctx.to.database, position, this.ctx.plan.switchover.flushTimeoutMs);
  }

  async verifyWindow(): Promise<void> {
    const { plan } = this.ctx;
    if (!plan.verify.enabled || !this.since) return;
    let v;
    try {
      v = this.window ? await this.window.run() : await verifyChangedSince(this.verifyOptions(plan.switchover.flushTimeoutMs), this.since);
    } finally { await this.closeWindow(); }
    this.report.changedRowsVerified = v.rowsChecked;
    const bad = [...v.missing, ...v.extra, ...v.different];
    if (bad.length) throw imagoError('TRANSFER_VERIFY_MISMATCH', `${bad.length} rows changed in the last window differ in ${this.ctx.to.side === 'unew' ? 'Unew' : 'Uold'} (e.g. ${JSON.stringify(bad[0])})`);
  }

  async smokeTest(): Promise<void> {
    const { to, plan } = this.ctx;
    const side = to.side === 'unew' ? 'Unew' : 'Uold';
    const url = to.appUrl + plan.switchover.smokePath;
    let res: Response;
    try { res = await fetch(url, { signal: AbortSignal.timeout(1_000) }); } catch (err) {
      throw imagoError('IMAGO_CUTOVER_FAILED', `smoke test ${url} on ${side}: ${(err as Error).message}`);
    }
    await res.arrayBuffer().catch(() => undefined);
    if (!res.ok) throw imagoError('IMAGO_CUTOVER_FAILED', `smoke test ${plan.switchover.smokePath} on ${side} answered ${res.status}`);
  }

  async switchInterceptors(): Promise<void> {
    // Switch only if every hold has enough time left to be committed by us: a
    // hard timeout between switch and commit would send one interceptor's held
    // requests back to Uold while the others serve Unew.
    const { holdTimeoutMs } = this.ctx.plan.switchover;
    const left = Math.min(...this.deadlines) - Date.now();
    if (left < holdTimeoutMs * SWITCH_MARGIN) throw imagoError('IMAGO_CUTOVER_FAILED', `only ${left} ms of the ${holdTimeoutMs} ms hold left before switching; raise switchover.holdTimeoutMs`);
    await switchAll(this.ctx.clients, this.ctx.to.upstream);
  }

  async recordPointOfNoReturn(): Promise<void> {
    // Durable before anything can let Unew serve: once the workflow has this
    // signal it never compensates, whatever happens to this activity.
    await this.ctx.recordPointOfNoReturn();
    this.report.pointOfNoReturn = true;
  }

  async switchProvider(): Promise<void> {
    // Forward only: applied (and repeated until done) after the point of no return.
    if (this.prepared?.changes.length) await this.ctx.provider.applySwitch(this.ctx.handle, this.prepared);
  }

  async commitInterceptors(): Promise<void> {
    const problems = await forwardUntil(this.ctx.clients, (c) => c.commit(), this.deadline());
    if (problems.length) throw imagoError('INGRESS_FLEET_PARTIAL', `commit: ${problems.join(' | ')}`);
  }

  async release(): Promise<void> {
    const problems = await forwardUntil(this.ctx.clients, (c) => c.release(), this.deadline());
    if (problems.length) throw imagoError('INGRESS_FLEET_PARTIAL', `release: ${problems.join(' | ')}`);
    // Clients are out of the hold: now read back what the provider changed (and let it drop its probe).
    if (this.prepared?.changes.length) await expectSwitched(this.ctx, this.prepared);
  }

  async restore(): Promise<string[]> {
    await this.closeWindow();
    const back = this.ctx.to.side === 'unew' ? 'uold' : 'unew';
    const olds = this.oldTargets.length ? this.oldTargets : await targetsOf(this.ctx.clients).catch(() => this.ctx.clients.map(() => back));
    return restoreAll(this.ctx.clients, olds);
  }

  /** The earliest hold deadline: past it, an interceptor has released by itself. */
  private deadline(): number {
    return this.deadlines.length ? Math.min(...this.deadlines) : Date.now() + this.ctx.plan.switchover.holdTimeoutMs;
  }
}
