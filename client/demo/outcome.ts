/**
 * The demo's account of failed client requests: each one with its kind and
 * its time relative to the upgrade's phases, so a reader can tell a request
 * that failed at the switch from one that failed while Imago was copying, and
 * the load generator's own overload (requests it never sent) from a failure
 * of the site. Pure: the demo gives it the failures and the phase timings.
 */
import type { FailedRequest } from '../../examples/auction/workload/generator';
import type { UpgradeStatus } from '../../workflows/status';
import { formatMs, formatNumber } from '../output';

export type PhaseTimings = UpgradeStatus['timings'];

/** Where t falls: inside a phase (and how long after it began), before the first, or after the last ended. */
export function placeInPhases(t: number, timings: PhaseTimings): string {
  const secs = (ms: number) => `${formatNumber(ms / 1000, 1)} s`;
  if (timings.length === 0 || t < timings[0].startedAt) {
    return timings.length ? `before the upgrade (${secs(timings[0].startedAt - t)} before it began)` : 'before the upgrade';
  }
  // The last phase that began at or before t; a closed one that ended before t means t is after the upgrade.
  for (let i = timings.length - 1; i >= 0; i--) {
    const p = timings[i];
    if (p.startedAt > t) continue;
    if (p.endedAt !== undefined && t > p.endedAt && i === timings.length - 1) return `after the upgrade (${secs(t - p.endedAt)} after it ended)`;
    return `${p.phase} +${secs(t - p.startedAt)}`;
  }
  return 'before the upgrade';
}

export interface FailureAccount {
  /** Requests the site failed (HTTP errors, network errors, timeouts). */
  failed: FailedRequest[];
  /** Requests the generator did not send (its own limit of outstanding requests). */
  overload: FailedRequest[];
}

export function splitFailures(all: FailedRequest[]): FailureAccount {
  return { failed: all.filter((f) => f.kind !== 'overload'), overload: all.filter((f) => f.kind === 'overload') };
}

const kindText = (kind: string) => (/^\d{3}$/.test(kind) ? `HTTP ${kind}` : kind);

/**
 * The lines the demo prints: one per failed request (at most `max`, then how
 * many more and where the whole list is), then the overload, apart and named.
 */
export function failureLines(all: FailedRequest[], timings: PhaseTimings, opts: { max?: number; fullList?: string } = {}): string[] {
  const { failed, overload } = splitFailures(all);
  const max = opts.max ?? 50;
  const lines: string[] = [];
  if (failed.length) {
    lines.push(`Failed requests (${formatNumber(failed.length)}), with when they left relative to the upgrade's phases:`);
    const rows = failed.slice(0, max).map((f) => [placeInPhases(f.at, timings), `${f.method} ${f.path}`, `${kindText(f.kind)} after ${formatMs(f.latencyMs)}`]);
    const w0 = Math.max(...rows.map((r) => r[0].length));
    const w1 = Math.max(...rows.map((r) => r[1].length));
    for (const r of rows) lines.push(`  ${r[0].padEnd(w0)}  ${r[1].padEnd(w1)}  ${r[2]}`);
    if (failed.length > max) lines.push(`  … and ${formatNumber(failed.length - max)} more${opts.fullList ? ` (all in ${opts.fullList})` : ''}`);
  }
  if (overload.length) {
    const first = overload[0].at, last = overload[overload.length - 1].at;
    lines.push(`Not sent by the load generator: ${formatNumber(overload.length)} request(s), its own overload limit (too many requests outstanding: `
      + `the generator or this machine was saturated, not a failure of the site), from ${placeInPhases(first, timings)} to ${placeInPhases(last, timings)}.`);
  }
  return lines;
}
