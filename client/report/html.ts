/**
 * The report page: one self-contained HTML file per upgrade. Tables and the
 * phase timeline are rendered here; the charts are drawn in the browser by
 * page.js with uPlot, whose JS and CSS are inlined from node_modules so the
 * file needs no network when it is opened (or archived as a CI artefact).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { UpgradeStatus } from '../../workflows/status';
import { formatDuration, formatMs, formatNumber, formatPercent } from '../output';
import { reportData, type ReportData } from './model';

const esc = (v: unknown) => String(v ?? '').replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
/** JSON inside <script>: '<' escaped so no string in the data can close the element. */
const scriptJson = (v: unknown) => JSON.stringify(v).replace(/</g, '\\u003c');
const iso = (ms: number) => new Date(ms).toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z');

function asset(rel: string): string {
  const file = rel.startsWith('uplot/') ? require.resolve(rel) : path.join(__dirname, rel);
  return fs.readFileSync(file, 'utf8');
}

const PHASE_COLOURS: Record<string, string> = {
  bootstrapping: '#8c8c8c', 'data-transfer': '#3b7dd8', testing: '#7a4fd0', 'awaiting-approval': '#d9a400',
  termination: '#e07b00', switchover: '#d83b3b', 'post-switchover': '#2e9e5b', 'rolling-back': '#b06a3e', completed: '#1f7a45',
  aborting: '#b0413e', aborted: '#b0413e', failed: '#b0413e', 'rolled-back': '#b06a3e',
};

/** Rough width of a label in the timeline's user units (12 px system-ui: about 7 units per character, rounded up). */
const labelWidth = (text: string) => text.length * 7 + 4;

/**
 * Where a bar's duration label goes, so it stays inside the chart: right of
 * the bar when it fits, else left of it (phases follow each other, so that
 * side of the row is empty), else inside the bar, in white.
 */
export function durationLabelAt(x0: number, x1: number, text: string, left: number, right: number): { x: number; anchor: 'start' | 'end'; inside: boolean } {
  const w = labelWidth(text);
  if (x1 + 6 + w <= right) return { x: x1 + 6, anchor: 'start', inside: false };
  if (x0 - 6 - w >= left) return { x: x0 - 6, anchor: 'end', inside: false };
  return { x: Math.max(left + w, x1 - 6), anchor: 'end', inside: true };
}

function timeline(d: ReportData): string {
  if (d.timings.length === 0) return '<p class="muted">No phase was reached.</p>';
  const t0 = Math.min(...d.timings.map((t) => t.startedAt));
  const t1 = Math.max(...d.timings.map((t) => t.endedAt), t0 + 1);
  const W = 1000, row = 22, left = 150, right = W - 4;
  const x = (t: number) => left + ((t - t0) / (t1 - t0)) * (right - left);
  const bars = d.timings.map((t, i) => {
    const y = i * row + 4;
    const x0 = x(t.startedAt);
    const w = Math.max(2, x(t.endedAt) - x0);
    const dur = formatDuration(t.endedAt - t.startedAt) + (t.open ? ' (ongoing)' : '');
    const at = durationLabelAt(x0, x0 + w, dur, left, right);
    return `<text x="${left - 8}" y="${y + 13}" text-anchor="end">${esc(t.phase)}</text>`
      + `<rect x="${x0.toFixed(1)}" y="${y}" width="${w.toFixed(1)}" height="${row - 8}" fill="${PHASE_COLOURS[t.phase] ?? '#555'}"><title>${esc(t.phase)}: ${esc(iso(t.startedAt))}, ${esc(dur)}</title></rect>`
      + `<text x="${at.x.toFixed(1)}" y="${y + 13}" text-anchor="${at.anchor}" class="dur${at.inside ? ' inside' : ''}">${esc(dur)}</text>`;
  }).join('');
  return `<svg class="timeline" viewBox="0 0 ${W} ${d.timings.length * row + 8}" role="img" aria-label="phase timeline">${bars}</svg>`
    + `<p class="muted">From ${esc(iso(t0))} to ${esc(iso(t1))} (${esc(formatDuration(t1 - t0))}).</p>`;
}

function chartBox(id: string, title: string, has: boolean, note = ''): string {
  return `<figure><figcaption>${esc(title)}</figcaption>${has ? `<div class="chart" id="${id}"></div>` : '<p class="muted">No data recorded.</p>'}${note ? `<p class="muted">${note}</p>` : ''}</figure>`;
}

/** A value from the engine's report, for people: numbers with separators and at most 3 decimals. */
const human = (v: unknown): string => (typeof v === 'number' ? formatNumber(v, Number.isInteger(v) ? 0 : 3) : typeof v === 'string' ? v : JSON.stringify(v));

