/**
 * Launches auction v2 with a fault recipe's launch-time changes applied, the
 * same way for both strategies (rolling front-ends and Imago's Unew app):
 *   FAULTLAB_DB_HOST / FAULTLAB_DB_PORT  rewrite the host / port of DATABASE_URL
 *   FAULTLAB_LISTEN_PORT                 listen on this port instead of PORT
 * Without these variables it is exactly `examples/auction/v2/main.ts`.
 */
const env = process.env;
if (env.DATABASE_URL && (env.FAULTLAB_DB_HOST || env.FAULTLAB_DB_PORT)) {
  const u = new URL(env.DATABASE_URL);
  if (env.FAULTLAB_DB_HOST) u.hostname = env.FAULTLAB_DB_HOST;
  if (env.FAULTLAB_DB_PORT) u.port = env.FAULTLAB_DB_PORT;
  env.DATABASE_URL = u.toString();
}
if (env.FAULTLAB_LISTEN_PORT) env.PORT = env.FAULTLAB_LISTEN_PORT;
require('../examples/auction/v2/main');
