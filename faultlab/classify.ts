/**
 * Classifies the impact of one run on live traffic from its evidence only:
 *  - full outage: some 1 s of the upgrade window with ≥ 10 requests of which ≥ 90 % failed;
 *  - latent error: an acknowledged write missing/altered/duplicated (ledger
 *    checker), or a served reply that differs from a fault-free v2 on the same
 *    data (reply probe) after the upgrade;
 *  - security vulnerability: the serving version's database account holds
 *    privileges beyond what the app needs (SHOW GRANTS);
 *  - degraded throughput: ≥ 1 % of the requests of the upgrade window failed
 *    (fewer requests served), or completed requests/s < 90 % of the offered rate;
 *  - increased latency: median of the window ≥ 2 × baseline + 5 ms, or p99 ≥ 2 × baseline + 50 ms
 *    (baseline: the warm-up before the upgrade started; 100 ms buckets, weighted by count);
 *  - none otherwise.
 * For Imago also: caught before switchover (no cut-over switched) and by what,
 * read from the workflow status (health check, schema install, data transfer,
 * grants check, tests, compare verdict, verification).
 */
import type { TimelineBucket } from '../examples/auction/workload/generator';
import type { RunEvidence } from './evidence';
import { GRANTS_TEST_NAME } from '../activities/grants';

export const IMPACTS = ['full outage', 'latent error', 'security vulnerability', 'degraded throughput', 'increased latency', 'none'] as const;
export type Impact = typeof IMPACTS[number];

export interface Classification {
  /** The most severe impact (order of IMPACTS). */
  impact: Impact;
  impacts: Impact[];
  reasons: string[];
  /** Imago only. */
  caughtBeforeSwitchover?: boolean;
  caughtBy?: string;
  metrics: { baselineP50: number; baselineP99: number; windowP50: number; windowP99: number; windowErrorRate: number; worstSecondErrorRate: number };
}

function weightedPercentile(buckets: TimelineBucket[], key: 'p50' | 'p99', p: number): number {
  const items = buckets.filter((b) => b.count > 0).map((b) => ({ v: b[key], w: b.count })).sort((a, b) => a.v - b.v);
  const total = items.reduce((s, x) => s + x.w, 0);
  if (!total) return 0;
  let acc = 0;
  for (const x of items) { acc += x.w; if (acc >= (p / 100) * total) return x.v; }
  return items.at(-1)!.v;
}

