/**
 * Operating an upgrade from Temporal's web UI, in a real browser: Debian's
 * Chromium driven by puppeteer-core (no browser download), against the web
 * UI the dev server embeds (UI 2.42.1 in Temporal CLI 1.5.1).
 *
 * The browser does what an operator does: adds the Imago search attributes
 * as list columns, filters with `ImagoPhase = "awaiting-approval"`, opens the
 * upgrade, reads its summary and current details (User Metadata tab), runs
 * the `status` query (Queries tab), sends an update the workflow refuses and
 * reads the reason in the UI, then sends the `approve` signal through "More
 * Actions → Send a Signal"; the upgrade completes.
 *
 * Screenshots of each step go to IMAGO_UI_SHOTS when it is set (the committed
 * ones in docs/web-ui/ are made with
 * `IMAGO_UI_SHOTS=docs/web-ui npx mocha test/e2e/web-ui.test.ts`), else to a
 * temporary folder removed at the end.
 */
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import puppeteer, { type Browser, type ElementHandle, type Page } from 'puppeteer-core';

/** What these tests read in the page (the project's type-check has no DOM library). */
type Shown = { innerText: string };
import { FAST_TIMERS, onTeardown, workerFixture } from '../fixtures/servers';
import { TemporalDevServer } from '../../lib/temporal-server';
import { freePort } from '../../lib/ports';
import { loadPlanFile } from '../../plan/load';
import { ImagoClient } from '../../client/api';
import { upgradeMetadata } from '../../client/metadata';
import { abortUpdate, statusQuery } from '../../workflows/messages';
import type { UpgradeStatus } from '../../workflows/status';
import type { UoldStage } from '../../examples/auction/stage';
import { briefTesting, stage, waitPhase, workload } from './harness';

