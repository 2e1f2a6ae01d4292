import { strict as assert } from 'node:assert';
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { renderReport } from '../../client/report/html';
import { pauseWindow, reportData } from '../../client/report/model';
import { formatMs } from '../../client/output';
import puppeteer, { type Browser } from 'puppeteer-core';
import type { UpgradeStatus } from '../../workflows/status';
import { cli, clientHarness, tmp, waitForStatus, writePlan } from './harness';

const CHROMIUM = '/usr/bin/chromium';

interface PageFacts {
  text: string;
  scrollWidth: number;
  /** The timeline's viewBox width, and each of its labels' horizontal extent in the same units. */
  viewWidth: number;
  labels: Array<{ text: string | null; x0: number; x1: number }>;
  /** Per client chart: the pause label's left, right, and the canvas width (page.js writes them). */
  pauseLabels: number[][];
}

/** Runs in the page (a string: this project's TypeScript has no DOM types). */
const PAGE_FACTS = `(() => {
  const svg = document.querySelector('svg.timeline');
  return {
    text: document.body.innerText,
    scrollWidth: document.documentElement.scrollWidth,
    viewWidth: svg ? svg.viewBox.baseVal.width : 0,
    labels: [...document.querySelectorAll('svg.timeline text')].map((t) => { const b = t.getBBox(); return { text: t.textContent, x0: b.x, x1: b.x + b.width }; }),
    pauseLabels: [...document.querySelectorAll('[data-pause-label]')].map((e) => e.getAttribute('data-pause-label').split(',').map(Number)),
  };
})()`;

/** Headless Chromium: the DOM after the page's scripts ran (or a PNG with --screenshot). */
function chromium(args: string[], file: string): Promise<string> {
  const profile = fs.mkdtempSync(path.join(tmp, 'chromium-'));
  return new Promise((resolve, reject) => {
    execFile(CHROMIUM, ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
      '--disable-sync', '--no-first-run', `--user-data-dir=${profile}`, '--virtual-time-budget=5000', ...args, `file://${file}`],
    { timeout: 90_000, maxBuffer: 64 * 1024 * 1024 }, (err, stdout) => (err ? reject(err) : resolve(stdout)));
  });
}

