/**
 * An operator's first upgrade of their own system, through the CLI only:
 * from an empty folder, `imago init` against a running Uold (auction v1
 * behind its interceptor) and the new schema; the generated conversion
 * type-checks against 'imago/conversion' from that folder; `imago preflight`
 * is clean; `imago upgrade start`, `approve`, `finalize`, `watch` — and the
 * upgrade completes on a real worker, Temporal dev server and MariaDB.
 *
 *  - v1 → v2: the generated stubs are filled in with the auction's own
 *    mappings (examples/auction/conversion.ts), as an operator would fill
 *    in the TODOs; the tables init copied as they are stay as generated;
 *  - v1 → v1 with a nullable column added: the plan completes without edits.
 */
import { strict as assert } from 'node:assert';
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as mysql from 'mysql2/promise';
import { runCli } from '../../client/cli';
import type { Io } from '../../client/output';
import { startUoldStage, type UoldStage } from '../../examples/auction/stage';
import { createWorker } from '../../worker/run';
import { mixedStateViolations, stage, unewDbUrl, workload } from '../e2e/harness';
import { onTeardown, temporalFixture, workflowBundleFixture } from '../fixtures/servers';

const ROOT = path.resolve(__dirname, '..', '..');
const QUEUE = 'imago-first-upgrade';
const node = (entry: string) => JSON.stringify([process.execPath, '--require', require.resolve('tsx/cjs'), path.join(ROOT, entry)]);

interface Run { code: number; out: string; err: string }

