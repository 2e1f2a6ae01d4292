/**
 * The campaign's HTML report from a synthetic result (no run, no server): the
 * charts draw what the rows say, everything shown is escaped, and headless
 * Chromium renders the page.
 */
import { strict as assert } from 'node:assert';
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { CampaignResult, CampaignRow } from '../../faultlab/campaign';
import { faultById } from '../../faultlab/catalog';
import type { Classification, Impact } from '../../faultlab/classify';
import type { RunEvidence, Strategy } from '../../faultlab/evidence';
import { toHtml } from '../../faultlab/report-html';

const EVIL = `</script><img src=x onerror=alert(1)>"'&`;
const CHROMIUM = '/usr/bin/chromium';
// The palette the report promises (docs and readers rely on it), written out rather than imported.
const PALETTE: Record<string, string> = {
  'full outage': '#7f0000', 'latent error': '#e0452b', 'security vulnerability': '#7b3fa0',
  'degraded throughput': '#f28c28', 'increased latency': '#f2d22e', none: '#2e8b57', 'run failed': '#9e9e9e',
};

function evidence(fault: string, strategy: Strategy, notes: string[] = []): RunEvidence {
  return {
    strategy, fault, type: faultById(fault).type, applied: 'synthetic', durationMs: 20_000, upgradeStartMs: 3_000,
    workload: { requests: 800, errors: 3, rejected: 0, throughput: 40, elapsedMs: 20_000, byStatus: { '200': 797, '500': 3 }, p50: 4, p99: 30 },
    timeline: [], ledger: { checked: 100, missing: 0, duplicated: 0, altered: 0 }, probe: null, grants: null,
    imago: strategy === 'imago' ? { outcome: 'aborted', switched: false, lastPhase: 'bootstrapping', lastError: null, gate: null, testsFailed: [], compare: null, verificationDifferences: null, cutover: null } : null,
    notes,
  };
}

function row(fault: string, strategy: Strategy, impacts: Impact[], opts: { caughtBy?: string | false; reasons?: string[]; notes?: string[] } = {}): CampaignRow {
  const classification: Classification = {
    impact: impacts[0], impacts, reasons: opts.reasons ?? [`synthetic: ${impacts.join(', ')}`],
    metrics: { baselineP50: 4, baselineP99: 30, windowP50: 5, windowP99: 40, windowErrorRate: 0, worstSecondErrorRate: 0 },
  };
  if (strategy === 'imago') {
    classification.caughtBeforeSwitchover = !!opts.caughtBy;
    if (opts.caughtBy) classification.caughtBy = opts.caughtBy;
  }
  return { fault: faultById(fault), strategy, evidence: evidence(fault, strategy, opts.notes), classification };
}

// The overhead in its new four-path shape; cast because campaign.ts may still declare the two-path one.
const OVERHEAD = {
  rounds: 3, hardware: 'Intel Xeon test, 2 cores, 23.5 GiB',
  direct: { throughput: 1200, p50: 5.1, p99: 20, errors: 0 }, throughI: { throughput: 1100, p50: 5.6, p99: 22, errors: 0 },
  withE: { throughput: 1150, p50: 5.3, p99: 25, errors: 0 }, throughIWithE: { throughput: 1020, p50: 6, p99: 27, errors: 1 },
  throughputOverheadPct: { I: 8.3, E: 4.2, IE: 15 }, p50OverheadMs: { I: 0.5, E: 0.2, IE: 0.9 },
} as unknown as CampaignResult['overhead'];

const OVERHEAD_OLD = { direct: { throughput: 1200, p50: 5.1, p99: 20, errors: 0 }, throughI: { throughput: 1100, p50: 5.6, p99: 22, errors: 0 } };

