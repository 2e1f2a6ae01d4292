/**
 * Launches auction v2 with a fault recipe's launch-time changes applied, the
 * same way for both strategies (rolling front-ends and Imago's Unew app):
 *   FAULTLAB_DB_HOST / FAULTLAB_DB_PORT  rewrite the host / port of DATABASE_URL
 *   FAULTLAB_LISTEN_PORT                 listen on this port instead of PORT
 *   FAULTLAB_WRITE_TIMEZONE=+05:00       the write path's session time zone: every date v2
 *                                        writes (INSERT/UPDATE) is stored that far ahead; reads unchanged
 *   FAULTLAB_WRITE_AMOUNT=drop-cents     new bids' amounts stored without their cents; the reply
 *                                        and every read of older data unchanged
 * Without these variables it is exactly `examples/auction/v2/main.ts`. The
 * write faults wrap mysql2's pool here, in test code: v2 itself is unchanged.
 */
const env = process.env;
if (env.DATABASE_URL && (env.FAULTLAB_DB_HOST || env.FAULTLAB_DB_PORT)) {
  const u = new URL(env.DATABASE_URL);
  if (env.FAULTLAB_DB_HOST) u.hostname = env.FAULTLAB_DB_HOST;
  if (env.FAULTLAB_DB_PORT) u.port = env.FAULTLAB_DB_PORT;
  env.DATABASE_URL = u.toString();
}
if (env.FAULTLAB_LISTEN_PORT) env.PORT = env.FAULTLAB_LISTEN_PORT;
if (env.FAULTLAB_WRITE_TIMEZONE || env.FAULTLAB_WRITE_AMOUNT) wrapWrites(env.FAULTLAB_WRITE_TIMEZONE, env.FAULTLAB_WRITE_AMOUNT);
require('../examples/auction/v2/main');

/** Rewrites the parameters of v2's writes as the faulty write path would; everything else passes as it is. */
function wrapWrites(timezone: string | undefined, amount: string | undefined): void {
  const mysql = require('mysql2/promise');
  const m = timezone ? /^([+-])(\d\d):(\d\d)$/.exec(timezone) : null;
  if (timezone && !m) throw new Error(`FAULTLAB_WRITE_TIMEZONE must be +HH:MM or -HH:MM, got '${timezone}'`);
  const shiftMs = m ? (m[1] === '-' ? -1 : 1) * (Number(m[2]) * 60 + Number(m[3])) * 60_000 : 0;
  const rewrite = (opts: unknown, params: unknown): unknown => {
    const sql = typeof opts === 'string' ? opts : String((opts as { sql?: string })?.sql ?? '');
    if (!Array.isArray(params) || !/^\s*(INSERT|UPDATE)\b/i.test(sql)) return params;
    let out = params;
    if (shiftMs) out = out.map((p) => (p instanceof Date ? new Date(p.getTime() + shiftMs) : p));
    // INSERT INTO item_bids (item_id, bid_id, user_id, qty, amount_cents, created_at): the amount is the 5th.
    if (amount === 'drop-cents' && /^\s*INSERT INTO item_bids\b/i.test(sql) && typeof out[4] === 'number') {
      out = [...out];
      out[4] = Math.floor((out[4] as number) / 100) * 100;
    }
    return out;
  };
  const wrapQuery = (target: { query: (...a: unknown[]) => unknown }) => {
    const query = target.query.bind(target);
    target.query = (opts: unknown, params?: unknown, ...rest: unknown[]) => query(opts, rewrite(opts, params), ...rest);
  };
  const createPool = mysql.createPool;
  mysql.createPool = (...args: unknown[]) => {
    const pool = createPool(...args);
    wrapQuery(pool);
    const getConnection = pool.getConnection.bind(pool);
    pool.getConnection = async () => { const conn = await getConnection(); if (!conn.__faultlab) { wrapQuery(conn); conn.__faultlab = true; } return conn; };
    return pool;
  };
}
