import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { devServerUiUrl, resolveSettings, temporalConnectError, workflowUrl } from '../../client/connection';
import { Watcher } from '../../client/watcher';
import { sleep } from '../../client/api';
import { getEventListeners } from 'node:events';
import type { Io } from '../../client/output';
import { isImagoError } from '../../lib/errors';
import type { UpgradeStatus } from '../../workflows/status';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'imago-settings-'));
after(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('client: connection settings and the watch view', () => {
  const cfgHome = path.join(dir, 'cfg');
  fs.mkdirSync(path.join(cfgHome, 'imago'), { recursive: true });
  fs.writeFileSync(path.join(cfgHome, 'imago', 'config.json'), JSON.stringify({ address: 'file-host:7000', namespace: 'file-ns', uiUrl: 'http://file-ui:1/' }));
  const base = { XDG_CONFIG_HOME: cfgHome };

  it('takes each setting from flag > env > config file > default, and says where from', () => {
    const fromFile = resolveSettings({}, base);
    assert.deepEqual([fromFile.address, fromFile.namespace, fromFile.uiUrl, fromFile.tls], ['file-host:7000', 'file-ns', 'http://file-ui:1', null]);
    const fromEnv = resolveSettings({}, { ...base, TEMPORAL_ADDRESS: 'env-host:7001', IMAGO_UI_URL: 'https://env-ui' });
    assert.deepEqual([fromEnv.address, fromEnv.namespace, fromEnv.uiUrl], ['env-host:7001', 'file-ns', 'https://env-ui']);
    assert.deepEqual(fromEnv.sources, { address: 'env', namespace: 'file', uiUrl: 'env' });
    const fromFlag = resolveSettings({ address: 'flag-host:7002', namespace: 'flag-ns' }, { ...base, TEMPORAL_ADDRESS: 'env-host:7001' });
    assert.deepEqual([fromFlag.address, fromFlag.namespace], ['flag-host:7002', 'flag-ns']);
    const defaults = resolveSettings({}, { XDG_CONFIG_HOME: path.join(dir, 'none') });
    assert.deepEqual([defaults.address, defaults.namespace, defaults.uiUrl], ['127.0.0.1:7233', 'default', 'http://127.0.0.1:8233']);
    assert.equal(workflowUrl(defaults, 'imago-a b'), 'http://127.0.0.1:8233/namespaces/default/workflows/imago-a%20b');
  });

  it("derives the UI's URL from the address as the dev server does (port + 1000) when nothing sets it", () => {
    assert.equal(devServerUiUrl('127.0.0.1:7233'), 'http://127.0.0.1:8233');
    assert.equal(devServerUiUrl('temporal.internal:41111'), 'http://temporal.internal:42111');
    const s = resolveSettings({ address: 'h:7300' }, { XDG_CONFIG_HOME: path.join(dir, 'none') });
    assert.deepEqual([s.uiUrl, s.sources.uiUrl], ['http://h:8300', 'derived']);
    const given = resolveSettings({ address: 'h:7300', uiUrl: 'https://ui.example/' }, { XDG_CONFIG_HOME: path.join(dir, 'none') });
    assert.deepEqual([given.uiUrl, given.sources.uiUrl], ['https://ui.example', 'flag']);
  });

  it('turns TLS on for certificates or an API key, as the Temporal CLI does, and checks the files', () => {
    const cert = path.join(dir, 'c.pem'); const key = path.join(dir, 'k.pem');
    fs.writeFileSync(cert, 'x'); fs.writeFileSync(key, 'y');
    const s = resolveSettings({}, { ...base, TEMPORAL_TLS_CERT: cert, TEMPORAL_TLS_KEY: key });
    assert.deepEqual(s.tls, { certPath: cert, keyPath: key });
    // The Temporal CLI's _DATA forms: PEM text instead of a path, never both for one file.
    const pem = '-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----\n';
    assert.deepEqual(resolveSettings({}, { ...base, TEMPORAL_TLS_CA_DATA: pem }).tls, { caData: pem });
    assert.throws(() => resolveSettings({}, { ...base, TEMPORAL_TLS_CA: cert, TEMPORAL_TLS_CA_DATA: pem }), (e) => isImagoError(e, 'CLIENT_CONFIG_INVALID') && /not both/.test(e.message));
    assert.throws(() => resolveSettings({}, { ...base, TEMPORAL_TLS_CA_DATA: 'not pem' }), (e) => isImagoError(e, 'CLIENT_CONFIG_INVALID') && /expected PEM text/.test(e.message));
    assert.notEqual(resolveSettings({}, { ...base, TEMPORAL_API_KEY: 'k' }).tls, null);
    assert.equal(resolveSettings({}, { ...base, TEMPORAL_API_KEY: 'k', TEMPORAL_TLS: 'false' }).tls, null);
    assert.throws(() => resolveSettings({ tlsCert: cert, address: 'nope' }, base), (e) => isImagoError(e, 'CLIENT_CONFIG_INVALID')
      && /address 'nope'/.test(e.message) && /tlsCert and tlsKey: give both/.test(e.message));
  });

  it("a failed connection names the link and the setting to fix, from the transport's own words", async () => {
    const cert = path.join(dir, 'c.pem'); const key = path.join(dir, 'k.pem');
    fs.writeFileSync(cert, 'x'); fs.writeFileSync(key, 'y');
    const noCert = resolveSettings({}, { ...base, TEMPORAL_ADDRESS: 't.example:7233', TEMPORAL_TLS: 'true' });
    const withCert = resolveSettings({}, { ...base, TEMPORAL_ADDRESS: 't.example:7233', TEMPORAL_TLS_CERT: cert, TEMPORAL_TLS_KEY: key });
    const plain = resolveSettings({}, { ...base, TEMPORAL_ADDRESS: 't.example:7233' });
    const bad400 = new Error("protocol error: received message with invalid compression flag: 60 while receiving response with status: 400 Bad Request");
    const e1 = await temporalConnectError(noCert, bad400, 'the worker');
    assert.ok(isImagoError(e1, 'CLIENT_UNREACHABLE'));
    assert.match(e1.message, /the worker → Temporal at t\.example:7233 \(address from env; namespace \S+, TLS, no client certificate, the system's CAs\): the TLS endpoint refused the call without a client certificate/);
    assert.match((await temporalConnectError(withCert, bad400, 'the CLI')).message, /refused the client certificate: it must be signed by a CA the server trusts/);
    assert.match((await temporalConnectError(withCert, new Error('invalid peer certificate: UnknownIssuer'), 'the worker')).message, /the server's certificate does not verify: give the CA that signed it \(--tls-ca, TEMPORAL_TLS_CA\)/);
    assert.match((await temporalConnectError(plain, new Error('h2 protocol error: http2 error'), 'the worker')).message, /plain text, no TLS\): the endpoint did not speak plain-text gRPC: if it expects TLS, pass --tls/);
  });

  it('rejects a bad config file: unknown keys, wrong types, missing --config file', () => {
    const bad = path.join(dir, 'bad.json');
    fs.writeFileSync(bad, JSON.stringify({ adress: 'x', tls: 'yes' }));
    assert.throws(() => resolveSettings({ config: bad }, {}), (e) => isImagoError(e, 'CLIENT_CONFIG_INVALID') && /unknown key 'adress'/.test(e.message) && /'tls' must be a boolean/.test(e.message));
    assert.throws(() => resolveSettings({ config: path.join(dir, 'missing.json') }, {}), (e) => isImagoError(e, 'CLIENT_CONFIG_INVALID') && /file not found/.test(e.message));
  });

  const status = (over: Partial<UpgradeStatus>): UpgradeStatus => ({
    upgradeId: 'imago-x', system: 'auction', from: '1', to: '2', provider: 'local', phase: 'data-transfer', phaseStartedAt: Date.now(), timings: [],
    unew: null, transfer: { at: 0, phase: 'copy', tables: [], copiedRows: 2500, totalRows: 10_000, percent: 25, rowsPerSec: 1200, etaSec: 6, appliedPosition: '', lagMs: 350, lagEvents: 3, throttleReason: null, paused: false },
    controls: { paused: false, chunkSize: 1, maxThreadsRunning: 1, maxLagMs: 1, stop: false }, tests: [], compare: null, verification: null, gate: null,
    approval: { policy: 'manual', approved: false }, cutovers: [], cutoverCheck: null, pointOfNoReturnPassed: false, pointOfNoReturn: null, lastError: null, preflight: null, abortReason: null,
    outcome: 'running', series: { transfer: [], ingress: [] }, signals: [], transferError: null, uoldRetirement: null, runs: 1, continuations: [], ...over,
  });
  const io = (isTTY: boolean, env: NodeJS.ProcessEnv = {}) => {
    const o = { text: '', io: { out: (t: string) => { o.text += t; }, err: () => undefined, isTTY, env, now: () => new Date('2026-01-02T03:04:05.678Z') } as Io };
    return o;
  };

  it('plain output: one timestamped line per meaningful change, holding the phase and only what changed', () => {
    const o = io(false);
    const w = new Watcher(o.io);
    w.onStatus(status({}));
    w.onStatus(status({ transfer: { ...status({}).transfer!, percent: 27, copiedRows: 2700 } })); // same 10% step: no line
    w.onStatus(status({ transfer: { ...status({}).transfer!, percent: 31, copiedRows: 3100 } }));
    w.onStatus(status({ transfer: { ...status({}).transfer!, percent: 31, copiedRows: 3100, lagMs: 20 } })); // lag alone: no line
    w.onStatus(status({ phase: 'testing', transfer: { ...status({}).transfer!, percent: 31, copiedRows: 3100 } }));
    assert.deepEqual(o.text.trim().split('\n'), [
      '2026-01-02T03:04:05.678Z imago-x phase=data-transfer | copy 25% 2500/10k rows 1200 rows/s eta 6s | lag 350ms | compare – | tests –',
      '2026-01-02T03:04:05.678Z imago-x phase=data-transfer | copy 31% 3100/10k rows 1200 rows/s eta 6s | lag 350ms',
      '2026-01-02T03:04:05.678Z imago-x phase=testing',
    ]);
  });

  it('plain output: a multi-KB gate reason or error is printed once, cut, not on every line', () => {
    const o = io(false);
    const w = new Watcher(o.io);
    const reason = `compare: ${'GET /items/:id differs on $.price; '.repeat(150)}`;
    const gate = { pass: false, reasons: [reason], tests: { passed: 2, failed: 0 }, compare: null, verification: null };
    w.onStatus(status({ phase: 'testing' }));
    w.onStatus(status({ phase: 'testing', gate }));
    const tests = [{ name: 'a', passed: true, durationMs: 1, exitCode: 0, output: '' }];
    w.onStatus(status({ phase: 'testing', gate, tests }));
    w.onStatus(status({ phase: 'failed', gate, tests, outcome: 'failed', lastError: `IMAGO_GATE_FAILED: ${reason}` }));
    const lines = o.text.trim().split('\n');
    assert.equal(lines.length, 4);
    assert.equal(lines.filter((l) => l.includes('gate fail')).length, 1, 'the gate reason once');
    assert.ok(lines.every((l) => l.length < 1_200), `short lines: ${lines.map((l) => l.length)}`);
    assert.match(lines[1], /gate fail \(compare: GET .*… \(\d+ chars; imago status --json has it whole\)\)$/);
    assert.match(lines[2], /phase=testing \| tests 1\/1 passed$/);
    assert.match(lines[3], /phase=failed \| outcome=failed \| error: IMAGO_GATE_FAILED: compare: GET .*…/);
  });

  it('sleep() leaves no abort listener behind, however many turns a poll loop takes', async () => {
    const ctl = new AbortController();
    for (let i = 0; i < 25; i++) await sleep(1, ctl.signal);
    assert.equal(getEventListeners(ctl.signal, 'abort').length, 0);
    const pending = sleep(60_000, ctl.signal);
    ctl.abort();
    await pending; // resolves at once on abort
  });

  it('TTY output: redraws in place with a progress bar; colour unless NO_COLOR', () => {
    const tty = io(true);
    const w = new Watcher(tty.io);
    w.onStatus(status({}));
    w.onStatus(status({ phase: 'testing' }));
    assert.match(tty.text, /copy \[######------------------\] 25%/);
    assert.match(tty.text, /\x1b\[6F/, 'second frame moves up over the first six lines');
    assert.match(tty.text, /\x1b\[36mtesting\x1b\[39m/);
    const noColour = io(true, { NO_COLOR: '1' });
    new Watcher(noColour.io).onStatus(status({}));
    assert.doesNotMatch(noColour.text, /\x1b\[\d+m/);
  });
});
