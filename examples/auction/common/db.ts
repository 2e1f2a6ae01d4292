/** The mysql2 pool both versions use, configured from ServiceConfig, with a per-query timeout and a transaction helper. */
import * as fs from 'node:fs';
import * as mysql from 'mysql2/promise';
import type { ServiceConfig } from './config';

export interface Db {
  pool: mysql.Pool;
  query<T = any>(sql: string, params?: unknown[]): Promise<T[]>;
  /** Runs fn in one transaction on one connection: commit on success, rollback on any error. */
  tx<T>(fn: (q: <R = any>(sql: string, params?: unknown[]) => Promise<R[]>) => Promise<T>): Promise<T>;
  end(): Promise<void>;
}

const DEADLOCK_ATTEMPTS = 10;

/**
 * mysql2's options for a database URL that may carry its TLS as MySQL's own
 * clients spell it: `?ssl-mode=VERIFY_IDENTITY&ssl-ca=/path/ca.pem` (and
 * ssl-cert, ssl-key for a client certificate; VERIFY_CA checks the signature
 * only). The parameters are taken out of the URL, which mysql2 would read as
 * options of its own.
 */
export function dbOptionsOf(url: string): { uri: string; ssl?: mysql.SslOptions } {
  const u = new URL(url);
  const p = (k: string) => u.searchParams.get(k) ?? undefined;
  const [mode, ca, cert, key] = [p('ssl-mode'), p('ssl-ca'), p('ssl-cert'), p('ssl-key')];
  for (const k of [...u.searchParams.keys()].filter((k) => k.startsWith('ssl-'))) u.searchParams.delete(k);
  if (!mode || mode === 'DISABLED') return { uri: u.toString() };
  if (mode !== 'VERIFY_IDENTITY' && mode !== 'VERIFY_CA') throw new Error(`database URL: ssl-mode=${mode} is not supported (VERIFY_IDENTITY, VERIFY_CA or DISABLED): a certificate that is not verified proves nothing`);
  const read = (f: string | undefined) => (f ? fs.readFileSync(f, 'utf8') : undefined);
  return { uri: u.toString(), ssl: { ca: read(ca), cert: read(cert), key: read(key), rejectUnauthorized: true, verifyIdentity: mode === 'VERIFY_IDENTITY' } };
}

export function createDb(cfg: ServiceConfig): Db {
  const pool = mysql.createPool({
    ...dbOptionsOf(cfg.databaseUrl), connectionLimit: cfg.poolSize, timezone: cfg.timezone, charset: cfg.charset,
    waitForConnections: true, queueLimit: 0, enableKeepAlive: true,
  });
  const timeout = cfg.queryTimeoutMs;
  return {
    pool,
    async query(sql, params = []) { const [rows] = await pool.query({ sql, timeout }, params); return rows as any[]; },
    async tx(fn) {
      for (let attempt = 1; ; attempt++) {
        const conn = await pool.getConnection();
        try {
          await conn.beginTransaction();
          const result = await fn(async (sql, params = []) => { const [rows] = await conn.query({ sql, timeout }, params); return rows as any[]; });
          await conn.commit();
          return result;
        } catch (err) {
          await conn.rollback().catch(() => undefined);
          // InnoDB chose this transaction as a deadlock victim (e.g. two registrations taking
          // gap locks on the same nickname range): it was rolled back whole, so running it again
          // is safe and is what InnoDB expects of the application.
          if ((err as { errno?: number }).errno === 1213 && attempt < DEADLOCK_ATTEMPTS) {
            // A short random back-off, so the same transactions do not collide again in lock step.
            await new Promise((r) => setTimeout(r, Math.random() * 10 * attempt));
            continue;
          }
          throw err;
        } finally {
          conn.release();
        }
      }
    },
    end: () => pool.end(),
  };
}