const RESULT: CampaignResult = {
  startedAt: '2025-01-01T00:00:00.000Z', durationMs: 600_000, overhead: OVERHEAD, switchover: { totalMs: 41.25, holdMs: 12.5, maxClientLatencyMs: 88 },
  rows: [
    row('none', 'rolling', ['none']), row('none', 'imago', ['none'], { caughtBy: false }),
    // Listed out of type order: the matrix regroups them.
    row('privilege-excessive', 'rolling', ['security vulnerability']), row('privilege-excessive', 'imago', ['security vulnerability'], { caughtBy: false }),
    row('db-host-typo', 'rolling', ['full outage', 'degraded throughput']), row('db-host-typo', 'imago', ['none'], { caughtBy: 'health check' }),
    row('schema-step-omitted', 'rolling', ['latent error', 'degraded throughput']), row('schema-step-omitted', 'imago', ['none'], { caughtBy: 'schema install' }),
    row('query-timeout-tiny', 'rolling', ['degraded throughput']), row('query-timeout-tiny', 'imago', ['degraded throughput'], { caughtBy: false }),
    row('timezone-wrong', 'rolling', ['latent error']), row('timezone-wrong', 'imago', ['latent error'], { caughtBy: false, reasons: [`probe: 3/50 wrong replies (${EVIL})`], notes: [EVIL] }),
    { fault: faultById('library-missing'), strategy: 'rolling', error: `Error: ${EVIL}\n    at runRolling (faultlab/rolling.ts:1:1)` },
    row('library-missing', 'imago', ['none'], { caughtBy: `health check ${EVIL}` }),
    row('index-missing', 'rolling', ['increased latency']), row('index-missing', 'imago', ['increased latency'], { caughtBy: false }),
  ],
};