describe('first upgrade: imago init → preflight → a real upgrade through the CLI', function () {
  this.timeout(300_000);
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'imago-first-upgrade-'));
  let address = '';
  let namespace = '';
  const universesBefore = process.env.IMAGO_UNIVERSES_DIR;

  /** `imago <argv>` in-process, as from a shell with TEMPORAL_ADDRESS and IMAGO_TASK_QUEUE set; not a terminal. */
  async function imago(argv: string[]): Promise<Run> {
    let out = '', err = '';
    const io: Io = {
      out: (t) => { out += t; }, err: (t) => { err += t; }, isTTY: false,
      env: { PATH: process.env.PATH, HOME: home, TEMPORAL_ADDRESS: address, TEMPORAL_NAMESPACE: namespace, IMAGO_TASK_QUEUE: QUEUE },
    };
    const code = await runCli(argv, io);
    return { code, out, err };
  }

  /** The generated module type-checks from its own folder (tsc with the tsconfig init wrote there). */
  function typeCheck(dir: string): Promise<Run> {
    return new Promise((resolve) => execFile(process.execPath, [path.join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', dir], { timeout: 120_000 },
      (e, stdout, stderr) => resolve({ code: e ? Number(e.code ?? -1) : 0, out: stdout, err: stderr })));
  }

  /** start → approve once testing passed → finalize → watch: the upgrade completes; returns its final status. */
  async function upgradeThroughCli(planFile: string): Promise<Record<string, any>> {
    const started = await imago(['upgrade', 'start', planFile, '--json']);
    assert.equal(started.code, 0, started.err);
    const id = JSON.parse(started.out).started.workflowId as string;
    const status = async () => JSON.parse((await imago(['status', id, '--json'])).out).status;
    const waitFor = async (pred: (s: any) => boolean, what: string, ms: number) => {
      const deadline = Date.now() + ms;
      for (let s = await status(); ; s = await status()) {
        if (pred(s)) return s;
        assert.ok(s.outcome === 'running' && Date.now() < deadline, `${id}: ${what} not reached; phase ${s.phase}, last error: ${s.lastError}`);
        await new Promise((r) => setTimeout(r, 500));
      }
    };
    const waiting = await waitFor((s) => s.phase === 'awaiting-approval', 'awaiting-approval', 180_000);
    assert.equal(waiting.gate.pass, true, JSON.stringify(waiting.gate));
    assert.equal((await imago(['approve', id, '--by', 'first-upgrade test'])).code, 0);
    await waitFor((s) => s.phase === 'post-switchover', 'post-switchover', 120_000);
    assert.equal((await imago(['finalize', id])).code, 0);
    const watched = await imago(['watch', id, '--interval-ms', '500']);
    assert.equal(watched.code, 0, `${watched.out}\n${watched.err}`);
    assert.match(watched.out, /completed/);
    return { id, ...(await status()) };
  }

  before(async () => {
    const t = await temporalFixture();
    [address, namespace] = [t.address, t.namespace];
    const { worker, close } = await createWorker({ address, taskQueue: QUEUE, workflowBundlePath: await workflowBundleFixture() });
    const running = worker.run();
    onTeardown(async () => { if (worker.getState() === 'RUNNING') { worker.shutdown(); await running; } await close(); fs.rmSync(home, { recursive: true, force: true }); });
  });
  after(() => { if (universesBefore === undefined) delete process.env.IMAGO_UNIVERSES_DIR; else process.env.IMAGO_UNIVERSES_DIR = universesBefore; });

  /** A live Uold whose universes go under its own folder (the stage destroys them when it stops). */
  async function liveUold(s: UoldStage): Promise<UoldStage> {
    onTeardown(() => s.stop());
    Object.assign(process.env, s.env);
    // Not a plan edit: where the worker's local provider keeps universes (default ~/.imago/universes).
    process.env.IMAGO_UNIVERSES_DIR = path.join(s.dir, 'universes');
    const load = workload(s, 240_000, 60);
    onTeardown(async () => { load.stop(); await load.done; });
    return s;
  }

  it("auction v1 → v2: a TODO for each differing column; filled in with the auction's mappings, preflight is clean and the upgrade completes", async () => {
    const s = await liveUold(await stage());
    const dir = path.join(home, 'auction-v2');
    fs.mkdirSync(dir);
    const init = await imago(['init', '--uold-url', 'env:IMAGO_UOLD_REPL_URL', '--database', 'auction', '--new-schema', path.join(ROOT, 'examples/auction/schema/v2.sql'),
      '--out', dir, '--system', 'auction', '--from', 'v1', '--to', 'v2', '--name', `first-v2-${Date.now() % 100_000}`,
      '--ingress', s.controlUrl, '--app-command', node('examples/auction/v2/main.ts')]);
    assert.equal(init.code, 0, init.err);
    assert.deepEqual(fs.readdirSync(dir).sort(), ['conversion.ts', 'plan.yaml', 'tsconfig.json']);
    const generated = fs.readFileSync(path.join(dir, 'conversion.ts'), 'utf8');
    // Every column v2 adds that no v1 column of the same name gives, and nothing else.
    const todos = [...generated.matchAll(/todo\('([^']+)'\)/g)].map((m) => m[1].split(' ')[0]).sort();
    assert.deepEqual(todos, ['categories.slug', 'comments.body', 'item_bids.amount_cents', 'item_bids.bid_id', 'items.initial_price_cents', 'items.search_name', 'users.first_name', 'users.last_name']);
    assert.match(generated, /source: 'buy_now',\n\s+targets: \[\{ table: 'purchases', key: \['id'\] \}\],\n\s+convert: \(row: UoldBuyNow\) => \(\{ purchases: \[\{ \.\.\.row \}\] \}\)/, 'the renamed table, guessed from its columns, is copied');
    assert.match(generated, /\/\/ TODO Uold's items\.reserve_price \(decimal\(12,2\) NOT NULL DEFAULT\) reaches no new column: the source of reserve_price_cents\?/);
    const tsc = await typeCheck(dir);
    assert.equal(tsc.code, 0, `the generated module type-checks against imago/conversion:\n${tsc.out}${tsc.err}`);

    // Filled in: the tables with a TODO get the auction's own mappings; regions and buy_now stay as generated.
    const stubs = ['bids', 'categories', 'comments', 'items', 'users'];
    fs.writeFileSync(path.join(dir, 'conversion.ts'), generated.replace('export default conversion;', [
      `import auction from ${JSON.stringify(path.join(ROOT, 'examples/auction/conversion'))};`,
      `const filled: ConversionModule = { ...conversion, tables: conversion.tables.map((t) => (${JSON.stringify(stubs)}.includes(t.source) ? auction.tables.find((a) => a.source === t.source)! : t)) };`,
      'export default filled;',
    ].join('\n')));

    // And the compare rules get what the operator knows of v2's API: its reply to POST /users adds the split
    // name, an intended addition (the testing sandbox mirrors that write and would count it as a difference).
    const planFile = path.join(dir, 'plan.yaml');
    const generatedPlan = fs.readFileSync(planFile, 'utf8');
    assert.match(generatedPlan, /^ {2}ignorePaths: \[\]$/m);
    fs.writeFileSync(planFile, generatedPlan.replace(/^ {2}ignorePaths: \[\]$/m, '  ignorePaths: ["$.firstName", "$.lastName"]'));

    assert.equal((await imago(['plan', 'validate', path.join(dir, 'plan.yaml')])).code, 0);
    const pre = await imago(['preflight', path.join(dir, 'plan.yaml'), '--json']);
    const report = JSON.parse(pre.out);
    assert.equal(pre.code, 0, JSON.stringify(report.checks.filter((c: any) => c.status !== 'ok'), null, 1));
    assert.deepEqual([...new Set(report.checks.map((c: any) => c.group))], ['secrets', 'conversion', 'uold', 'tables', 'unew schema', 'samples', 'interceptors', 'provider', 'temporal']);
    assert.deepEqual(report.checks.filter((c: any) => c.group === 'samples').map((c: any) => c.name).sort(), ['bids', 'buy_now', 'categories', 'comments', 'items', 'regions', 'users']);
    assert.deepEqual(report.notChecked, []);

    const done = await upgradeThroughCli(path.join(dir, 'plan.yaml'));
    assert.deepEqual([done.outcome, done.verification.differences], ['completed', 0]);
    const served = await mixedStateViolations(s);
    assert.ok(served.unew > 0, 'Unew served after the switch');
    assert.equal(served.violations, 0);
  });

  it('v1 → v1 with a nullable column added: the plan init writes completes without edits', async () => {
    const s = await liveUold(await startUoldStage({ users: 200, items: 500, bids: 1_500 }));
    const dir = path.join(home, 'auction-identity');
    fs.mkdirSync(dir);
    const schema = path.join(home, 'v1-with-note.sql');
    fs.writeFileSync(schema, `${fs.readFileSync(path.join(ROOT, 'examples/auction/schema/v1.sql'), 'utf8')}\nALTER TABLE items ADD COLUMN note VARCHAR(200) NULL;\n`);
    const init = await imago(['init', '--uold-url', 'env:IMAGO_UOLD_REPL_URL', '--database', 'auction', '--new-schema', schema, '--out', dir,
      '--system', 'auction', '--from', 'v1', '--to', 'v1-note', '--ingress', s.controlUrl, '--app-command', node('examples/auction/v1/main.ts'), '--json']);
    assert.equal(init.code, 0, init.err);
    const summary = JSON.parse(init.out);
    assert.deepEqual(summary.identity, ['bids', 'buy_now', 'categories', 'comments', 'items', 'regions', 'users']);
    const generated = fs.readFileSync(path.join(dir, 'conversion.ts'), 'utf8');
    assert.doesNotMatch(generated, /TODO|todo\('/);
    assert.match(generated, /\/\/ items → items: same columns and key, rows copied as they are/);
    assert.equal((await typeCheck(dir)).code, 0);

    const pre = await imago(['preflight', path.join(dir, 'plan.yaml')]);
    assert.equal(pre.code, 0, pre.out + pre.err);
    assert.match(pre.out, /: ready, \d+ warning\(s\), \d+ ok/);

    const done = await upgradeThroughCli(path.join(dir, 'plan.yaml'));
    assert.deepEqual([done.outcome, done.verification.differences], ['completed', 0]);
    const c = await mysql.createConnection(await unewDbUrl(s, done.id));
    try {
      const [[r]] = await c.query('SELECT COUNT(*) AS n, COUNT(note) AS notes FROM items') as any;
      assert.ok(Number(r.n) >= 500, `Unew has every item (${r.n})`);
      assert.equal(Number(r.notes), 0, 'the new column is NULL everywhere');
    } finally { await c.end(); }
    assert.equal((await mixedStateViolations(s)).violations, 0);
  });
});
