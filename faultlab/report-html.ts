/**
 * The campaign as one self-contained HTML page: the impact matrix, the impact
 * counts per strategy, the overhead of I and E, the switchover pause, then the
 * tables of campaign.md. Charts are inline SVG built here; no script, no
 * external asset, so the page opens from file:// and anywhere it is copied.
 */
import type { CampaignResult, CampaignRow } from './campaign';
import { FAULT_TYPES, type FaultRecipe, type FaultType } from './catalog';
import { IMPACTS, imagoVerdict, type Impact } from './classify';
import type { Strategy } from './evidence';

/** Everything shown comes from runs (errors, replies, grants): escape all of it, text and attributes alike. */
export function esc(s: unknown): string {
  return String(s ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

export const FAILED = 'run failed';
export const COLOURS: Record<Impact | typeof FAILED, string> = {
  'full outage': '#7f0000', 'latent error': '#e0452b', 'security vulnerability': '#7b3fa0',
  'degraded throughput': '#f28c28', 'increased latency': '#f2d22e', none: '#2e8b57', [FAILED]: '#9e9e9e',
};
const DARK_TEXT = new Set<string>(['degraded throughput', 'increased latency', FAILED]);
const STRATEGIES: { id: Strategy; label: string; colour: string }[] = [
  { id: 'rolling', label: 'rolling upgrade', colour: '#6b7a8f' }, { id: 'imago', label: 'Imago', colour: '#2f6db5' },
];

const clip = (s: string, n: number) => (s.length > n ? `${s.slice(0, n - 1)}…` : s);
const firstLine = (s?: string) => (s ?? '').split('\n')[0];
const kindOf = (row: CampaignRow): Impact | typeof FAILED => row.classification?.impact ?? FAILED;
const caught = (row: CampaignRow) => (row.classification ? imagoVerdict(row.classification, row.fault.id) : '');
const text = (x: number, y: number, s: string, attrs = '') => `<text x="${x}" y="${y}" ${attrs}>${esc(s)}</text>`;

/** Faults in table order: control first, then by fault type, catalog order within a type. */
function faultsOf(r: CampaignResult): FaultRecipe[] {
  return [...new Map(r.rows.map((x) => [x.fault.id, x.fault])).values()].sort((a, b) => a.type - b.type);
}
const rowOf = (r: CampaignResult, f: FaultRecipe, s: Strategy) => r.rows.find((x) => x.fault.id === f.id && x.strategy === s);
const typeName = (t: FaultRecipe['type']) => (t ? `${t} · ${FAULT_TYPES[t as FaultType] ?? ''}` : 'control');

function legend(x: number, y: number, items: { label: string; colour: string }[]): string {
  return items.map((it, i) => `<rect class="swatch" x="${x + i * 150}" y="${y}" width="12" height="12" fill="${it.colour}"/>${text(x + i * 150 + 17, y + 10, it.label, 'font-size="11"')}`).join('');
}

function matrixChart(r: CampaignResult): string {
  const LABEL = 300, CW = 250, RH = 38, GH = 24, top = 30;
  const out: string[] = [];
  let y = top, cells = 0, lastType = -1;
  STRATEGIES.forEach((s, i) => out.push(text(LABEL + i * (CW + 6) + CW / 2, 20, s.label, 'text-anchor="middle" font-weight="bold"')));
  for (const f of faultsOf(r)) {
    if (f.type !== lastType) { out.push(text(4, y + 16, typeName(f.type), 'font-weight="bold" font-size="12" fill="#444"')); y += GH; lastType = f.type; }
    out.push(`<g>${text(14, y + 23, f.id, 'font-size="12"')}<title>${esc(f.description)}</title></g>`);
    STRATEGIES.forEach((s, i) => {
      const row = rowOf(r, f, s.id);
      if (!row) return;
      const kind = kindOf(row), c = row.classification, x = LABEL + i * (CW + 6);
      const more = c && c.impacts.length > 1 ? ` (+${c.impacts.length - 1})` : '';
      const line2 = c ? caught(row) : clip(firstLine(row.error), 40);
      const tip = c ? [`${s.label} × ${f.id}: ${c.impacts.join(', ')}`, ...c.reasons, caught(row)].filter(Boolean).join('\n') : `${s.label} × ${f.id}: run failed\n${firstLine(row.error)}`;
      const fg = DARK_TEXT.has(kind) ? '#111' : '#fff';
      out.push(`<g><title>${esc(tip)}</title><rect class="cell" data-fault="${esc(f.id)}" data-strategy="${s.id}" data-impact="${esc(kind)}" x="${x}" y="${y + 2}" width="${CW}" height="${RH - 4}" rx="3" fill="${COLOURS[kind]}"/>`
        + text(x + 8, y + (line2 ? 17 : 24), kind + more, `font-size="12" font-weight="bold" fill="${fg}"`)
        + (line2 ? text(x + 8, y + 31, clip(line2, 40), `font-size="11" fill="${fg}"`) : '') + '</g>');
      cells++;
    });
    y += RH;
  }
  const keys = [...IMPACTS, FAILED] as const;
  out.push(legend(4, y + 12, keys.slice(0, 4).map((k) => ({ label: k, colour: COLOURS[k] }))), legend(4, y + 32, keys.slice(4).map((k) => ({ label: k, colour: COLOURS[k] }))));
  const w = LABEL + 2 * (CW + 6), h = y + 52;
  return `<svg id="chart-matrix" data-cells="${cells}" xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}" viewBox="0 0 ${w} ${h}" font-family="sans-serif" role="img" aria-label="impact matrix">${out.join('')}</svg>`;
}

/** Runs per impact class and strategy, the control run left out (it measures the procedure, not a fault). */
export function impactCounts(r: CampaignResult): Record<Strategy, Record<string, number>> {
  const counts = { rolling: {}, imago: {} } as Record<Strategy, Record<string, number>>;
  for (const s of STRATEGIES) for (const k of [...IMPACTS, FAILED]) counts[s.id][k] = 0;
  for (const row of r.rows) if (row.fault.id !== 'none' && counts[row.strategy]) counts[row.strategy][kindOf(row)]++;
  return counts;
}

interface Bar { value: number; colour: string; top: string; attrs: string }

/** A vertical bar chart: groups of bars on a shared y axis from 0, the value written above each bar. */
function bars(x0: number, w: number, h: number, groups: { label: string[]; bars: Bar[] }[], yLabel: string, integer: boolean): { svg: string; n: number } {
  const left = x0 + 56, bottom = h - 48, plotW = w - 66, plotH = bottom - 30;
  const max = Math.max(1, ...groups.flatMap((g) => g.bars.map((b) => b.value)));
  const step = integer ? Math.max(1, Math.ceil(max / 5)) : Number((max / 5).toPrecision(1)) || 1;
  const ymax = Math.ceil(max / step) * step;
  const Y = (v: number) => Math.round((bottom - (v / ymax) * plotH) * 10) / 10;
  const out: string[] = [];
  for (let v = 0; v <= ymax + 1e-9; v += step) out.push(`<line x1="${left}" x2="${left + plotW}" y1="${Y(v)}" y2="${Y(v)}" stroke="#ddd"/>`, text(left - 6, Y(v) + 4, String(Number(v.toPrecision(6))), 'text-anchor="end" font-size="11"'));
  out.push(`<line x1="${left}" x2="${left}" y1="${bottom}" y2="${Y(ymax)}" stroke="#333"/><line x1="${left}" x2="${left + plotW}" y1="${bottom}" y2="${bottom}" stroke="#333"/>`);
  out.push(text(x0 + 12, (bottom + 30) / 2, yLabel, `font-size="12" text-anchor="middle" transform="rotate(-90 ${x0 + 12} ${(bottom + 30) / 2})"`));
  const gw = plotW / Math.max(1, groups.length);
  let n = 0;
  groups.forEach((g, gi) => {
    const bw = Math.min(40, (gw - 16) / Math.max(1, g.bars.length)), gx = left + gi * gw + (gw - bw * g.bars.length) / 2;
    g.bars.forEach((b, bi) => {
      const x = gx + bi * bw;
      out.push(`<rect class="bar" ${b.attrs} x="${(x + 1).toFixed(1)}" y="${Y(b.value)}" width="${(bw - 2).toFixed(1)}" height="${(bottom - Y(b.value)).toFixed(1)}" fill="${b.colour}"/>`, text(x + bw / 2, Y(b.value) - 4, b.top, 'text-anchor="middle" font-size="11"'));
      n++;
    });
    g.label.forEach((l, li) => out.push(text(left + gi * gw + gw / 2, bottom + 15 + li * 13, l, 'text-anchor="middle" font-size="11"')));
  });
  return { svg: out.join(''), n };
}

function impactChart(r: CampaignResult): string {
  const counts = impactCounts(r);
  const present = STRATEGIES.filter((s) => r.rows.some((x) => x.strategy === s.id));
  const groups = [...IMPACTS, FAILED].map((k) => ({
    label: k.split(' ').length > 1 ? [k.split(' ')[0], k.split(' ').slice(1).join(' ')] : [k],
    bars: present.map((s) => ({ value: counts[s.id][k], colour: s.colour, top: String(counts[s.id][k]), attrs: `data-strategy="${s.id}" data-impact="${esc(k)}" data-count="${counts[s.id][k]}"` })),
  }));
  const W = 900, H = 340;
  const b = bars(0, W, H - 24, groups, 'faults (control run excluded)', true);
  return `<svg id="chart-impacts" data-bars="${b.n}" xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" role="img" aria-label="faults per impact class">`
    + `${b.svg}${text(W / 2, H - 24, 'most severe impact of the run', 'text-anchor="middle" font-size="12"')}${legend(60, H - 16, present)}</svg>`;
}

interface Measure { throughput: number; p50: number; p99: number; errors: number }
interface OverheadPath { key: string; label: string; m: Measure; pct?: number; ms?: number }

/** Both shapes of `overhead`: {direct, throughI, pct: number} and the four-path one with per-path overheads, rounds and hardware. */
export function overheadPaths(o: unknown): { paths: OverheadPath[]; rounds?: number; hardware?: string } | null {
  if (!o || typeof o !== 'object') return null;
  const x = o as Record<string, any>;
  const isMeasure = (m: any): m is Measure => !!m && typeof m.throughput === 'number' && typeof m.p50 === 'number';
  const over = (v: unknown, k: string) => (typeof v === 'number' ? (k === 'I' ? v : undefined) : typeof (v as any)?.[k] === 'number' ? (v as any)[k] as number : undefined);
  const paths = ([['direct', 'direct to v1', ''], ['throughI', 'through I', 'I'], ['withE', 'with E', 'E'], ['throughIWithE', 'through I + E', 'IE']] as const)
    .filter(([k]) => isMeasure(x[k]))
    .map(([k, label, d]) => ({ key: k, label, m: x[k] as Measure, pct: d ? over(x.throughputOverheadPct, d) : undefined, ms: d ? over(x.p50OverheadMs, d) : undefined }));
  if (!paths.length) return null;
  return { paths, rounds: typeof x.rounds === 'number' ? x.rounds : undefined, hardware: typeof x.hardware === 'string' ? x.hardware : undefined };
}

const signed = (v: number, unit: string) => `${v > 0 ? '+' : v < 0 ? '−' : '±'}${Math.abs(v)}${unit}`;

function overheadChart(o: NonNullable<ReturnType<typeof overheadPaths>>): string {
  const colours = ['#6b7a8f', '#2f6db5', '#8c6bb1', '#c2185b'];
  // One group per path, so each bar carries its path's name and overhead underneath.
  const panel = (x0: number, metric: 'throughput' | 'p50', yLabel: string, over: (p: OverheadPath) => string) => bars(x0, 450, 300, o.paths.map((p, i) => ({
    label: [p.label, over(p)],
    bars: [{ value: p.m[metric], colour: colours[i], top: String(p.m[metric]), attrs: `data-metric="${metric}" data-path="${p.key}"` }],
  })), yLabel, false);
  const t = panel(0, 'throughput', 'req/s (median of rounds)', (p) => (p.pct === undefined ? '' : `overhead ${p.pct} %`));
  const l = panel(450, 'p50', 'p50 latency, ms', (p) => (p.ms === undefined ? '' : signed(p.ms, ' ms')));
  const foot = [o.rounds !== undefined ? `median over ${o.rounds} alternating rounds` : '', o.hardware ? `hardware: ${o.hardware}` : ''].filter(Boolean).join(' · ');
  return `<svg id="chart-overhead" data-bars="${t.n + l.n}" xmlns="http://www.w3.org/2000/svg" width="900" height="330" viewBox="0 0 900 330" font-family="sans-serif" role="img" aria-label="overhead of I and E">`
    + `${t.svg}${l.svg}${text(450, 318, foot, 'text-anchor="middle" font-size="11"')}</svg>`;
}

function cellHtml(row?: CampaignRow): string {
  if (!row) return '<td>—</td>';
  const kind = kindOf(row), c = row.classification;
  const body = c ? `<b>${esc(c.impact)}</b>${c.impacts.length > 1 ? ` (+ ${esc(c.impacts.slice(1).join(', '))})` : ''}${caught(row) ? `; ${esc(caught(row))}` : ''}`
    : `run failed: ${esc(clip(firstLine(row.error), 120))}`;
  return `<td><span class="sw" style="background:${COLOURS[kind]}"></span>${body}</td>`;
}

function evidenceRow(x: CampaignRow): string {
  const e = x.evidence, c = x.classification;
  if (!e || !c) return `<tr><td>${esc(x.fault.id)}</td><td>${x.strategy}</td><td colspan="6">run failed</td><td><details><summary>${esc(clip(firstLine(x.error), 120))}</summary><pre>${esc(x.error)}</pre></details></td></tr>`;
  const m = c.metrics;
  return `<tr><td>${esc(x.fault.id)}</td><td>${x.strategy}</td><td>${e.workload.requests}</td><td>${e.workload.errors}</td><td>${m.baselineP50}/${m.baselineP99} → ${m.windowP50}/${m.windowP99}</td>`
    + `<td>${e.ledger ? `${e.ledger.missing}/${e.ledger.altered}/${e.ledger.duplicated}` : '—'}</td><td>${e.probe ? `${e.probe.mismatches}/${e.probe.failed} of ${e.probe.checked}` : '—'}</td>`
    + `<td>${e.imago ? esc(`${e.imago.outcome}, ${e.imago.lastPhase}`) : ''}</td><td>${[...e.notes, ...c.reasons].map(esc).join('<br>')}</td></tr>`;
}

export function toHtml(r: CampaignResult): string {
  const o = overheadPaths(r.overhead);
  const minutes = (r.durationMs / 60000).toFixed(1);
  const parts = [
    `<h1>Fault-injection campaign</h1><p>Started ${esc(r.startedAt)}, ${minutes} min, ${r.rows.length} runs. Hover a cell for the classification's reasons.</p>`,
    `<h2>Impact on live traffic</h2>${matrixChart(r)}`,
    `<h2>Faults per impact class</h2>${impactChart(r)}`,
  ];
  if (o) {
    parts.push(`<h2>Overhead of the ingress interceptor I and the data-transfer engine E</h2>${overheadChart(o)}`,
      `<table><tr><th>path</th><th>req/s</th><th>p50 ms</th><th>p99 ms</th><th>errors</th><th>overhead</th></tr>${o.paths.map((p) => `<tr><td>${esc(p.label)}</td><td>${p.m.throughput}</td><td>${p.m.p50}</td><td>${p.m.p99}</td><td>${p.m.errors}</td><td>${p.pct === undefined ? '' : `${p.pct} % req/s`}${p.ms === undefined ? '' : `, ${esc(signed(p.ms, ' ms'))} p50`}</td></tr>`).join('')}</table>`);
  }
  if (r.switchover) {
    const s = r.switchover;
    parts.push(`<h2>Switchover pause (control run)</h2><p id="switchover">Cut-over total ${Number(s.totalMs).toFixed(1)} ms (hold ${Number(s.holdMs).toFixed(1)} ms); largest client latency during the upgrade window ${esc(s.maxClientLatencyMs)} ms.</p>`);
  }
  parts.push('<h2>Rolling upgrade vs Imago</h2><table id="side-by-side"><tr><th>type</th><th>fault</th><th>rolling upgrade</th><th>Imago</th></tr>'
    + faultsOf(r).map((f) => `<tr><td>${esc(typeName(f.type))}</td><td><code>${esc(f.id)}</code>: ${esc(f.description)}</td>${cellHtml(rowOf(r, f, 'rolling'))}${cellHtml(rowOf(r, f, 'imago'))}</tr>`).join('') + '</table>',
  '<h2>Evidence</h2><table id="evidence"><tr><th>fault</th><th>strategy</th><th>requests</th><th>failed</th><th>p50/p99 ms (base → window)</th><th>ledger m/a/d</th><th>probe wrong/failed</th><th>Imago outcome, last phase</th><th>notes</th></tr>'
    + r.rows.map(evidenceRow).join('') + '</table>');
  // The CSP forbids every fetch and script: the page can only show what is in it.
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<title>Fault-injection campaign ${esc(r.startedAt)}</title><style>body{font-family:sans-serif;margin:24px;max-width:1200px;color:#222}table{border-collapse:collapse;margin:8px 0 24px;font-size:13px}
td,th{border:1px solid #ccc;padding:4px 6px;vertical-align:top;text-align:left}th{background:#f3f3f3}pre{white-space:pre-wrap;max-width:600px}.sw{display:inline-block;width:10px;height:10px;margin-right:5px;border-radius:2px}svg{display:block;margin:8px 0}</style></head>
<body>${parts.join('\n')}</body></html>\n`;
}
