/**
 * The watcher: turns a stream of UpgradeStatus into what an operator sees.
 * On a TTY it redraws a compact view in place (phase, copy progress bar with
 * rate and ETA, lag, compare verdict so far, tests); elsewhere (CI logs) it
 * prints one timestamped plain line, and only when something that matters
 * changed, so a log stays short.
 */
import type { UpgradeStatus } from '../workflows/status';
import type { UpgradeResult } from './api';
import { formatCount, formatDuration, palette, progressBar, type Io, type Palette } from './output';

export interface CompareVerdict { verdict: 'pass' | 'fail' | 'pending'; samples: number | null; mismatchRate: number | null }

/** status.compare is the compare engine's report (typed unknown here): read only what the view needs. */
export function compareVerdict(s: Pick<UpgradeStatus, 'compare' | 'gate'>): CompareVerdict {
  const c = (s.compare ?? {}) as Record<string, unknown>;
  const num = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) ? v : null);
  const samples = num(c.samples) ?? s.gate?.compare?.samples ?? null;
  let rate = num(c.mismatchRate);
  if (rate === null && num(c.mismatches) !== null && samples) rate = (c.mismatches as number) / samples;
  const pass = typeof c.pass === 'boolean' ? c.pass : s.gate?.compare?.pass;
  return { verdict: pass === undefined ? 'pending' : pass ? 'pass' : 'fail', samples, mismatchRate: rate };
}

export function testCounts(s: Pick<UpgradeStatus, 'tests'>): { passed: number; failed: number } {
  const passed = s.tests.filter((t) => t.passed).length;
  return { passed, failed: s.tests.length - passed };
}

function compareText(s: UpgradeStatus): string {
  const c = compareVerdict(s);
  if (c.verdict === 'pending' && c.samples === null) return 'compare –';
  const rate = c.mismatchRate === null ? '' : ` ${(c.mismatchRate * 100).toFixed(2)}% mismatch`;
  return `compare ${c.verdict}${c.samples === null ? '' : ` (${c.samples} samples${rate})`}`;
}

function testsText(s: UpgradeStatus): string {
  if (s.tests.length === 0) return 'tests –';
  const t = testCounts(s);
  return `tests ${t.passed}/${s.tests.length} passed${t.failed ? `, ${t.failed} failed` : ''}`;
}

function copyText(s: UpgradeStatus, bar: boolean): string {
  const t = s.transfer;
  if (!t) return 'copy –';
  const rate = `${formatCount(t.rowsPerSec)} rows/s`;
  const eta = t.etaSec === null ? '' : ` eta ${formatDuration(t.etaSec * 1000)}`;
  const head = bar ? `${progressBar(t.percent)} ` : '';
  return `copy ${head}${t.percent.toFixed(0)}% ${formatCount(t.copiedRows)}/${formatCount(t.totalRows)} rows ${rate}${eta}${t.paused || s.controls.paused ? ' PAUSED' : ''}`;
}

const lagText = (s: UpgradeStatus) => `lag ${formatDuration(s.transfer?.lagMs ?? null)}`;

/** One plain line: what a CI log shows per change. */
export function statusLine(s: UpgradeStatus): string {
  const parts = [`phase=${s.phase}`, copyText(s, false), lagText(s), compareText(s), testsText(s)];
  if (s.gate) parts.push(`gate ${s.gate.pass ? 'pass' : `fail (${s.gate.reasons.join('; ')})`}`);
  if (s.phase === 'awaiting-approval' && !s.approval.approved) parts.push('waiting for approval');
  const cut = s.cutovers[s.cutovers.length - 1];
  if (cut) parts.push(`cutover #${cut.attempt} ${cut.switched ? 'switched' : 'released'} hold ${formatDuration(cut.holdMs)}`);
  if (s.outcome !== 'running') parts.push(`outcome=${s.outcome}`);
  if (s.lastError) parts.push(`error: ${s.lastError}`);
  return parts.join(' | ');
}

/** What must change for the plain output to print a new line (copy progress counts in 10% steps). */
export function changeKey(s: UpgradeStatus): string {
  const t = testCounts(s);
  return JSON.stringify([s.phase, Math.floor((s.transfer?.percent ?? -10) / 10), s.transfer?.phase, s.controls.paused, t.passed, t.failed,
    compareVerdict(s).verdict, s.gate?.pass, s.approval.approved, s.cutovers.length, s.outcome, s.lastError, s.abortReason]);
}

/** The compact multi-line view for a terminal. */
export function statusView(s: UpgradeStatus, pal: Palette, now = Date.now()): string[] {
  const phaseColour = s.outcome === 'failed' || s.outcome === 'aborted' ? pal.red : s.outcome === 'completed' ? pal.green : pal.cyan;
  const c = compareVerdict(s);
  const verdictColour = c.verdict === 'pass' ? pal.green : c.verdict === 'fail' ? pal.red : pal.dim;
  const t = testCounts(s);
  const lines = [
    `${pal.bold(s.upgradeId)}  ${s.system} ${s.from} → ${s.to}`,
    `phase   ${phaseColour(s.phase)} for ${formatDuration(now - s.phaseStartedAt)}${s.outcome !== 'running' ? `  outcome ${phaseColour(s.outcome)}` : ''}`,
    `${copyText(s, true)}`,
    `${lagText(s)}${s.transfer?.throttleReason ? pal.yellow(`  throttled: ${s.transfer.throttleReason}`) : ''}`,
    verdictColour(compareText(s)),
    t.failed ? pal.red(testsText(s)) : testsText(s),
  ];
  if (s.phase === 'awaiting-approval' && !s.approval.approved) lines.push(pal.yellow(`waiting for approval: imago approve ${s.upgradeId}`));
  if (s.lastError) lines.push(pal.red(`error   ${s.lastError}`));
  return lines;
}

/** Renders each status it is given; call finish() with the result. */
export class Watcher {
  private lastKey = '';
  private drawn = 0;
  private readonly pal: Palette;

  constructor(private readonly io: Io) { this.pal = palette(io); }

  onStatus(s: UpgradeStatus): void {
    if (this.io.isTTY) {
      const lines = statusView(s, this.pal);
      // Move up over the previous frame and clear each line before redrawing.
      const up = this.drawn ? `\x1b[${this.drawn}F` : '';
      this.io.out(up + lines.map((l) => `\x1b[2K${l}`).join('\n') + '\n');
      this.drawn = lines.length;
      return;
    }
    const key = changeKey(s);
    if (key === this.lastKey) return;
    this.lastKey = key;
    const at = (this.io.now?.() ?? new Date()).toISOString();
    this.io.out(`${at} ${s.upgradeId} ${statusLine(s)}\n`);
  }

  finish(r: UpgradeResult): void {
    const colour = r.exitCode === 0 ? this.pal.green : this.pal.red;
    const at = this.io.isTTY ? '' : `${(this.io.now?.() ?? new Date()).toISOString()} `;
    this.io.out(`${at}${r.workflowId} ended: ${colour(r.outcome)} (exit ${r.exitCode})${r.error ? ` — ${r.error}` : ''}\n`);
  }
}
