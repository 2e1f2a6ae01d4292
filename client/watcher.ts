/**
 * The watcher: turns a stream of UpgradeStatus into what an operator sees.
 * On a TTY it redraws a compact view in place (phase, copy progress bar with
 * rate and ETA, lag, compare verdict so far, tests); elsewhere (CI logs) it
 * prints one timestamped plain line when something that matters changed, and
 * that line holds the phase and only what changed, so a long gate reason or
 * error is printed once, not on every line.
 */
import type { UpgradeStatus } from '../workflows/status';
import type { UpgradeResult } from './api';
import { formatCount, formatDuration, palette, progressBar, type Io, type Palette } from './output';

export interface CompareVerdict { verdict: 'pass' | 'fail' | 'pending'; samples: number | null; mismatchRate: number | null }

/** The compare verdict so far, from the engine's report (merged across the interceptors) and the gate once it is evaluated. */
export function compareVerdict(s: Pick<UpgradeStatus, 'compare' | 'gate'>): CompareVerdict {
  const c = s.compare;
  const samples = c ? c.endpoints.reduce((n, e) => n + e.samples, 0) : s.gate?.compare?.samples ?? null;
  const rate = c && samples ? c.endpoints.reduce((n, e) => n + e.regressions, 0) / samples : null;
  const pass = s.gate?.compare?.pass;
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

/** A long reason or error is cut in a log line; `imago status <id> --json` has it whole. */
const LOG_TEXT_MAX = 400;
const cut = (t: string) => (t.length <= LOG_TEXT_MAX ? t : `${t.slice(0, LOG_TEXT_MAX - 1)}… (${t.length} chars; imago status --json has it whole)`);

/**
 * The parts of a plain line, in order. `key` is what must change for the
 * part to be printed again (copy progress counts in 10% steps); `text` is
 * what is printed. The phase is printed on every line, as its anchor.
 */
export function statusParts(s: UpgradeStatus): Array<{ name: string; key: unknown; text: string | null }> {
  const t = testCounts(s);
  const cutover = s.cutovers[s.cutovers.length - 1];
  const waiting = s.phase === 'awaiting-approval' && !s.approval.approved;
  return [
    { name: 'phase', key: s.phase, text: `phase=${s.phase}` },
    { name: 'copy', key: [Math.floor((s.transfer?.percent ?? -10) / 10), s.transfer?.phase, s.controls.paused], text: `${copyText(s, false)} | ${lagText(s)}` },
    { name: 'compare', key: compareVerdict(s).verdict, text: compareText(s) },
    { name: 'tests', key: [t.passed, t.failed], text: testsText(s) },
    { name: 'gate', key: s.gate ? [s.gate.pass, s.gate.reasons] : null, text: s.gate ? `gate ${s.gate.pass ? 'pass' : `fail (${cut(s.gate.reasons.join('; '))})`}` : null },
    { name: 'approval', key: [waiting, s.approval.approved], text: waiting ? `waiting for approval: imago approve ${s.upgradeId}` : s.approval.approved ? `approved${s.approval.by ? ` by ${s.approval.by}` : ''}` : null },
    { name: 'cutover', key: s.cutovers.length, text: cutover ? `cutover #${cutover.attempt} ${cutover.switched ? 'switched' : 'released'} hold ${formatDuration(cutover.holdMs)}` : null },
    { name: 'outcome', key: s.outcome, text: s.outcome !== 'running' ? `outcome=${s.outcome}` : null },
    { name: 'abort', key: s.abortReason, text: s.abortReason ? `abort: ${cut(s.abortReason)}` : null },
    { name: 'error', key: s.lastError, text: s.lastError ? `error: ${cut(s.lastError)}` : null },
  ];
}

/** One plain line with every part: what `imago status` would say in a log. */
export function statusLine(s: UpgradeStatus): string {
  return statusParts(s).map((p) => p.text).filter((t): t is string => t !== null).join(' | ');
}

/**
 * The line to print for s after `previous` (null: the first line, with every
 * part): the phase, then each part whose key changed and has something to say.
 * Null when nothing that matters changed.
 */
export function changeLine(s: UpgradeStatus, previous: UpgradeStatus | null): string | null {
  const now = statusParts(s);
  if (!previous) return statusLine(s);
  const before = statusParts(previous);
  const changed = now.filter((p, i) => JSON.stringify(p.key) !== JSON.stringify(before[i].key));
  if (changed.length === 0) return null;
  return [now[0], ...changed.filter((p) => p.name !== 'phase')].map((p) => p.text).filter((t): t is string => t !== null).join(' | ');
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
  for (const w of s.transfer?.warnings ?? []) lines.push(pal.yellow(`warning ${w}`));
  if (s.lastError) lines.push(pal.red(`error   ${s.lastError}`));
  return lines;
}

/** Renders each status it is given; call finish() with the result. */
export class Watcher {
  private printed: UpgradeStatus | null = null;
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
    const line = changeLine(s, this.printed);
    if (line === null) return;
    this.printed = s;
    const at = (this.io.now?.() ?? new Date()).toISOString();
    this.io.out(`${at} ${s.upgradeId} ${line}\n`);
  }

  finish(r: UpgradeResult): void {
    const colour = r.exitCode === 0 ? this.pal.green : this.pal.red;
    const at = this.io.isTTY ? '' : `${(this.io.now?.() ?? new Date()).toISOString()} `;
    const error = r.error ? ` — ${this.io.isTTY ? r.error : cut(r.error)}` : '';
    this.io.out(`${at}${r.workflowId} ended: ${colour(r.outcome)} (exit ${r.exitCode})${error}\n`);
  }
}