describe('client: the HTML report', function () {
  this.timeout(120_000);
  let file = '';
  let id = '';

  before(async function () {
    this.timeout(180_000);
    await clientHarness();
    id = 'imago-report-one';
    const started = await cli(['upgrade', 'start', writePlan('report-one', { approval: { policy: 'auto' }, postSwitchover: { finalize: 'auto', windowMs: 200 } })]);
    assert.equal(started.code, 0, started.err);
    await waitForStatus(id, (s) => s.outcome === 'completed');
    file = path.join(tmp, 'reports', 'report-one.html');
    const r = await cli(['report', id, '--out', file, '--json']);
    assert.equal(r.code, 0, r.err);
    assert.equal(JSON.parse(r.out).file, file);
  });

  it('is one self-contained file: uPlot inlined, no external script, style or image', () => {
    const html = fs.readFileSync(file, 'utf8');
    assert.doesNotMatch(html, /<script[^>]+src=|<link[^>]+href=|<img[^>]+src=["']?https?:/i);
    assert.match(html, /uPlot/);
    assert.match(html, /\.u-legend/);
    for (const section of ['Phases', 'Clients during the upgrade', 'Data transfer', 'Compare: Uold vs Unew', 'Tests against Unew', 'Verification', 'Cut-over']) {
      assert.ok(html.includes(`<h2>${section}`), section);
    }
  });

  it('computes the figures it plots: request rates per second and the termination + switchover pause', async () => {
    const s = await (await clientHarness()).imago.status(id);
    const d = reportData(s);
    // 100 ms buckets of 20..24 requests are 200..240 requests/s; the two held buckets are 0, then the released burst of 45.
    assert.equal(d.ingress.x.length, 60);
    assert.deepEqual(d.ingress.rps.slice(28, 34), [230, 240, 0, 0, 450, 230]);
    assert.equal(Math.min(...d.ingress.rps.filter((r) => r > 0)), 200);
    const term = s.timings.find((t) => t.phase === 'termination')!;
    const sw = s.timings.find((t) => t.phase === 'switchover')!;
    assert.deepEqual(pauseWindow(s), { start: term.startedAt / 1000, end: sw.endedAt! / 1000, label: `termination + switchover (hold 180.0 ms, total ${formatMs(s.cutovers[0].totalMs)})` });
    assert.deepEqual(d.transfer.percent, [20, 40, 60, 80, 100]);
    assert.deepEqual(d.timings.map((t) => t.phase).slice(0, 3), ['bootstrapping', 'data-transfer', 'testing']);
  });

  it('draws every chart in headless Chromium (non-background pixels counted by the page)', async () => {
    const dom = await chromium(['--dump-dom'], file);
    assert.match(dom, /<body[^>]*data-charts-ready="3"/, 'all three charts reported drawn');
    const counts = Object.fromEntries([...dom.matchAll(/id="(chart-[a-z]+)"[^>]*data-drawn-pixels="(\d+)"/g)].map((m) => [m[1], Number(m[2])]));
    assert.deepEqual(Object.keys(counts).sort(), ['chart-latency', 'chart-throughput', 'chart-transfer']);
    for (const [chart, n] of Object.entries(counts)) assert.ok(n > 1000, `${chart} has ${n} drawn pixels`);
    if (process.env.IMAGO_REPORT_SCREENSHOT) {
      await chromium([`--screenshot=${process.env.IMAGO_REPORT_SCREENSHOT}`, '--window-size=1200,2000', '--hide-scrollbars'], file);
    }
  });

  it('escapes what it shows: a hostile test output cannot inject markup or end the data script', async () => {
    const s = await (await clientHarness()).imago.status(id);
    const evil = '</script><img src=x onerror=alert(1)>';
    const html = renderReport({ ...s, tests: [{ name: evil, passed: false, durationMs: 1, exitCode: 1, output: evil }], lastError: evil });
    assert.ok(!html.includes('<img src=x'), 'markup escaped');
    const dataScript = /<script type="application\/json" id="report-data">([\s\S]*?)<\/script>/.exec(html)!;
    assert.equal(JSON.parse(dataScript[1]).tests[0].output, evil);
  });

  describe('as people read it, in Chromium at 1280 px', () => {
    let browser: Browser;
    before(async () => { browser = await puppeteer.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-gpu'] }); });
    after(async () => { await browser?.close(); });

    /** What the page shows once its charts are drawn: the text, the page width, the labels' boxes. */
    async function rendered(html: string) {
      const f = path.join(tmp, `rendered-${Date.now()}.html`);
      fs.writeFileSync(f, html);
      const page = await browser.newPage();
      try {
        await page.setViewport({ width: 1280, height: 900 });
        await page.goto(`file://${f}`);
        await page.waitForSelector('body[data-charts-ready]', { timeout: 30_000 });
        return await page.evaluate(PAGE_FACTS) as PageFacts;
      } finally {
        await page.close();
      }
    }

    function expectReadable(r: PageFacts) {
      assert.ok(r.scrollWidth <= 1280, `no horizontal scrolling at 1280 px: the page is ${r.scrollWidth} px wide`);
      const long = r.text.match(/\d+\.\d{4,}/g) ?? [];
      assert.deepEqual(long, [], 'no number with more than 3 decimals in the rendered text');
      assert.ok(r.labels.length >= 4, 'the timeline has its labels');
      for (const l of r.labels) assert.ok(l.x0 >= 0 && l.x1 <= r.viewWidth, `timeline label '${l.text}' inside the chart: ${l.x0.toFixed(1)}..${l.x1.toFixed(1)} of ${r.viewWidth}`);
      for (const [x0, x1, w] of r.pauseLabels) assert.ok(x0 >= 0 && x1 <= w, `the pause label inside its chart: ${x0}..${x1} of ${w}`);
    }

    it("the double's report: fits, no long decimals, labels inside", async () => {
      const r = await rendered(fs.readFileSync(file, 'utf8'));
      expectReadable(r);
      assert.equal(r.pauseLabels.length, 2, 'both client charts name the pause');
      assert.match(r.text, /hold 180\.0 ms/);
    });

    it('a report with raw floats, long unbroken text and a phase ending at the edge: formatted, wrapped, inside', async () => {
      const s = await (await clientHarness()).imago.status(id);
      const t0 = s.timings[0].startedAt;
      const cut = { attempt: 1, switched: true, mode: 'fresh' as const, pointOfNoReturn: true, holdMs: 5.805883000000904, drainMs: 1.2345678, flushMs: 12.000000001, verifyMs: 215.33333333, switchMs: 2.3456789, recordMs: 3.14159265, providerMs: 0.0001,
        releaseMs: 28.111111, totalMs: 41.745395000005374, uoldPosition: '0-1-500', changedRowsVerified: 12345, error: `ECONNRESET ${'x'.repeat(400)}` };
      const stressed: UpgradeStatus = {
        ...s,
        upgradeId: `demo-${'9'.repeat(120)}`,
        outcome: 'running', phase: 'post-switchover',
        // The last phase is open and runs to the right edge: its label must not be cut there.
        timings: [...s.timings.filter((t) => !['completed'].includes(t.phase)).map((t) => (t.phase === 'post-switchover' ? { phase: t.phase, startedAt: t.startedAt } : t))],
        cutovers: [cut, { ...cut, attempt: 2, switched: false, mode: 'restored' as const, pointOfNoReturn: false }],
        compare: { ...(s.compare as object), mismatchRate: 0.123456789, threshold: 0.0100000001, noise: 3.3333333,
          examples: [{ method: 'GET', path: `/items/${'7'.repeat(300)}`, diff: [{ path: '$.price', old: 10.123456789, new: 10.1 }] }] },
        tests: [...s.tests, { name: 'long-output', passed: false, durationMs: 1234.5678, exitCode: 1, output: `${'y'.repeat(3000)}\n${'z '.repeat(500)}` }],
        lastError: `IMAGO_GATE_FAILED: ${'w'.repeat(600)}`,
        verification: { differences: 1, checked: 1234567, examples: [{ key: { id: 1.23456789 }, column: 'price' }], position: '0-1-500' },
        series: { ...s.series, transfer: s.series.transfer.map((p, i) => ({ ...p, lagMs: 0.1 + 0.2 * i, rowsPerSec: 1234.56789 })) },
      };
      assert.ok(stressed.timings.at(-1)!.endedAt === undefined && t0 > 0);
      const r = await rendered(renderReport(stressed, { now: Date.now() }));
      expectReadable(r);
      for (const shown of ['5.8 ms', '41.7 ms', '215.3 ms', '12,345', '12.35%', '1.00%', '1,234,567']) assert.ok(r.text.includes(shown), `shows ${shown}`);
      const last = r.labels.at(-1)!;
      assert.match(last.text ?? '', /\(ongoing\)$/);
    });
  });
});