const svg = (html: string, id: string) => {
  const m = new RegExp(`<svg id="${id}" data-(?:cells|bars)="(\\d+)"[\\s\\S]*?</svg>`).exec(html);
  assert.ok(m, `${id} drawn`);
  return { body: m[0], n: Number(m[1]) };
};
const attrs = (tag: string) => Object.fromEntries([...tag.matchAll(/([\w-]+)="([^"]*)"/g)].map((m) => [m[1], m[2]]));

describe('faultlab: the HTML report', function () {
  this.timeout(60_000);
  const html = toHtml(RESULT);

  it('matrix: one cell per (fault, strategy), coloured by its most severe impact, control first then by type', () => {
    const { body, n } = svg(html, 'chart-matrix');
    const cells = [...body.matchAll(/<rect class="cell"[^>]*>/g)].map((m) => attrs(m[0]));
    assert.equal(n, RESULT.rows.length);
    assert.equal(cells.length, RESULT.rows.length);
    for (const r of RESULT.rows) {
      const found = cells.filter((c) => c['data-fault'] === r.fault.id && c['data-strategy'] === r.strategy);
      assert.equal(found.length, 1, `${r.strategy} × ${r.fault.id}`);
      const impact = r.classification?.impact ?? 'run failed';
      assert.equal(found[0]['data-impact'], impact);
      assert.equal(found[0].fill, PALETTE[impact], `${r.strategy} × ${r.fault.id} is ${impact}`);
    }
    assert.deepEqual([...new Set(cells.map((c) => c['data-fault']))],
      ['none', 'db-host-typo', 'schema-step-omitted', 'query-timeout-tiny', 'timezone-wrong', 'library-missing', 'privilege-excessive', 'index-missing']);
    for (const t of ['1 · simple configuration / procedural error', '4 · data-access error', 'caught by health check', 'caught by schema install', 'not caught', 'full outage (+1)']) assert.ok(body.includes(t), t);
    assert.match(body, /<title>rolling upgrade × db-host-typo: full outage, degraded throughput\nsynthetic/);
    for (const k of Object.keys(PALETTE)) assert.ok(body.includes(`>${k}</text>`), `legend: ${k}`);
  });

  it('impact counts: the bars are the rows counted per strategy and impact, control excluded', () => {
    const { body, n } = svg(html, 'chart-impacts');
    const bars = [...body.matchAll(/<rect class="bar"[^>]*>/g)].map((m) => attrs(m[0]));
    assert.equal(n, 14);
    assert.equal(bars.length, 14);
    const expected = new Map<string, number>();
    for (const r of RESULT.rows.filter((x) => x.fault.id !== 'none')) {
      const k = `${r.strategy}/${r.classification?.impact ?? 'run failed'}`;
      expected.set(k, (expected.get(k) ?? 0) + 1);
    }
    for (const b of bars) assert.equal(Number(b['data-count']), expected.get(`${b['data-strategy']}/${b['data-impact']}`) ?? 0, `${b['data-strategy']}/${b['data-impact']}`);
    assert.equal(bars.reduce((s, b) => s + Number(b['data-count']), 0), 14);
    // Heights are proportional to the counts: rolling has two latent errors and one full outage.
    const h = (s: string, k: string) => Number(bars.find((b) => b['data-strategy'] === s && b['data-impact'] === k)!.height);
    assert.ok(Math.abs(h('rolling', 'latent error') - 2 * h('rolling', 'full outage')) < 0.3);
    assert.ok(h('rolling', 'full outage') > 10);
    assert.equal(h('imago', 'full outage'), 0);
    assert.match(body, />faults \(control run excluded\)</);
  });

  it('overhead: four paths per metric with their overheads, rounds and hardware; both shapes; omitted when null', () => {
    const { body, n } = svg(html, 'chart-overhead');
    assert.equal(n, 8);
    for (const metric of ['throughput', 'p50']) {
      const paths = [...body.matchAll(new RegExp(`<rect class="bar" data-metric="${metric}" data-path="(\\w+)"`, 'g'))].map((m) => m[1]);
      assert.deepEqual(paths, ['direct', 'throughI', 'withE', 'throughIWithE'], metric);
    }
    for (const t of ['overhead 8.3 %', 'overhead 15 %', '+0.9 ms', 'median over 3 alternating rounds', 'Intel Xeon test, 2 cores, 23.5 GiB', '>1020<']) assert.ok(body.includes(t), t);
    const old = toHtml({ ...RESULT, overhead: { direct: OVERHEAD_OLD.direct, throughI: OVERHEAD_OLD.throughI, throughputOverheadPct: 8.3, p50OverheadMs: 0.5 } as unknown as CampaignResult['overhead'] });
    assert.equal(svg(old, 'chart-overhead').n, 4);
    assert.ok(old.includes('overhead 8.3 %'));
    const none = toHtml({ ...RESULT, overhead: null, switchover: null });
    assert.ok(!none.includes('chart-overhead') && !none.includes('Switchover pause'));
    assert.match(html, /Cut-over total 41\.3 ms \(hold 12\.5 ms\); largest client latency during the upgrade window 88 ms/);
  });

  it('tables and charts escape what runs produced: a hostile error, reason or note stays text', () => {
    assert.ok(!html.includes('<img'), 'no markup injected');
    assert.ok(!/<script/i.test(html), 'no script at all');
    const escaped = '&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;&quot;&#39;&amp;';
    assert.ok(html.split(escaped).length - 1 >= 5, 'error (summary, stack), reason (tooltip, evidence), note, caught-by');
    assert.match(html, /<table id="side-by-side">[\s\S]*typo in the database host name \(&#39;localhots&#39;\)/);
    assert.match(html, /<table id="evidence">[\s\S]*<td>timezone-wrong<\/td><td>imago<\/td><td>800<\/td><td>3<\/td><td>4\/30 → 5\/40<\/td>/);
  });

  it('renders in headless Chromium: the three charts are in the DOM and the page is drawn', async function () {
    if (!fs.existsSync(CHROMIUM)) this.skip();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'faultlab-html-'));
    try {
      const file = path.join(dir, 'campaign.html');
      fs.writeFileSync(file, html);
      const run = (args: string[]) => new Promise<string>((resolve, reject) => execFile(CHROMIUM, ['--headless', '--no-sandbox', '--disable-gpu',
        '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', `--user-data-dir=${path.join(dir, 'profile')}`,
        ...args, `file://${file}`], { timeout: 45_000, maxBuffer: 16 * 1024 * 1024 }, (err, out) => (err ? reject(err) : resolve(out))));
      const dom = await run(['--dump-dom']);
      for (const id of ['chart-matrix', 'chart-impacts', 'chart-overhead']) assert.match(dom, new RegExp(`<svg id="${id}"`), id);
      assert.equal((dom.match(/<rect class="cell"/g) ?? []).length, RESULT.rows.length);
      assert.ok(!/<img/i.test(dom), 'the parsed page holds no injected element');
      const png = path.join(dir, 'page.png');
      await run([`--screenshot=${png}`, '--window-size=1200,2400', '--hide-scrollbars']);
      assert.ok(fs.statSync(png).size > 20_000, `screenshot of ${fs.statSync(png).size} bytes`);
    } finally { fs.rmSync(dir, { recursive: true, force: true }); }
  });
});
