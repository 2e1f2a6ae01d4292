/**
 * End to end with every link encrypted and authenticated, on loopback, with
 * certificates of a throwaway CA made by the test (openssl):
 *  - the worker (`imago worker`, a process of its own) and the CLI (`imago
 *    upgrade start --wait`) reach Temporal only through a TLS-terminating,
 *    client-certificate-checking nginx proxy (grpc_pass, ssl_verify_client on)
 *    in front of the dev server, configured by the Temporal CLI's variables;
 *  - Uold's and Unew's MariaDB require TLS (require_secure_transport=ON): the
 *    transfer's reader and binlog reader, its writer, the verification, the
 *    cut-over's flush, the application of each version, all over TLS;
 *  - the interceptor's control API is HTTPS and requires a client certificate.
 * A complete upgrade of the auction under load: 0 acknowledged writes lost,
 * 0 mixed state, the pause reported.
 */
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as mysql from 'mysql2/promise';
import { ImagoClient } from '../../client/api';
import { runCli } from '../../client/cli';
import type { Io } from '../../client/output';
import { checkLedger } from '../../examples/auction/ledger-checker';
import { startUoldStage, type UoldStage } from '../../examples/auction/stage';
import { IngressControlClient } from '../../interceptors/ingress';
import { withTlsParams } from '../../lib/db-tls';
import { isImagoError } from '../../lib/errors';
import { ManagedProcess } from '../../lib/proc';
import { GrpcTlsProxy } from '../fixtures/grpc-tls-proxy';
import { onTeardown, temporalFixture, workflowBundleFixture } from '../fixtures/servers';
import { SIZE, mixedStateViolations, universeDir, workload, writesByOthersThanApp } from './harness';

const ROOT = path.resolve(__dirname, '..', '..');
const QUEUE = 'imago-e2e-tls';

