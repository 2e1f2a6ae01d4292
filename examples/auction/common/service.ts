/**
 * Process lifecycle shared by both versions: load and validate the config,
 * open the pool, serve, answer GET /health, and stop gracefully on SIGTERM or
 * SIGINT: stop accepting, let in-flight requests finish (so every write a
 * client saw acknowledged was committed first), close the pool, exit 0.
 */
import { loadConfig, type ServiceConfig } from './config';
import { createDb, type Db } from './db';
import { serve, type Route } from './http';

export async function runService(version: string, buildRoutes: (db: Db, cfg: ServiceConfig) => Route[]): Promise<void> {
  const log = (line: string) => process.stdout.write(`${new Date().toISOString()} auction-${version} ${line}\n`);
  let cfg: ServiceConfig;
  try { cfg = loadConfig(); } catch (err) { log((err as Error).message); process.exit(2); }
  const db = createDb(cfg);
  const health: Route = {
    method: 'GET', pattern: /^\/health$/,
    handler: async () => { await db.query('SELECT 1'); return [200, { status: 'ok', version }]; },
  };
  const app = serve([health, ...buildRoutes(db, cfg)], { port: cfg.port, maxBodyBytes: cfg.maxBodyBytes, logRequests: cfg.logRequests, log });
  const port = await app.listen();
  log(`listening on http://127.0.0.1:${port} (pool ${cfg.poolSize}, timezone ${cfg.timezone}, charset ${cfg.charset})`);
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log(`${signal}: draining ${app.inflight} in-flight request(s)`);
    await app.stop(cfg.shutdownTimeoutMs);
    // The pool closes only after the last reply: a handler still committing needs it.
    await db.end().catch(() => undefined);
    log('stopped');
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
}
