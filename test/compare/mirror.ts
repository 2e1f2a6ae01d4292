/**
 * Test helpers: a mini mirror that sends the same request to Uold and Unew
 * and builds the MirroredPair the ingress interceptor would hand over, and a
 * small JSON HTTP server to stand in for a service in unit tests.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { CapturedReply, MirroredPair } from '../../compare/types';

const agent = new http.Agent({ keepAlive: true, maxSockets: 16 });
let nextId = 1;

export function get(baseUrl: string, url: string): Promise<CapturedReply> {
  const started = performance.now();
  return new Promise((resolve) => {
    const req = http.get(new URL(url, baseUrl), { agent, timeout: 10000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks), latencyMs: performance.now() - started }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (e) => resolve({ status: 0, headers: {}, body: Buffer.alloc(0), latencyMs: performance.now() - started, error: e.message }));
  });
}

/** Sends GET url to Uold then Unew (as an interceptor does: primary first) and returns the pair. */
export async function mirror(uoldUrl: string, unewUrl: string, url: string, positions?: () => Promise<{ primary?: string; shadow?: string }>): Promise<MirroredPair> {
  const at = Date.now();
  const request = { method: 'GET', url, headers: { accept: 'application/json' } };
  const primary = await get(uoldUrl, url);
  const shadow = await get(unewUrl, url);
  const pair: MirroredPair = { id: nextId++, at, request, primary, shadow };
  if (positions) pair.positions = await positions();
  return pair;
}

export function jsonReply(body: unknown, status = 200): CapturedReply {
  return { status, headers: { 'content-type': 'application/json; charset=utf-8' }, body: Buffer.from(JSON.stringify(body)), latencyMs: 1 };
}

export function pairOf(url: string, primary: CapturedReply, shadow: CapturedReply): MirroredPair {
  return { id: nextId++, at: Date.now(), request: { method: 'GET', url, headers: {} }, primary, shadow };
}

export interface JsonServer { url: string; close(): Promise<void> }

/** A JSON server: handler(path) returns [status, body]. */
export async function jsonServer(handler: (path: string) => [number, unknown]): Promise<JsonServer> {
  const server = http.createServer((req, res) => {
    const [status, body] = handler(req.url ?? '/');
    const text = JSON.stringify(body);
    res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text) });
    res.end(text);
  });
  server.keepAliveTimeout = 2000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }),
  };
}

export function closeMirrorAgent(): void {
  agent.destroy();
}