describe('end to end over TLS: Temporal through an mTLS proxy, MariaDB requiring TLS, HTTPS control with client certificates', function () {
  this.timeout(420_000);
  let s: UoldStage;
  let proxy: GrpcTlsProxy;
  let temporalEnv: NodeJS.ProcessEnv;
  let worker: ManagedProcess;

  before(async () => {
    const t = await temporalFixture();
    s = await startUoldStage({ ...SIZE, generalLog: true, tls: true });
    onTeardown(() => s.stop());
    const tls = s.tls!;
    const front = await tls.ca.issue('temporal-frontend', { usage: 'server', names: ['127.0.0.1', 'localhost'] });
    proxy = await GrpcTlsProxy.start({ upstream: t.address, cert: front.cert, key: front.key, clientCa: tls.ca.certFile });
    temporalEnv = {
      TEMPORAL_ADDRESS: proxy.address, TEMPORAL_NAMESPACE: t.namespace,
      TEMPORAL_TLS_CERT: tls.worker.cert, TEMPORAL_TLS_KEY: tls.worker.key, TEMPORAL_TLS_CA: tls.ca.certFile,
      XDG_CONFIG_HOME: path.join(s.dir, 'no-config'),
    };
    // `imago worker` as operators run it: the Temporal CLI's variables and the plan's secrets in its environment, nothing else.
    worker = new ManagedProcess('imago-worker-tls', process.execPath,
      ['--require', require.resolve('tsx/cjs'), path.join(ROOT, 'worker/main.ts'), '--task-queue', QUEUE, '--workflow-bundle', await workflowBundleFixture()],
      path.join(s.dir, 'worker.log'), { env: { ...process.env, ...s.env, ...temporalEnv, TEMPORAL_ADDRESS: proxy.address } });
    onTeardown(() => worker.stop());
  });

  it('the links refuse what lacks TLS: a worker without the client certificate, Uold in plain text, the control API without one', async () => {
    // `imago worker` with the CA but no client certificate: it exits 1, naming the link and the setting.
    const env: NodeJS.ProcessEnv = { ...process.env, ...s.env, ...temporalEnv };
    delete env.TEMPORAL_TLS_CERT;
    delete env.TEMPORAL_TLS_KEY;
    const log = path.join(s.dir, 'worker-refused.log');
    const refused = new ManagedProcess('imago-worker-no-cert', process.execPath,
      ['--require', require.resolve('tsx/cjs'), path.join(ROOT, 'worker/main.ts'), '--task-queue', `${QUEUE}-refused`, '--workflow-bundle', await workflowBundleFixture()], log, { env });
    onTeardown(() => refused.stop());
    assert.equal(await refused.waitExit(), 1);
    const text = fs.readFileSync(log, 'utf8');
    assert.match(text, /CLIENT_UNREACHABLE: .*the worker → Temporal at 127\.0\.0\.1:\d+ \(address from env; namespace \S+, TLS, no client certificate, CA .*\): the TLS endpoint refused the call without a client certificate/);
    assert.match(text, /give --tls-cert and --tls-key \(TEMPORAL_TLS_CERT, TEMPORAL_TLS_KEY\)/);
    assert.doesNotMatch(text, /^\s+at /m, 'the message, no stack trace');
    // Uold's database: a plain-text connection is refused by the server itself.
    await assert.rejects(mysql.createConnection(s.replUrl).then((c) => c.end()), (e: Error) => /secure transport|Access denied|insecure/i.test(e.message));
    // The control API: the token alone is not enough.
    const noCert = new IngressControlClient(s.controlUrl, s.token, 5_000, { ca: s.tls!.control.ca });
    await assert.rejects(noCert.status(), (e) => isImagoError(e, 'INGRESS_TLS_FAILED'));
  });

  it('completes under load: no acknowledged write lost, no mixed state, the pause reported', async () => {
    assert.match(s.controlUrl, /^https:\/\//);
    const load = workload(s, 240_000);
    const id = `e2e-tls-${Date.now()}`;
    let out = '';
    let err = '';
    const io: Io = { out: (x) => { out += x; }, err: (x) => { err += x; }, isTTY: false, env: { ...temporalEnv } };
    let code: number;
    try {
      code = await runCli(['upgrade', 'start', s.writePlan(), '--workflow-id', id, '--task-queue', QUEUE, '--wait'], io);
    } finally {
      load.stop();
    }
    const w = await load.done;
    assert.equal(code, 0, `imago upgrade start --wait: exit ${code}\n${err}\n${out.slice(-2_000)}\nworker log:\n${worker.tail(30)}`);

    // The status, read by the library through the same proxy.
    const imago = await ImagoClient.connect({}, temporalEnv);
    let status;
    try { status = await imago.status(id); } finally { await imago.close(); }
    assert.equal(status.outcome, 'completed', status.lastError ?? '');
    assert.equal(status.verification?.differences, 0);
    const cut = status.cutovers.at(-1)!;
    assert.equal(cut.switched, true);

    // Every acknowledged write is in Unew (read over TLS, verified against the universe's CA), once, unaltered.
    assert.ok(w.ledger.length > 20, `the workload wrote (${w.ledger.length} acknowledged writes)`);
    const udir = universeDir(s, id);
    const unewUrl = withTlsParams(fs.readFileSync(path.join(udir, 'admin.url'), 'utf8').trim(), { ca: path.join(udir, 'tls', 'unew-ca.pem') }, true);
    const ledger = await checkLedger(unewUrl, 'v2', w.ledger);
    assert.deepEqual({ missing: ledger.missing.length, duplicated: ledger.duplicated.length, altered: ledger.altered.length }, { missing: 0, duplicated: 0, altered: 0 });
    // Unew's database also refuses plain text: every one of its connections in this run was TLS.
    await assert.rejects(mysql.createConnection(fs.readFileSync(path.join(udir, 'admin.url'), 'utf8').trim()).then((c) => c.end()), (e: Error) => /secure transport|Access denied|insecure/i.test(e.message));
    assert.equal(w.errors, 0, JSON.stringify(w.byStatus));
    const served = await mixedStateViolations(s);
    assert.ok(served.unew > 0, 'Unew served after the switch');
    assert.equal(served.violations, 0, 'no request served by Uold after the first one served by Unew');
    assert.deepEqual(await writesByOthersThanApp(s), []);
    const pauseMs = Math.max(0, ...w.timeline.map((b) => b.max));
    assert.ok(cut.holdMs > 0 && cut.totalMs > 0, JSON.stringify(cut));
    console.log(`      pause over TLS: cut-over total ${cut.totalMs.toFixed(1)} ms (hold ${cut.holdMs.toFixed(1)}, drain ${cut.drainMs.toFixed(1)}, flush ${cut.flushMs.toFixed(1)}, verify ${cut.verifyMs} ms); largest client latency ${pauseMs} ms; ${w.requests} requests, ${w.ledger.length} writes, 0 lost, 0 mixed`);
  });
});
