/**
 * Secret hygiene of a real upgrade of the auction (e2e harness): nothing
 * anyone with access to Temporal or its web UI can read holds a secret of the
 * stage or a MariaDB password hash —
 *  - the FULL workflow history, every payload decoded (activity inputs and
 *    results, the status, signals, failures, search attributes, memo);
 *  - what the web UI shows: the status query, the workflow's current details
 *    (the metadata query) and its description (pending activities' heartbeat
 *    details, taken every second while it runs, summary and details);
 * and a plan test's environment holds only PATH, UNEW_URL and what the plan
 * declares for it: none of the worker's (which holds the secrets).
 */
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { temporal } from '@temporalio/proto';
import { statusQuery } from '../../workflows/messages';
import { startUpgrade, stage, universeDir, workload } from '../e2e/harness';
import { onTeardown, temporalFixture, workflowBundleFixture, workerFixture } from '../fixtures/servers';

const QUEUE = 'imago-secrets';
/** A MariaDB password hash, as SHOW GRANTS prints it. */
const HASH = /\*[0-9A-F]{40}/i;

/** Every string in a value, byte arrays decoded as UTF-8 (payload data is JSON bytes). */
function texts(v: unknown, out: string[] = [], seen = new Set<unknown>()): string[] {
  if (v === null || v === undefined) return out;
  if (typeof v === 'string') { out.push(v); return out; }
  if (v instanceof Uint8Array) { out.push(Buffer.from(v).toString('utf8')); return out; }
  if (typeof v !== 'object' || seen.has(v)) return out;
  seen.add(v);
  if (typeof (v as { toJSON?: unknown }).toJSON === 'function' && !(v instanceof Date)) {
    // Long and other proto helpers: their JSON form, plus their own fields below.
    try { out.push(JSON.stringify(v)); } catch { /* not serialisable: its fields still are walked */ }
  }
  for (const x of Array.isArray(v) ? v : Object.values(v as object)) texts(x, out, seen);
  return out;
}

describe('secrets: a real upgrade leaves none in history, the status or a plan test\'s environment', function () {
  this.timeout(300_000);

  it('replication password, ingress token, Unew\'s app and admin passwords, password hashes: in none of them', async () => {
    const t = await temporalFixture();
    await workerFixture({ taskQueue: QUEUE, workflowBundlePath: await workflowBundleFixture() });
    const s = await stage();
    onTeardown(() => s.stop());
    const load = workload(s, 240_000, 60);
    onTeardown(async () => { load.stop(); await load.done; });

    const envDump = path.join(s.dir, 'plan-test-env.json');
    const id = `secrets-${Date.now() % 1_000_000}`;
    const handle = await startUpgrade(t.client, s, id, (p) => {
      p.name = id;
      p.postSwitchover = { windowMs: 1_000, finalize: 'auto', keepUold: true };
      p.tests.push({ name: 'environment', command: [process.execPath, '-e', `require('fs').writeFileSync(${JSON.stringify(envDump)}, JSON.stringify(process.env))`], env: { DECLARED: 'by the plan' } });
    }, QUEUE);

    // What the web UI shows while it runs: the description (pending activities' heartbeat details) every second.
    const seen: unknown[] = [];
    let finished = false;
    const watching = (async () => {
      while (!finished) {
        seen.push((await handle.describe().catch(() => undefined))?.raw);
        await new Promise((r) => setTimeout(r, 1_000));
      }
    })();
    const result = await handle.result().finally(() => { finished = true; });
    await watching;
    assert.equal(result.outcome, 'completed', result.lastError ?? '');

    const unewState = JSON.parse(fs.readFileSync(path.join(universeDir(s, id), 'state.json'), 'utf8')) as { appPassword: string };
    const adminUrl = new URL(fs.readFileSync(path.join(universeDir(s, id), 'admin.url'), 'utf8').trim());
    const secrets: Record<string, string> = {
      'replication password': decodeURIComponent(new URL(s.replUrl).password),
      'ingress token': s.token,
      "Unew's app password": unewState.appPassword,
      "Uold's app password": decodeURIComponent(new URL(s.appDbUrl).password),
      // The local provider's admin account is root on loopback without a password: nothing to leak, which this records.
      ...(adminUrl.password ? { "Unew's admin password": decodeURIComponent(adminUrl.password) } : {}),
    };
    assert.equal(adminUrl.password, '', "the local provider's admin URL has no password (if it gets one, it is checked above)");
    for (const [what, v] of Object.entries(secrets)) assert.ok(v.length >= 8, `${what} is a real secret (${v.length} chars)`);

    const history = await handle.fetchHistory();
    const status = await handle.query(statusQuery);
    const metadata = await handle.query<unknown>('__temporal_workflow_metadata');
    const described = await handle.describe();
    const corpora: Record<string, string> = {
      history: texts(history).join('\n'),
      'status query': JSON.stringify(status),
      'current details (metadata query)': texts(metadata).join('\n'),
      description: texts([described.raw, await described.staticSummary(), await described.staticDetails()]).join('\n'),
      'descriptions while running': texts(seen).join('\n'),
    };
    // The corpora are decoded, not opaque bytes: the plan (input), the preflight report and the gate are readable in them.
    assert.ok(corpora.history.length > 50_000, `history text: ${corpora.history.length} chars`);
    for (const needle of ['env:IMAGO_UOLD_REPL_URL', 'binlog_format', 'replication privileges', 'imago_repl']) assert.ok(corpora.history.includes(needle), `history decoded: has ${needle}`);
    assert.ok(corpora['descriptions while running'].includes('runTransfer'), 'a description taken while copying shows the transfer activity');
    const events = history.events ?? [];
    assert.ok(events.some((e) => e.eventType === temporal.api.enums.v1.EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED));

    for (const [where, text] of Object.entries(corpora)) {
      for (const [what, secret] of Object.entries(secrets)) assert.ok(!text.includes(secret), `${what} appears in ${where}`);
      assert.doesNotMatch(text, HASH, `a password hash appears in ${where}`);
    }

    // The plan test ran with only PATH, UNEW_URL and its declared env.
    const env = JSON.parse(fs.readFileSync(envDump, 'utf8')) as Record<string, string>;
    assert.deepEqual(Object.keys(env).sort(), ['DECLARED', 'PATH', 'UNEW_URL']);
    assert.equal(env.DECLARED, 'by the plan');
    assert.match(env.UNEW_URL, /^http:\/\/127\.0\.0\.1:\d+$/);
    for (const [what, secret] of Object.entries(secrets)) assert.ok(!JSON.stringify(env).includes(secret), `${what} reaches a plan test`);
    assert.ok(status.tests.some((x) => x.name === 'environment' && x.passed));
  });
});
