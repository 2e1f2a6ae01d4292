/**
 * The CLI, the library and the worker reach Temporal with the same
 * connection settings, through a real TLS-terminating, client-certificate-
 * checking proxy (nginx, grpc_pass, ssl_verify_client on) in front of the dev
 * server; certificates made here with openssl and a throwaway CA. A worker or
 * CLI without the client certificate, with the wrong CA, or in plain text is
 * refused with CLIENT_UNREACHABLE naming the link and the setting to fix.
 */
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { temporal } from '@temporalio/proto';
import { connect, resolveSettings } from '../../client/connection';
import { isImagoError } from '../../lib/errors';
import { CertificateAuthority } from '../../lib/x509';
import { createWorker } from '../../worker/run';
import { GrpcTlsProxy } from '../fixtures/grpc-tls-proxy';
import { onTeardown, temporalFixture, workflowBundleFixture } from '../fixtures/servers';

describe('client and worker: Temporal over mTLS through a proxy', function () {
  this.timeout(180_000);
  let dir: string;
  let proxy: GrpcTlsProxy;
  let env: NodeJS.ProcessEnv;
  let ns: string;

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'imago-temporal-tls-'));
    onTeardown(async () => fs.rmSync(dir, { recursive: true, force: true }));
    const ca = await CertificateAuthority.create(path.join(dir, 'ca'), 'temporal-ca');
    const server = await ca.issue('temporal-frontend', { usage: 'server', names: ['127.0.0.1', 'localhost'] });
    const client = await ca.issue('imago-worker', { usage: 'client' });
    const t = await temporalFixture();
    ns = t.namespace;
    proxy = await GrpcTlsProxy.start({ upstream: t.address, cert: server.cert, key: server.key, clientCa: ca.certFile });
    // As an operator would configure both the CLI and the worker: the Temporal CLI's variables only.
    env = {
      XDG_CONFIG_HOME: path.join(dir, 'no-config'), TEMPORAL_ADDRESS: proxy.address, TEMPORAL_NAMESPACE: ns,
      TEMPORAL_TLS_CERT: client.cert, TEMPORAL_TLS_KEY: client.key, TEMPORAL_TLS_CA: ca.certFile,
    };
  });

  it('the CLI and the worker connect with the same settings; the worker polls through the proxy', async () => {
    const settings = resolveSettings({}, env);
    assert.deepEqual([settings.sources.address, settings.sources.tlsCert, settings.tls?.certPath], ['env', 'env', env.TEMPORAL_TLS_CERT]);
    const { client, connection } = await connect(settings);
    try {
      const d = await client.workflowService.describeNamespace({ namespace: ns });
      assert.equal(d.namespaceInfo?.name, ns);

      const taskQueue = `tls-${Date.now()}`;
      const { worker, close } = await createWorker({ connection: settings, taskQueue, workflowBundlePath: await workflowBundleFixture() });
      const running = worker.run();
      try {
        // The worker's long polls reach the server only through the proxy: the server lists the poller.
        const deadline = Date.now() + 20_000;
        let pollers = 0;
        while (Date.now() < deadline && pollers === 0) {
          const r = await client.workflowService.describeTaskQueue({ namespace: ns, taskQueue: { name: taskQueue }, taskQueueType: temporal.api.enums.v1.TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW });
          pollers = r.pollers?.length ?? 0;
          if (!pollers) await new Promise((res) => setTimeout(res, 250));
        }
        assert.ok(pollers >= 1, 'the worker polls its task queue through the mTLS proxy');
      } finally {
        worker.shutdown();
        await running;
        await close();
      }
    } finally {
      await connection.close();
    }
  });

  it('a worker without the client certificate is refused, naming the link and the setting', async () => {
    const settings = resolveSettings({}, { ...env, TEMPORAL_TLS_CERT: '', TEMPORAL_TLS_KEY: '' });
    await assert.rejects(createWorker({ connection: settings, taskQueue: 'tls-refused', workflowBundlePath: await workflowBundleFixture() }), (e) => {
      assert.ok(isImagoError(e, 'CLIENT_UNREACHABLE'), String(e));
      assert.match(e.message, /: the worker → Temporal at 127\.0\.0\.1:\d+ \(address from env; namespace \S+, TLS, no client certificate/);
      assert.match(e.message, /without a client certificate/);
      assert.match(e.message, /--tls-cert and --tls-key \(TEMPORAL_TLS_CERT, TEMPORAL_TLS_KEY\)/);
      return true;
    });
  });

  it("the CLI refuses a proxy whose certificate its CA did not sign, and says it is the server's certificate", async () => {
    const other = await CertificateAuthority.create(path.join(dir, 'other'), 'other-ca');
    const settings = resolveSettings({}, { ...env, TEMPORAL_TLS_CA: other.certFile });
    await assert.rejects(connect(settings), (e) => {
      assert.ok(isImagoError(e, 'CLIENT_UNREACHABLE'), String(e));
      assert.match(e.message, /: the CLI → Temporal at/);
      assert.match(e.message, /the server's certificate does not verify: give the CA that signed it \(--tls-ca, TEMPORAL_TLS_CA\)/);
      return true;
    });
  });

  it('plain text to the TLS endpoint is refused with the hint to pass --tls', async () => {
    const settings = resolveSettings({}, { XDG_CONFIG_HOME: env.XDG_CONFIG_HOME, TEMPORAL_ADDRESS: proxy.address, TEMPORAL_NAMESPACE: ns });
    await assert.rejects(connect(settings), (e) => {
      assert.ok(isImagoError(e, 'CLIENT_UNREACHABLE'), String(e));
      assert.match(e.message, /plain text, no TLS/);
      assert.match(e.message, /did not speak plain-text gRPC: if it expects TLS, pass --tls/);
      return true;
    });
  });
});
