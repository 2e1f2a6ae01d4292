/**
 * A decorating proxy for tests: forwards GETs to a service and adds the kind
 * of fields real systems have and the auction sample does not — a timestamp
 * with milliseconds and a random request id in every JSON object reply, and a
 * random trace header — so noise learning has real noise to learn.
 */
import http from 'node:http';
import { randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';

export interface NoisyProxy { url: string; close(): Promise<void> }

export async function noisyProxy(target: string): Promise<NoisyProxy> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 16 });
  const server = http.createServer((req, res) => {
    const headers = { ...req.headers };
    delete headers.host;
    const up = http.request(new URL(req.url ?? '/', target), { method: req.method, headers, agent }, (r) => {
      const chunks: Buffer[] = [];
      r.on('data', (c: Buffer) => chunks.push(c));
      r.on('end', () => {
        let body = Buffer.concat(chunks);
        try {
          const json = JSON.parse(body.toString('utf8'));
          if (json && typeof json === 'object' && !Array.isArray(json)) {
            body = Buffer.from(JSON.stringify({ ...json, servedAt: new Date().toISOString(), requestId: randomUUID() }));
          }
        } catch { /* not JSON: pass through */ }
        res.writeHead(r.statusCode ?? 502, { 'content-type': r.headers['content-type'] ?? 'application/octet-stream', 'content-length': body.length, 'x-trace-id': randomUUID() });
        res.end(body);
      });
    });
    up.on('error', (e) => { res.writeHead(502); res.end(e.message); });
    req.pipe(up);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => new Promise<void>((resolve) => { agent.destroy(); server.closeAllConnections(); server.close(() => resolve()); }),
  };
}
