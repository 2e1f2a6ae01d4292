/**
 * Starts auction v1 or v2 as a child process (Node with tsx's CJS loader, so
 * no build step) on a loopback port and waits until GET /health answers 200.
 * stop() sends SIGTERM: the service drains in-flight requests before exiting.
 */
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import { auctionError } from './errors';
import { freePort } from '../../lib/ports';
import { ManagedProcess } from '../../lib/proc';

export interface StartAuctionOptions {
  version: 'v1' | 'v2';
  dbUrl: string;
  port?: number;
  /** Extra environment (AUCTION_POOL_SIZE, AUCTION_V2_FAULT, ...), on top of this process's. */
  env?: Record<string, string>;
  logFile?: string;
  /** How long to wait for /health (default 30 s). */
  healthTimeoutMs?: number;
}

export interface RunningAuction { url: string; port: number; proc: ManagedProcess; stop(): Promise<void> }

export function getJson(url: string, timeoutMs = 2_000): Promise<{ status: number; body: any }> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { timeout: timeoutMs, agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { text += d; });
      res.on('end', () => { try { resolve({ status: res.statusCode ?? 0, body: text ? JSON.parse(text) : undefined }); } catch (e) { reject(e); } });
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}

export async function startAuction(opts: StartAuctionOptions): Promise<RunningAuction> {
  const port = opts.port ?? await freePort();
  // A log of our own (no logFile given) is removed with the app once it has stopped; one that failed to start keeps it.
  const ownDir = opts.logFile ? undefined : fs.mkdtempSync(path.join(os.tmpdir(), 'imago-auction-'));
  const logFile = opts.logFile ?? path.join(ownDir!, `${opts.version}.log`);
  const entry = path.join(__dirname, opts.version, 'main.ts');
  const proc = new ManagedProcess(`auction-${opts.version}:${port}`, process.execPath, ['--require', require.resolve('tsx/cjs'), entry], logFile, {
    env: { ...process.env, ...opts.env, PORT: String(port), DATABASE_URL: opts.dbUrl },
  });
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + (opts.healthTimeoutMs ?? 30_000);
  for (;;) {
    if (proc.exitedAlready) throw auctionError('AUCTION_START_FAILED', `auction ${opts.version} exited with ${proc.exitCode}; log ${logFile}:\n${proc.tail()}`);
    const ok = await getJson(`${url}/health`).then((r) => r.status === 200, () => false);
    if (ok) break;
    if (Date.now() > deadline) {
      await proc.stop(2_000);
      throw auctionError('AUCTION_START_FAILED', `auction ${opts.version} on port ${port} not healthy within ${opts.healthTimeoutMs ?? 30_000} ms; log ${logFile}:\n${proc.tail()}`);
    }
    await new Promise((r) => setTimeout(r, 150));
  }
  return { url, port, proc, stop: async () => { await proc.stop(20_000); if (ownDir) fs.rmSync(ownDir, { recursive: true, force: true }); } };
}
