/**
 * The load test's runner on real HTTP servers: reads go to "Unew", writes to
 * "the sandbox", nothing anywhere else; the rate follows the multiple of the
 * peak; a slow endpoint of Unew fails the test and its line comes first.
 */
import { strict as assert } from 'node:assert';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { replayLoad } from '../../activities/load-test';
import { evaluateGate } from '../../workflows/upgrade-state';
import type { RecordedRequest } from '../../compare/types';

function server(handler: (req: http.IncomingMessage, res: http.ServerResponse) => void) {
  const s = http.createServer(handler);
  return new Promise<{ url: string; close: () => Promise<void> }>((resolve) => s.listen(0, '127.0.0.1', () => resolve({
    url: `http://127.0.0.1:${(s.address() as AddressInfo).port}`,
    close: () => new Promise<void>((r) => { s.closeAllConnections(); s.close(() => r()); }),
  })));
}

describe('compare: the load test runner (replayLoad) on loopback servers', function () {
  this.timeout(30_000);
  it("sends reads to Unew and writes to the sandbox at multiple × Uold's peak, and fails a slow endpoint", async () => {
    const seen = { unew: [] as string[], sandbox: [] as string[] };
    const unew = await server((req, res) => {
      seen.unew.push(`${req.method} ${req.url}`);
      const slow = req.url === '/slow';
      setTimeout(() => { res.writeHead(200, { 'content-type': 'application/json' }); res.end('{}'); }, slow ? 400 : 1);
    });
    const sandbox = await server((req, res) => {
      let body = '';
      req.on('data', (d) => { body += d; });
      req.on('end', () => { seen.sandbox.push(`${req.method} ${req.url} ${body}`); res.writeHead(201); res.end('{}'); });
    });
    try {
      const recorded = {
        reads: [
          { method: 'GET', url: '/fast', headers: {}, endpoint: 'GET /fast', write: false, at: 1 },
          { method: 'GET', url: '/slow', headers: {}, endpoint: 'GET /slow', write: false, at: 2 },
        ] as RecordedRequest[],
        writes: [{ method: 'POST', url: '/w', headers: { 'content-type': 'application/json' }, bodyBase64: Buffer.from('{"a":1}').toString('base64'), endpoint: 'POST /w', write: true, at: 3 }] as RecordedRequest[],
      };
      const rule = { enabled: true, multiple: 2, minRatePerSec: 1, maxRatePerSec: 500, durationMs: 2_000, concurrency: 64, maxErrorRate: 0.001, maxP99Ratio: 3, noiseFloorMs: 250 };
      const r = await replayLoad(recorded, { peak: 15, uoldP99: new Map([['GET /fast', 5], ['GET /slow', 5]]), rule, unewUrl: unew.url, sandboxUrl: sandbox.url, heartbeat: () => undefined });
      const total = seen.unew.length + seen.sandbox.length;
      // 2 × 15 req/s for 2 s = 60 requests (the loop's last tick may miss one or two).
      assert.ok(total >= 55 && total <= 60, `${total} requests sent`);
      assert.ok(seen.unew.every((x) => x.startsWith('GET ')), 'only reads reach Unew');
      assert.ok(seen.sandbox.length >= 18 && seen.sandbox.every((x) => x === 'POST /w {"a":1}'), 'writes, with their bodies, reach the sandbox only');
      assert.equal(r.passed, false);
      assert.match(r.output.split('\n')[0], /^FAIL: GET \/slow: Unew's p99 under load 4\d\d(\.\d)? ms vs Uold's live p99 5 ms/, r.output);
      assert.ok(!/FAIL: GET \/fast/.test(r.output), 'a fast endpoint within the noise floor passes');
      assert.match(evaluateGate([r], null, null).reasons[0], /^test 'load test' failed \(exit 1\): FAIL: GET \/slow/);

      const noSandbox = await replayLoad(recorded, { peak: 5, uoldP99: new Map(), rule: { ...rule, durationMs: 1_000 }, unewUrl: unew.url, sandboxUrl: null, heartbeat: () => undefined });
      assert.equal(seen.sandbox.length, seen.sandbox.length, 'unchanged');
      assert.match(noSandbox.output, /writes skipped: no sandbox/);
      assert.equal(noSandbox.passed, true, noSandbox.output);
    } finally {
      await unew.close();
      await sandbox.close();
    }
  });
});
