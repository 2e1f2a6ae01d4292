/**
 * The report's data: what the page needs from an UpgradeStatus, in the
 * column layout the charts take (uPlot: x in seconds, one array per series).
 */
import type { CutoverReport, GateResult, TestResult, UpgradeStatus } from '../../workflows/status';
import { formatMs } from '../output';
import { compareVerdict, type CompareVerdict } from '../watcher';

export interface Window { start: number; end: number; label: string }

export interface ReportData {
  upgradeId: string;
  system: string;
  from: string;
  to: string;
  provider: string;
  phase: string;
  outcome: string;
  url: string | null;
  generatedAt: number;
  abortReason: string | null;
  lastError: string | null;
  timings: Array<{ phase: string; startedAt: number; endedAt: number; open: boolean }>;
  /** Client view at the ingress interceptors: x in seconds; rps/errps per second; latencies in ms. */
  ingress: { x: number[]; rps: number[]; errps: number[]; meanMs: number[]; maxMs: number[] };
  /** The termination + switchover pause, in seconds (null when the upgrade did not get there). */
  pause: Window | null;
  transfer: { x: number[]; percent: number[]; lagMs: Array<number | null>; rowsPerSec: number[] };
  compare: CompareVerdict & { raw: unknown };
  gate: GateResult | null;
  tests: TestResult[];
  verification: UpgradeStatus['verification'];
  cutovers: CutoverReport[];
}

/** Width of one ingress bucket, as workflows/status.ts documents series.ingress. */
export const INGRESS_BUCKET_MS = 100;

/** The pause is the time from the start of termination to the end of switchover (the traffic switch). */
export function pauseWindow(s: Pick<UpgradeStatus, 'timings' | 'cutovers'>): Window | null {
  const term = [...s.timings].reverse().find((t) => t.phase === 'termination');
  if (!term) return null;
  const sw = s.timings.find((t) => t.phase === 'switchover' && t.startedAt >= term.startedAt);
  const end = sw?.endedAt ?? sw?.startedAt ?? term.endedAt ?? term.startedAt;
  const last = s.cutovers[s.cutovers.length - 1];
  const label = last ? `termination + switchover (hold ${formatMs(last.holdMs)}, total ${formatMs(last.totalMs)})` : 'termination + switchover';
  return { start: term.startedAt / 1000, end: Math.max(end, term.startedAt) / 1000, label };
}

export function reportData(s: UpgradeStatus, opts: { url?: string; now?: number } = {}): ReportData {
  const now = opts.now ?? Date.now();
  const ingress = [...s.series.ingress].sort((a, b) => a.at - b.at);
  const perSec = 1000 / INGRESS_BUCKET_MS;
  const transfer = [...s.series.transfer].sort((a, b) => a.at - b.at);
  return {
    upgradeId: s.upgradeId, system: s.system, from: s.from, to: s.to, provider: s.provider,
    phase: s.phase, outcome: s.outcome, url: opts.url ?? null, generatedAt: now,
    abortReason: s.abortReason, lastError: s.lastError,
    // An open phase runs until now; once the upgrade has ended, its last phase (completed, aborted...) is a point in time.
    timings: s.timings.map((t) => {
      const ended = s.outcome !== 'running';
      return { phase: t.phase, startedAt: t.startedAt, endedAt: t.endedAt ?? (ended ? t.startedAt : now), open: t.endedAt === undefined && !ended };
    }),
    ingress: {
      x: ingress.map((b) => b.at / 1000),
      rps: ingress.map((b) => b.count * perSec),
      errps: ingress.map((b) => b.errors * perSec),
      meanMs: ingress.map((b) => b.meanMs),
      maxMs: ingress.map((b) => b.maxMs),
    },
    pause: pauseWindow(s),
    transfer: {
      x: transfer.map((p) => p.at / 1000),
      percent: transfer.map((p) => p.percent),
      lagMs: transfer.map((p) => p.lagMs),
      rowsPerSec: transfer.map((p) => p.rowsPerSec),
    },
    compare: { ...compareVerdict(s), raw: s.compare },
    gate: s.gate, tests: s.tests, verification: s.verification, cutovers: s.cutovers,
  };
}
