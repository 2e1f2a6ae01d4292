/**
 * The demo's failure account against a real HTTP server on loopback that
 * fails on purpose (502s, reset connections, slow replies that push the load
 * generator over its own limit): every failure the generator counts reaches
 * the list, with its kind, and the overload is counted apart.
 */
import { strict as assert } from 'node:assert';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { startWorkload, type FailedRequest } from '../../examples/auction/workload/generator';
import { failureLines, splitFailures } from '../../client/demo/outcome';

describe('client: the demo lists every failed request the load generator saw', function () {
  this.timeout(30_000);
  let server: http.Server;
  let url = '';
  let n = 0;

  before(async () => {
    // Every 4th request gets 502, every 7th has its connection reset; all replies wait 150 ms.
    server = http.createServer((req, res) => {
      const i = ++n;
      setTimeout(() => {
        if (i % 7 === 0) { req.socket.destroy(); return; }
        res.writeHead(i % 4 === 0 ? 502 : 200, { 'content-type': 'application/json' }).end('{}');
      }, 150);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(async () => { server.closeAllConnections(); await new Promise((r) => server.close(r)); });

  it('kinds (HTTP status, network error, overload), times, and the overload apart', async () => {
    const failures: FailedRequest[] = [];
    const t0 = Date.now();
    const w = await startWorkload({
      baseUrl: url, mix: 'browsing', rate: 200, durationMs: 1_500, maxInFlight: 20, users: [1, 10], items: [1, 10], seed: 1,
      onFailure: (f) => failures.push(f),
    }).done;
    assert.equal(failures.length, w.errors, 'every counted error is listed');
    const { failed, overload } = splitFailures(failures);
    assert.equal(overload.length, w.byStatus.overload, 'overload counted apart');
    assert.ok(overload.length > 0, 'the slow replies pushed the generator over its limit');
    assert.equal(failed.filter((f) => f.kind === '502').length, w.byStatus['502']);
    assert.ok(failed.some((f) => f.kind === 'ECONNRESET' || f.kind === 'reply-cut'), `a reset: ${[...new Set(failed.map((f) => f.kind))]}`);
    assert.ok(failures.every((f) => f.at >= t0 && f.at <= Date.now()));
    for (const f of failed) assert.ok(f.latencyMs >= 100 && /^GET \//.test(`${f.method} ${f.path}`), JSON.stringify(f));

    const timings = [{ phase: 'data-transfer' as const, startedAt: t0 }];
    const lines = failureLines(failures, timings, { max: 1_000 });
    assert.equal(lines[0], `Failed requests (${failed.length}), with when they left relative to the upgrade's phases:`);
    assert.equal(lines.filter((l) => /^ {2}data-transfer \+\d+\.\d s +GET \/\S* +(HTTP 502|ECONNRESET|reply-cut) after [\d,]+\.\d ms$/.test(l)).length, failed.length);
    assert.match(lines.at(-1)!, new RegExp(`^Not sent by the load generator: ${overload.length} request\\(s\\), its own overload limit`));
  });
});
