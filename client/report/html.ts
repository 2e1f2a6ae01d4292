/**
 * The report page: one self-contained HTML file per upgrade. Tables and the
 * phase timeline are rendered here; the charts are drawn in the browser by
 * page.js with uPlot, whose JS and CSS are inlined from node_modules so the
 * file needs no network when it is opened (or archived as a CI artefact).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { UpgradeStatus } from '../../workflows/status';
import { formatDuration } from '../output';
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
  termination: '#e07b00', switchover: '#d83b3b', 'post-switchover': '#2e9e5b', completed: '#1f7a45',
  aborting: '#b0413e', aborted: '#b0413e', failed: '#b0413e', 'rolled-back': '#b06a3e',
};

function timeline(d: ReportData): string {
  if (d.timings.length === 0) return '<p class="muted">No phase was reached.</p>';
  const t0 = Math.min(...d.timings.map((t) => t.startedAt));
  const t1 = Math.max(...d.timings.map((t) => t.endedAt), t0 + 1);
  const W = 1000, row = 22, left = 150;
  const x = (t: number) => left + ((t - t0) / (t1 - t0)) * (W - left - 10);
  const bars = d.timings.map((t, i) => {
    const y = i * row + 4;
    const w = Math.max(2, x(t.endedAt) - x(t.startedAt));
    const dur = formatDuration(t.endedAt - t.startedAt) + (t.open ? ' (ongoing)' : '');
    return `<text x="${left - 8}" y="${y + 13}" text-anchor="end">${esc(t.phase)}</text>`
      + `<rect x="${x(t.startedAt).toFixed(1)}" y="${y}" width="${w.toFixed(1)}" height="${row - 8}" fill="${PHASE_COLOURS[t.phase] ?? '#555'}"><title>${esc(t.phase)}: ${esc(iso(t.startedAt))}, ${esc(dur)}</title></rect>`
      + `<text x="${Math.min(x(t.startedAt) + w + 6, W - 80).toFixed(1)}" y="${y + 13}" class="dur">${esc(dur)}</text>`;
  }).join('');
  return `<svg class="timeline" viewBox="0 0 ${W} ${d.timings.length * row + 8}" role="img" aria-label="phase timeline">${bars}</svg>`
    + `<p class="muted">From ${esc(iso(t0))} to ${esc(iso(t1))} (${esc(formatDuration(t1 - t0))}).</p>`;
}

function chartBox(id: string, title: string, has: boolean, note = ''): string {
  return `<figure><figcaption>${esc(title)}</figcaption>${has ? `<div class="chart" id="${id}"></div>` : '<p class="muted">No data recorded.</p>'}${note ? `<p class="muted">${note}</p>` : ''}</figure>`;
}

function compareSection(d: ReportData): string {
  const c = d.compare;
  const raw = (c.raw ?? {}) as Record<string, unknown>;
  const examples = Array.isArray(raw.examples) ? raw.examples.slice(0, 5) : [];
  const verdict = c.verdict === 'pass' ? '<span class="ok">pass</span>' : c.verdict === 'fail' ? '<span class="bad">fail</span>' : '<span class="muted">pending</span>';
  const facts = [
    ['verdict', verdict],
    ['samples', esc(c.samples ?? '–')],
    ['mismatch rate', c.mismatchRate === null ? '–' : `${(c.mismatchRate * 100).toFixed(2)} %`],
    ...['threshold', 'mismatches', 'noise'].filter((k) => raw[k] !== undefined).map((k) => [k, esc(raw[k])]),
  ];
  const diffs = examples.length
    ? examples.map((e, i) => `<details${i === 0 ? ' open' : ''}><summary>example ${i + 1}</summary><pre>${esc(JSON.stringify(e, null, 2))}</pre></details>`).join('')
    : '<p class="muted">No example differences.</p>';
  const gate = d.gate
    ? `<p>Switchover gate: ${d.gate.pass ? '<span class="ok">pass</span>' : `<span class="bad">fail</span> — ${esc(d.gate.reasons.join('; '))}`}</p>`
    : '<p class="muted">The switchover gate was not evaluated.</p>';
  return `${gate}<table class="facts">${facts.map(([k, v]) => `<tr><th>${k}</th><td>${v}</td></tr>`).join('')}</table>${diffs}`;
}

function testsSection(d: ReportData): string {
  if (d.tests.length === 0) return '<p class="muted">No tests ran.</p>';
  return `<table><tr><th>test</th><th>result</th><th>duration</th><th>exit</th><th>output</th></tr>${d.tests.map((t) =>
    `<tr><td>${esc(t.name)}</td><td>${t.passed ? '<span class="ok">passed</span>' : '<span class="bad">failed</span>'}</td><td>${esc(formatDuration(t.durationMs))}</td>`
    + `<td>${esc(t.exitCode ?? '–')}</td><td><pre>${esc(t.output.slice(-2000))}</pre></td></tr>`).join('')}</table>`;
}

function verificationSection(d: ReportData): string {
  const v = d.verification;
  if (!v) return '<p class="muted">Verification did not run.</p>';
  const head = `<p>${v.differences === 0 ? '<span class="ok">no differences</span>' : `<span class="bad">${esc(v.differences)} difference(s)</span>`} in ${esc(v.checked)} rows checked (convert(Uold) vs Unew).</p>`;
  return head + (v.examples.length ? `<pre>${esc(JSON.stringify(v.examples.slice(0, 10), null, 2))}</pre>` : '');
}

function cutoverSection(d: ReportData): string {
  if (d.cutovers.length === 0) return '<p class="muted">No cut-over was attempted.</p>';
  const cols = ['holdMs', 'drainMs', 'flushMs', 'verifyMs', 'switchMs', 'releaseMs', 'totalMs'] as const;
  return `<table><tr><th>attempt</th><th>switched</th>${cols.map((c) => `<th>${c.replace('Ms', '')}</th>`).join('')}<th>rows verified</th><th>error</th></tr>${d.cutovers.map((c) =>
    `<tr><td>${c.attempt}</td><td>${c.switched ? '<span class="ok">yes</span>' : '<span class="bad">no</span>'}</td>${cols.map((k) => `<td>${esc(c[k])} ms</td>`).join('')}`
    + `<td>${esc(c.changedRowsVerified)}</td><td>${esc(c.error ?? '')}</td></tr>`).join('')}</table>`;
}

const CSS = `body{font:14px/1.45 system-ui,sans-serif;margin:24px auto;max-width:1100px;color:#1d1d1f;padding:0 16px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #ddd;padding-bottom:4px}
.muted{color:#777}.ok{color:#1f7a45;font-weight:600}.bad{color:#b0413e;font-weight:600}
table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #ddd;padding:3px 8px;text-align:left;vertical-align:top}
table.facts th{background:#f6f6f6}pre{margin:0;white-space:pre-wrap;font-size:12px;max-height:240px;overflow:auto}
figure{margin:12px 0}figcaption{font-weight:600;margin-bottom:4px}.chart{width:100%}
svg.timeline{width:100%;font-size:12px}svg.timeline .dur{fill:#555}
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
