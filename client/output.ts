/**
 * How the CLI writes: to an Io (process streams in production, buffers in
 * tests), colour only on a TTY and never with NO_COLOR, JSON when asked.
 */
export interface Io {
  out(text: string): void;
  err(text: string): void;
  /** stdout is a terminal: redraw views in place, use colour (unless NO_COLOR). */
  isTTY: boolean;
  env: NodeJS.ProcessEnv;
  /** Stops long-running commands (watch, worker) on SIGINT/SIGTERM. */
  signal?: AbortSignal;
  now?: () => Date;
}

export function processIo(signal?: AbortSignal): Io {
  return {
    out: (t) => { process.stdout.write(t); },
    err: (t) => { process.stderr.write(t); },
    isTTY: !!process.stdout.isTTY,
    env: process.env,
    signal,
  };
}

export type Paint = (text: string) => string;
export interface Palette { bold: Paint; dim: Paint; red: Paint; green: Paint; yellow: Paint; cyan: Paint }

const sgr = (open: number, close: number): Paint => (t) => `\x1b[${open}m${t}\x1b[${close}m`;
const plain: Paint = (t) => t;

/** https://no-color.org: any non-empty NO_COLOR disables colour. */
export function palette(io: Pick<Io, 'isTTY' | 'env'>): Palette {
  const on = io.isTTY && !io.env.NO_COLOR && io.env.TERM !== 'dumb';
  if (!on) return { bold: plain, dim: plain, red: plain, green: plain, yellow: plain, cyan: plain };
  return { bold: sgr(1, 22), dim: sgr(2, 22), red: sgr(31, 39), green: sgr(32, 39), yellow: sgr(33, 39), cyan: sgr(36, 39) };
}

export function printJson(io: Io, value: unknown): void { io.out(`${JSON.stringify(value, null, 2)}\n`); }

/** Left-aligned columns, for `imago list`. */
export function table(rows: string[][]): string {
  if (rows.length === 0) return '';
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]))).join('  ').trimEnd()).join('\n') + '\n';
}

export function formatDuration(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return '–';
  if (ms < 1_000) return `${Math.round(ms)}ms`;
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m`;
}

/** Numbers for people: en-US digits with thousands separators, at most `decimals` decimals. */
export function formatNumber(n: number | null | undefined, decimals = 0): string {
  if (n === null || n === undefined || !Number.isFinite(n)) return '–';
  return new Intl.NumberFormat('en-US', { minimumFractionDigits: decimals, maximumFractionDigits: decimals }).format(n);
}

/** A short duration in milliseconds with one decimal: "5.8 ms", "1,234.5 ms". */
export function formatMs(ms: number | null | undefined): string {
  return ms === null || ms === undefined || !Number.isFinite(ms) ? '–' : `${formatNumber(ms, 1)} ms`;
}

/** A ratio as a percentage: 0.0042 → "0.42%" (decimals 2). */
export function formatPercent(ratio: number | null | undefined, decimals = 1): string {
  return ratio === null || ratio === undefined || !Number.isFinite(ratio) ? '–' : `${formatNumber(ratio * 100, decimals)}%`;
}

export function formatCount(n: number): string {
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)}M`;
  if (n >= 1e4) return `${(n / 1e3).toFixed(0)}k`;
  return String(Math.round(n));
}

/** A fixed-width bar: [#########-----------] */
export function progressBar(percent: number, width = 24): string {
  const p = Math.max(0, Math.min(100, percent));
  const full = Math.round((p / 100) * width);
  return `[${'#'.repeat(full)}${'-'.repeat(width - full)}]`;
}
