/**
 * A stand-in for "the new version" in the provider's tests (the whole
 * upgrade runs the real auction v2 instead): it listens on PORT and answers
 * /health 200 only while DATABASE_URL answers SELECT 1, and / with what it
 * was started with, so a test sees that the boot script gave it the secret
 * and the plan's environment.
 */
import * as http from 'node:http';
import * as mysql from 'mysql2/promise';

// Mocha loads every file of test/aws: only a direct run serves.
if (require.main === module) serve(Number(process.env.PORT), process.env.DATABASE_URL ?? '');

async function dbOk(dbUrl: string): Promise<boolean> {
  try {
    const c = await mysql.createConnection({ uri: dbUrl, connectTimeout: 2_000 });
    try { await c.query('SELECT 1'); return true; } finally { await c.end(); }
  } catch { return false; }
}

function serve(port: number, dbUrl: string): void {
  const server = http.createServer((req, res) => {
    void dbOk(dbUrl).then((db) => {
      const health = req.url === '/health';
      res.writeHead(health && !db ? 503 : 200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ version: 'v2', db, logLevel: process.env.LOG_LEVEL ?? null, cwd: process.cwd() }));
    });
  });
  server.listen(port, '127.0.0.1');
  process.on('SIGTERM', () => server.close(() => process.exit(0)));
}
