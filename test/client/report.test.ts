import { strict as assert } from 'node:assert';
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { renderReport } from '../../client/report/html';
import { pauseWindow, reportData } from '../../client/report/model';
import { cli, clientHarness, tmp, waitForStatus, writePlan } from './harness';

const CHROMIUM = '/usr/bin/chromium';

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
    assert.deepEqual(pauseWindow(s), { start: term.startedAt / 1000, end: sw.endedAt! / 1000, label: 'termination + switchover (hold 180 ms, total ' + s.cutovers[0].totalMs + ' ms)' });
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
});