export function classify(e: RunEvidence): Classification {
  const base = e.timeline.filter((b) => b.t < e.upgradeStartMs - 500 && b.t >= 500); // skip the cold first 0.5 s
  const win = e.timeline.filter((b) => b.t >= e.upgradeStartMs);
  const m = {
    baselineP50: weightedPercentile(base, 'p50', 50), baselineP99: weightedPercentile(base, 'p99', 99),
    windowP50: weightedPercentile(win, 'p50', 50), windowP99: weightedPercentile(win, 'p99', 99),
    windowErrorRate: 0, worstSecondErrorRate: 0,
  };
  const count = win.reduce((s, b) => s + b.count, 0);
  const errors = win.reduce((s, b) => s + b.errors, 0);
  m.windowErrorRate = count ? errors / count : 0;
  const perSecond = new Map<number, { n: number; err: number }>();
  for (const b of win) {
    const k = Math.floor(b.t / 1000);
    const s = perSecond.get(k) ?? { n: 0, err: 0 };
    s.n += b.count; s.err += b.errors; perSecond.set(k, s);
  }
  for (const s of perSecond.values()) if (s.n >= 10) m.worstSecondErrorRate = Math.max(m.worstSecondErrorRate, s.err / s.n);
  // Requests refused by the generator's in-flight cap count as failed too (they are in errors, not in the timeline).
  const overload = Number(e.workload.byStatus.overload ?? 0);

  const impacts: Impact[] = [];
  const reasons: string[] = [];
  if (m.worstSecondErrorRate >= 0.9) { impacts.push('full outage'); reasons.push(`a second with ${(m.worstSecondErrorRate * 100).toFixed(0)} % failed requests`); }
  const ledgerBad = e.ledger ? e.ledger.missing + e.ledger.altered + e.ledger.duplicated : 0;
  if (ledgerBad > 0 || (e.probe?.mismatches ?? 0) > 0) {
    impacts.push('latent error');
    if (ledgerBad) reasons.push(`ledger: ${e.ledger!.missing} missing, ${e.ledger!.altered} altered, ${e.ledger!.duplicated} duplicated`);
    if (e.probe?.mismatches) reasons.push(`probe: ${e.probe.mismatches}/${e.probe.checked} wrong replies (${e.probe.examples[0] ?? ''})`);
  }
  if (e.grants && e.grants.excessive.length) { impacts.push('security vulnerability'); reasons.push(`${e.grants.account}: ${e.grants.excessive[0]}`); }
  const completedRate = e.workload.elapsedMs ? (e.workload.requests - overload) / (e.workload.elapsedMs / 1000) : 0;
  if (m.windowErrorRate >= 0.01 || overload > 0) {
    impacts.push('degraded throughput'); reasons.push(`${(m.windowErrorRate * 100).toFixed(1)} % of requests failed during/after the upgrade (${JSON.stringify(e.workload.byStatus)})`);
  } else if (e.workload.throughput > 0 && completedRate < 0.9 * e.workload.throughput) {
    impacts.push('degraded throughput'); reasons.push(`${completedRate.toFixed(1)} req/s completed of ${e.workload.throughput} offered`);
  }
  if (m.windowP50 >= 2 * m.baselineP50 + 5 || m.windowP99 >= 2 * m.baselineP99 + 50) {
    impacts.push('increased latency'); reasons.push(`latency p50 ${m.baselineP50}→${m.windowP50} ms, p99 ${m.baselineP99}→${m.windowP99} ms`);
  }
  if (!impacts.length) impacts.push('none');
  const impact = IMPACTS.find((i) => impacts.includes(i))!;
  const c: Classification = { impact, impacts, reasons, metrics: m };
  if (e.imago) {
    c.caughtBeforeSwitchover = !e.imago.switched && e.imago.outcome !== 'running';
    if (c.caughtBeforeSwitchover) c.caughtBy = caughtBy(e.imago);
  }
  return c;
}

function caughtBy(i: NonNullable<RunEvidence['imago']>): string {
  const err = i.lastError ?? '';
  // IMAGO_APP_EXITED: the new version died before its health check could pass.
  if (/IMAGO_HEALTH_FAILED|IMAGO_APP_EXITED|health check|waitUnewHealthy/i.test(err)) return 'health check';
  if (/TRANSFER_SCHEMA_MISMATCH.*schemaFile/i.test(err)) return 'schema install';
  if (i.lastPhase === 'data-transfer' || /^TRANSFER_|IMAGO_TRANSFER_FAILED/.test(err)) return 'data transfer';
  const by: string[] = [];
  if (i.testsFailed.includes(GRANTS_TEST_NAME)) by.push('grants check');
  if (i.testsFailed.some((t) => t !== GRANTS_TEST_NAME)) by.push('tests');
  if (i.compare && !i.compare.pass) by.push('compare verdict');
  if (i.verificationDifferences) by.push('verification');
  if (by.length) return by.join(' + ');
  if (i.lastPhase === 'termination') return 'termination';
  if (i.lastPhase === 'bootstrapping') return `bootstrap: ${err.replace(/^.*Activity task failed:? ?/, '').slice(0, 80)}`;
  return `${i.lastPhase}: ${err.slice(0, 80)}`;
}

/**
 * How Imago's row reads in the tables: caught (and by what), or switched over
 * — with no impact seen (a fault that did not matter at this load, or the
 * control run), or not caught (the impact reached clients).
 */
export function imagoVerdict(c: Classification, faultId: string): string {
  if (c.caughtBeforeSwitchover === undefined) return '';
  if (c.caughtBeforeSwitchover) return `caught by ${c.caughtBy ?? '?'}`;
  if (faultId === 'none') return 'switched over';
  return c.impact === 'none' ? 'switched over, no impact seen' : 'not caught';
}