/** JSON for people: every fractional number rounded to 3 decimals (the data's own strings are left as they are). */
const prettyJson = (v: unknown) => JSON.stringify(v, (_k, x) => (typeof x === 'number' && !Number.isInteger(x) ? Math.round(x * 1000) / 1000 : x), 2);

function compareSection(d: ReportData): string {
  const c = d.compare;
  const raw = c.raw;
  const endpoints = raw?.endpoints ?? [];
  // Examples: per field, regressions first.
  const examples = endpoints.flatMap((e) => e.fields.filter((f) => f.classification === 'regression').flatMap((f) => f.examples)).slice(0, 5);
  const verdict = c.verdict === 'pass' ? '<span class="ok">pass</span>' : c.verdict === 'fail' ? '<span class="bad">fail</span>' : '<span class="muted">pending</span>';
  const facts: Array<[string, string]> = [
    ['verdict', verdict],
    ['samples', esc(c.samples === null ? '–' : formatNumber(c.samples))],
    ['mismatch rate', esc(formatPercent(c.mismatchRate, 2))],
    ...(raw ? [['allowed rate', esc(formatPercent(raw.maxRegressionRate, 2))] as [string, string]] : []),
    ...(raw ? (['compared', 'noiseSamples', 'dropped', 'skipped'] as const).map((k) => [k, esc(human(raw[k]))] as [string, string]) : []),
  ];
  const perEndpoint = endpoints.length
    ? `<table><tr><th>endpoint</th><th>samples</th><th>regressions</th><th>rate</th><th>server errors</th></tr>${endpoints.map((e) =>
      `<tr><td>${esc(e.endpoint)}</td><td class="num">${esc(human(e.samples))}</td><td class="num">${esc(human(e.regressions))}</td>`
      + `<td class="num">${esc(formatPercent(e.regressionRate, 2))}</td><td class="num">${esc(human(e.serverErrors))}</td></tr>`).join('')}</table>`
    : '';
  const diffs = examples.length
    ? examples.map((e, i) => `<details${i === 0 ? ' open' : ''}><summary>example ${i + 1}</summary><pre>${esc(prettyJson(e))}</pre></details>`).join('')
    : '<p class="muted">No example differences.</p>';
  const gate = d.gate
    ? `<p>Switchover gate: ${d.gate.pass ? '<span class="ok">pass</span>' : `<span class="bad">fail</span> — ${esc(d.gate.reasons.join('; '))}`}</p>`
    : '<p class="muted">The switchover gate was not evaluated.</p>';
  return `${gate}<table class="facts">${facts.map(([k, v]) => `<tr><th>${k}</th><td>${v}</td></tr>`).join('')}</table>${perEndpoint}${diffs}`;
}

function testsSection(d: ReportData): string {
  if (d.tests.length === 0) return '<p class="muted">No tests ran.</p>';
  return `<table><tr><th>test</th><th>result</th><th>duration</th><th>exit</th><th>output</th></tr>${d.tests.map((t) =>
    `<tr><td>${esc(t.name)}</td><td>${t.passed ? '<span class="ok">passed</span>' : '<span class="bad">failed</span>'}</td><td class="num">${esc(formatDuration(t.durationMs))}</td>`
    + `<td>${esc(t.exitCode ?? '–')}</td><td><pre>${esc(t.output.slice(-2000))}</pre></td></tr>`).join('')}</table>`;
}

function verificationSection(d: ReportData): string {
  const v = d.verification;
  if (!v) return '<p class="muted">Verification did not run.</p>';
  const head = `<p>${v.differences === 0 ? '<span class="ok">no differences</span>' : `<span class="bad">${esc(formatNumber(v.differences))} difference(s)</span>`} in ${esc(formatNumber(v.checked))} rows checked (convert(Uold) vs Unew).</p>`;
  return head + (v.examples.length ? `<pre>${esc(prettyJson(v.examples.slice(0, 10)))}</pre>` : '');
}