const CHROMIUM = '/usr/bin/chromium';
const QUEUE = 'imago-web-ui';
const COLUMNS = ['ImagoSystem', 'ImagoFromVersion', 'ImagoToVersion', 'ImagoPhase'];
const FILTER = 'ImagoPhase = "awaiting-approval"';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('operating an upgrade from the web UI in a real browser (Chromium, puppeteer-core)', function () {
  this.timeout(240_000);
  let server: TemporalDevServer;
  let client: Client;
  let imago: ImagoClient;
  let s: UoldStage;
  let browser: Browser;
  let page: Page;
  let shots: string;
  let ui: string;

  before(async function () {
    if (!fs.existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: run scripts/setup.sh (it installs Debian's chromium)`);
    // Its own dev server: the shared fixture runs headless, this one serves the web UI.
    server = await new TemporalDevServer({ uiPort: await freePort(), dynamicConfig: FAST_TIMERS }).start();
    onTeardown(() => server.stop());
    ui = server.uiUrl!;
    const connection = await Connection.connect({ address: server.address });
    onTeardown(() => connection.close());
    client = new Client({ connection });
    imago = ImagoClient.fromClient(client, { uiUrl: ui });
    await workerFixture({ address: server.address, taskQueue: QUEUE });
    s = await stage();
    onTeardown(() => s.stop());

    shots = process.env.IMAGO_UI_SHOTS ? path.resolve(process.env.IMAGO_UI_SHOTS) : fs.mkdtempSync(path.join(os.tmpdir(), 'imago-ui-shots-'));
    fs.mkdirSync(shots, { recursive: true });
    if (!process.env.IMAGO_UI_SHOTS) onTeardown(async () => fs.rmSync(shots, { recursive: true, force: true }));
    const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'imago-chromium-'));
    browser = await puppeteer.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', `--user-data-dir=${profile}`],
    });
    onTeardown(async () => { await browser.close().catch(() => undefined); fs.rmSync(profile, { recursive: true, force: true }); });
    page = await browser.newPage();
    await page.setViewport({ width: 1280, height: 800 });
    page.setDefaultTimeout(30_000);
  });

  afterEach(async function () {
    // A failure in the browser is easier to read in a picture: kept outside the shots folder, its path printed.
    if (this.currentTest?.state !== 'failed' || !page) return;
    const file = path.join(os.tmpdir(), `imago-web-ui-failure-${Date.now()}.png`) as `${string}.png`;
    await page.screenshot({ path: file, fullPage: true }).then(() => console.error(`      the page when it failed: ${file}`), () => undefined);
  });

  after(async () => { await browser?.close().catch(() => undefined); });

  /** Saves a screenshot; asserts it is a PNG of a sensible size (the committed ones must stay well under 500 KB). */
  async function shot(name: string): Promise<void> {
    const file = path.join(shots, `${name}.png`);
    await page.screenshot({ path: file as `${string}.png` });
    const buf = fs.readFileSync(file);
    assert.equal(buf.subarray(1, 4).toString(), 'PNG', `${file} is a PNG`);
    assert.ok(buf.length > 10_000 && buf.length < 400_000, `${file}: ${buf.length} bytes`);
  }

  /** The first element that is shown (the UI keeps hidden copies of some controls for small screens, and closed menus in place). */
  async function visible(selector: string, timeoutMs = 30_000): Promise<ElementHandle> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      for (const h of await page.$$(selector)) {
        // isVisible: laid out and not `visibility: hidden` (a closed menu keeps its box, hidden).
        if (await h.isVisible()) return h;
      }
      if (Date.now() > deadline) throw new Error(`no visible ${selector} within ${timeoutMs} ms on ${page.url()}`);
      await sleep(250);
    }
  }

  /**
   * Clicks the shown element once it is enabled (a modal's Submit is disabled until the UI has taken the chosen name).
   * The list page re-renders its rows when it polls: an element found a moment ago can be detached by the time of the
   * click ("not clickable or not an Element"), so it is looked up again, a bounded number of times.
   */
  async function click(selector: string): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      const h = await visible(selector);
      for (let i = 0; await h.evaluate((e) => (e as unknown as { disabled?: boolean }).disabled === true); i++) {
        if (i >= 60) throw new Error(`${selector} stayed disabled on ${page.url()}`);
        await sleep(250);
      }
      try {
        await h.click();
        return;
      } catch (e) {
        if (attempt >= 5 || !/not clickable|detached|not an Element/i.test(String(e))) throw e;
        await sleep(300);
      }
    }
  }

  /** Picks an entry of one of the UI's selects (signal or update names) by its exact text. */
  async function choose(modal: string, option: string, whileOpen?: () => Promise<void>): Promise<void> {
    // The select's own input is disabled by design; a click at its place opens the list.
    await (await visible(`${modal} input[id$="-select"]`)).click();
    if (whileOpen) { await visible(`${modal} li[role="option"]`); await sleep(300); await whileOpen(); }
    const deadline = Date.now() + 15_000;
    for (;;) {
      for (const li of await page.$$(`${modal} li[role="option"]`)) {
        const label = await li.evaluate((e) => e.querySelector('span')?.textContent?.trim() ?? e.textContent?.trim());
        if (label === option && await li.isVisible()) {
          await li.click();
          // The list covers the modal's buttons until it has closed.
          for (let i = 0; i < 40 && (await Promise.all((await page.$$(`${modal} li[role="option"]`)).map((o) => o.isVisible()))).some(Boolean); i++) await sleep(100);
          return;
        }
      }
      if (Date.now() > deadline) throw new Error(`no option '${option}' in ${modal}`);
      await sleep(250);
    }
  }

  /** Types JSON into a modal's code editor and checks what the editor holds (it may drop a key under load: then it types again). */
  async function typeJson(modal: string, json: string): Promise<void> {
    const want = JSON.parse(json);
    for (let attempt = 1; ; attempt++) {
      await click(`${modal} .cm-content`);
      await page.keyboard.down('Control'); await page.keyboard.press('KeyA'); await page.keyboard.up('Control');
      await page.keyboard.press('Backspace');
      await page.keyboard.type(json, { delay: 25 });
      const got = await (await visible(`${modal} .cm-content`)).evaluate((e) => e.textContent ?? '');
      try { assert.deepEqual(JSON.parse(got), want); return; } catch (err) {
        if (attempt >= 3) throw new Error(`the editor holds ${JSON.stringify(got)} after 3 attempts, not ${json}: ${err}`);
      }
    }
  }

  /** The text of the page and of its frames (the UI renders summary and details as markdown in frames). */
  async function allText(): Promise<string> {
    const parts: string[] = [];
    for (const f of page.frames()) {
      // A frame may be replaced while it is read (the UI re-renders its markdown): skip it, the next poll reads the new one.
      try { parts.push(await f.evaluate(() => (globalThis as unknown as { document: { body: Shown | null } }).document.body?.innerText ?? '')); } catch { /* detached */ }
    }
    return parts.join('\n');
  }

  async function waitText(what: RegExp, timeoutMs = 30_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const text = await allText();
      if (what.test(text)) return text;
      if (Date.now() > deadline) throw new Error(`${what} not shown on ${page.url()} within ${timeoutMs} ms; the page shows:\n${text.slice(0, 3000)}`);
      await sleep(500);
    }
  }

  /**
   * The last list item of each markdown frame (summary, details, current
   * details) that lies below the frame's bottom. Read a few times: the UI
   * sizes a frame when it has loaded, and replaces frames as it re-renders.
   */
  async function lastItemsCutOff(): Promise<string[]> {
    let cut: string[] = [];
    for (let attempt = 0; attempt < 10; attempt++) {
      cut = [];
      for (const f of page.frames()) {
        if (!f.url().includes('/render?')) continue;
        try {
          const frameHeight = await (await f.frameElement())!.evaluate((e) => (e as unknown as { clientHeight: number }).clientHeight);
          const last = await f.evaluate(() => {
            const items = (globalThis as unknown as { document: { querySelectorAll(s: string): Array<Shown & { getBoundingClientRect(): { bottom: number } }> } }).document.querySelectorAll('li');
            const li = items[items.length - 1];
            return li ? { text: li.innerText, bottom: li.getBoundingClientRect().bottom } : null;
          });
          if (last && last.bottom > frameHeight) cut.push(`${last.text} (${last.bottom.toFixed(0)} > ${frameHeight} px)`);
        } catch { cut.push('(a frame was replaced while it was measured)'); }
      }
      if (!cut.length) return cut;
      await sleep(500);
    }
    return cut;
  }

  async function rows(): Promise<string[]> {
    return page.$$eval('[data-testid="workflows-summary-configurable-table-row"]', (rs) => rs.map((r) => (r as unknown as Shown).innerText.replace(/\s+/g, ' ')));
  }

  it('finds the upgrade with the ImagoPhase filter, reads its summary and status, and approves it with the signal from the UI', async () => {
    const started = Date.now();
    // Another upgrade of the same system, aborted at once: the filter must leave it out.
    const other = await imago.start(loadPlanFile(s.writePlan((p) => { p.name = 'auction-v1-to-v2-rehearsal'; p.approval.policy = 'manual'; })), { taskQueue: QUEUE });
    await other.handle.executeUpdate(abortUpdate, { args: [{ reason: 'rehearsal only' }] });
    await other.handle.result().catch(() => undefined);

    const load = workload(s, 200_000, 30);
    try {
      const plan = loadPlanFile(s.writePlan((p) => {
        p.approval.policy = 'manual';
        briefTesting(p);
      }));
      const { workflowId: id, handle } = await imago.start(plan, { taskQueue: QUEUE });
      assert.equal(id, 'imago-auction-v1-to-v2');
      const { staticSummary } = upgradeMetadata(plan, id);
      await waitPhase(client, id, ['awaiting-approval'], 150_000);

      // 1. The list: both upgrades, then the Imago columns, then the filter leaves only the one awaiting approval.
      await page.goto(`${ui}/namespaces/default/workflows`, { waitUntil: 'domcontentloaded' });
      for (let i = 0; (await rows()).length < 2; i++) { assert.ok(i < 60, `the list shows ${(await rows()).length} upgrades`); await sleep(500); }
      await click('[data-testid="workflows-summary-table-configuration-button"]');
      for (const c of COLUMNS) await click(`[data-testid="orderable-list-item-${c}-add-button"]`);
      for (const c of ['Run ID', 'Type', 'Start', 'End']) await click(`[data-testid="orderable-list-item-${c}-remove-button"]`);
      await click('[data-testid="drawer-close-button"]');
      await click('button[aria-label="Collapse saved views"]'); // more room for the columns
      await click('[data-testid="toggle-manual-query"]');
      await (await visible('input#query')).type(FILTER);
      await click('[data-testid="manual-search-button"]');
      let listed: string[] = [];
      for (let i = 0; i < 60; i++) { listed = await rows(); if (listed.length === 1) break; await sleep(500); }
      assert.equal(listed.length, 1, `one upgrade awaits approval: ${JSON.stringify(listed)}`);
      assert.match(listed[0], new RegExp(`Running.*${id}.*auction v1 v2 awaiting-approval`));
      assert.equal(new URL(page.url()).searchParams.get('query'), FILTER, 'the filter is in the URL (a link an operator can share)');
      await sleep(500);
      await shot('workflows-list');

      // 2. The workflow page, User Metadata tab: the summary and details from the start, the current details from the workflow.
      await click(`a[href$="/workflows/${id}"], a[href*="/workflows/${id}/"]`);
      await click('#user-metadata-tab');
      const meta = await waitText(/To approve:/);
      assert.ok(meta.includes(staticSummary), `the summary '${staticSummary}' is shown`);
      assert.match(meta, /from → to: v1 → v2/);
      assert.match(meta, /awaiting-approval/);
      assert.match(meta, /signal approve, input \{"by": "your name"\}/);
      assert.match(meta, new RegExp(`or imago approve ${id}`));
      // What unblocks the upgrade is in view, not cut off by the frame the UI sizes for it.
      const cut = await lastItemsCutOff();
      assert.deepEqual(cut, [], `cut off at the bottom of their frame: ${cut.join(' | ')}`);
      await shot('workflow-awaiting-approval');

      // 3. The Queries tab runs the status query.
      await click('#queries-tab');
      await click('::-p-text(Run Query)');
      const result = await (await visible('[data-testid="query-result"]')).evaluate((e) => e.textContent ?? '');
      // The editor draws only the lines in view: the top of the status.
      assert.match(result, new RegExp(`"upgradeId": ?"${id}".*"phase": ?"awaiting-approval"`));
      await shot('status-query');

      // 4. An update answers: refused in this phase, the UI shows why, and nothing changes.
      await click('button[aria-controls="workflow-actions"]');
      await click('[data-testid="update-button"]');
      await choose('#update-confirmation-modal', 'finalize');
      await click('#update-confirmation-modal [data-testid="confirm-modal-button"]');
      await waitText(/finalize refused: finalize is accepted only in the post-switchover window; the phase is awaiting-approval/);
      await shot('update-refused');
      await click('#update-confirmation-modal ::-p-text(Cancel)');
      const unchanged = await handle.query(statusQuery);
      assert.deepEqual([unchanged.phase, unchanged.approval.approved], ['awaiting-approval', false]);

      // 5. The approve signal through the UI's workflow actions.
      await click('button[aria-controls="workflow-actions"]');
      await click('[data-testid="signal-button"]');
      await choose('#signal-confirmation-modal', 'approve', async () => {
        // The list names each signal with its description; Imago's own say not to send them.
        const names = await waitText(/pointOfNoReturn/);
        assert.match(names, /approve\s+Approve the switchover; only while awaiting approval/);
        assert.match(names, /transferEdge\s+Imago's own, from the transfer activity: do not send/);
        await shot('signal-names');
      });
      await typeJson('#signal-confirmation-modal', '{"by": "web-ui operator"}');
      await shot('signal-approve');
      const sentAt = Date.now();
      await click('#signal-confirmation-modal [data-testid="confirm-modal-button"]');
      // The UI closes the dialog only when the server took the signal, and says so for a few seconds.
      for (let i = 0; ; i++) {
        const modalOpen = await page.$$('#signal-confirmation-modal [data-testid="confirm-modal-button"]').then((hs) => Promise.all(hs.map((h) => h.isVisible()))).then((v) => v.some(Boolean));
        if (!modalOpen || /Workflow signaled\./.test(await allText())) break;
        assert.ok(i < 60, `the signal dialog is still open after 30 s: ${(await allText()).slice(-1500)}`);
        await sleep(500);
      }

      const final = await handle.result() as UpgradeStatus;
      assert.equal(final.outcome, 'completed', final.lastError ?? '');
      assert.deepEqual([final.approval.approved, final.approval.by], [true, 'web-ui operator']);
      assert.deepEqual(final.signals.map((x) => [x.name, x.accepted, x.by]), [['approve', true, 'web-ui operator']]);
      assert.ok(final.approval.at! >= sentAt - 1_000, 'approved by this signal, not before');

      // 6. The finished upgrade: current details with its outcome, the cut-over activity's summary among the events with metadata.
      await page.setViewport({ width: 1280, height: 1000 }); // the page scrolls inside: a taller window shows the events too
      await page.goto(`${ui}/namespaces/default/workflows/${id}`, { waitUntil: 'domcontentloaded' });
      await click('#user-metadata-tab');
      const done = await waitText(/outcome: completed/);
      // The cut-over activity's summary, listed under "Events with Metadata".
      assert.match(done, /Events with Metadata\s+Activity\s+cut-over attempt 1\s+Completed/);
      await shot('workflow-completed');
      console.log(`      web UI: filtered, read, refused update, approved by signal → completed; ${((Date.now() - started) / 1000).toFixed(0)} s; screenshots in ${shots}`);
    } finally {
      load.stop();
      await load.done;
    }
  });
});