function cutoverSection(d: ReportData): string {
  if (d.cutovers.length === 0) return '<p class="muted">No cut-over was attempted.</p>';
  const cols = ['holdMs', 'drainMs', 'flushMs', 'verifyMs', 'smokeMs', 'switchMs', 'recordMs', 'providerMs', 'releaseMs', 'totalMs'] as const;
  return `<table><tr><th>attempt</th><th>mode</th><th>switched</th>${cols.map((c) => `<th>${c.replace('Ms', '')}</th>`).join('')}<th>rows verified</th><th>error</th></tr>${d.cutovers.map((c) =>
    `<tr><td class="num">${esc(c.attempt)}</td><td>${esc(c.mode ?? '')}</td><td>${c.switched ? '<span class="ok">yes</span>' : '<span class="bad">no</span>'}</td>`
    + `${cols.map((k) => `<td class="num">${esc(formatMs(c[k] ?? 0))}</td>`).join('')}`
    + `<td class="num">${esc(formatNumber(c.changedRowsVerified))}</td><td>${esc(c.error ?? '')}</td></tr>`).join('')}</table>`
    + '<p class="muted">mode: fresh (hold → release), forward (finished a switch an earlier attempt committed), restored (back on Uold), refused (the dry run failed; nobody held). '
    + "hold: new requests held at every interceptor; drain: in-flight ones finished; flush: Unew caught up with Uold's final position; verify: rows changed since the last verification; smoke: the smoke test's request to Unew; "
    + 'switch, record (the point of no return, recorded with the workflow), provider (e.g. the load balancer) and release: traffic to Unew. Total is the pause clients saw.</p>';
}

// Fits a 1280 px window: the body is at most 1100 px wide, and anything long
// (test output, error text, JSON examples, ids) wraps inside its box instead
// of widening the page.
const CSS = `*{box-sizing:border-box}body{font:14px/1.45 system-ui,sans-serif;margin:24px auto;max-width:1100px;color:#1d1d1f;padding:0 16px;overflow-wrap:anywhere}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #ddd;padding-bottom:4px}
.muted{color:#777}.ok{color:#1f7a45;font-weight:600}.bad{color:#b0413e;font-weight:600}
table{border-collapse:collapse;margin:8px 0;max-width:100%}td,th{border:1px solid #ddd;padding:3px 8px;text-align:left;vertical-align:top}
td.num{text-align:right;white-space:nowrap;font-variant-numeric:tabular-nums}
table.facts th{background:#f6f6f6}pre{margin:0;white-space:pre-wrap;overflow-wrap:anywhere;font-size:12px;max-height:240px;overflow-y:auto}
figure{margin:12px 0}figcaption{font-weight:600;margin-bottom:4px}.chart{width:100%;overflow:hidden}
svg.timeline{width:100%;font-size:12px}svg.timeline .dur{fill:#555}svg.timeline .dur.inside{fill:#fff}
.summary span{display:inline-block;margin-right:18px}`;

/** The whole page for one upgrade's status. */
export function renderReport(status: UpgradeStatus, opts: { url?: string; now?: number } = {}): string {
  const d = reportData(status, opts);
  const outcomeClass = d.outcome === 'completed' ? 'ok' : d.outcome === 'running' ? 'muted' : 'bad';
  const pauseNote = d.pause ? `Shaded: ${esc(d.pause.label)}.` : '';
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Imago report: ${esc(d.upgradeId)}</title>
<meta name="viewport" content="width=device-width,initial-scale=1">
<style>${asset('uplot/dist/uPlot.min.css')}</style><style>${CSS}</style></head>
<body>
<h1>Upgrade ${esc(d.upgradeId)}</h1>
<p class="summary"><span>${esc(d.system)} ${esc(d.from)} → ${esc(d.to)}</span><span>provider ${esc(d.provider)}</span>
<span>phase ${esc(d.phase)}</span><span>outcome <span class="${outcomeClass}">${esc(d.outcome)}</span></span>
${d.url ? `<span><a href="${esc(d.url)}">Temporal web UI</a></span>` : ''}<span class="muted">generated ${esc(iso(d.generatedAt))}</span></p>
${d.abortReason ? `<p class="bad">Reason: ${esc(d.abortReason)}</p>` : ''}${d.lastError ? `<p class="bad">Last error: ${esc(d.lastError)}</p>` : ''}
<h2>Phases</h2>${timeline(d)}
<h2>Clients during the upgrade</h2>
${chartBox('chart-throughput', 'Client throughput (requests/s, errors/s)', d.ingress.x.length > 1, pauseNote)}
${chartBox('chart-latency', 'Client latency (ms, mean and max per bucket)', d.ingress.x.length > 1, pauseNote)}
<h2>Data transfer</h2>
${chartBox('chart-transfer', 'Copy progress (%) and lag of Unew behind Uold (ms)', d.transfer.x.length > 1)}
<h2>Compare: Uold vs Unew on mirrored requests</h2>${compareSection(d)}
<h2>Tests against Unew</h2>${testsSection(d)}
<h2>Verification</h2>${verificationSection(d)}
<h2>Cut-over</h2>${cutoverSection(d)}
<script type="application/json" id="report-data">${scriptJson(d)}</script>
<script>${asset('uplot/dist/uPlot.iife.min.js')}</script>
<script>${asset('page.js')}</script>
</body></html>
`;
}
