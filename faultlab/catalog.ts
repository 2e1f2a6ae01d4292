/**
 * The fault catalog: small declarative recipes, one per upgrade fault, typed
 * by the seed's upgrade-centric fault model. Each recipe is applied the same
 * way to both strategies (see apply.ts): launch-time changes go to every v2
 * front-end (rolling) or to Unew's application (Imago); SQL goes to the
 * database the v2 front-ends use (the shared store for rolling, Unew's own
 * store for Imago), run by the operator's admin account after the v2 schema
 * step; procedural changes alter the procedure's steps.
 */

export type FaultType = 1 | 2 | 3 | 4;
export const FAULT_TYPES: Record<FaultType, string> = {
  1: 'simple configuration / procedural error',
  2: 'semantic configuration error',
  3: 'broken environmental dependency',
  4: 'data-access error',
};

export interface FaultRecipe {
  id: string;
  /** 0 = the control run (no fault). */
  type: FaultType | 0;
  description: string;
  /** Environment of the v2 application (AUCTION_*, NODE_OPTIONS, FAULTLAB_DB_HOST/PORT). */
  appEnv?: Record<string, string>;
  /** v2 listens on a port already in use by another service of the host (Uold's database port). */
  listenOnBusyPort?: boolean;
  /** v2's database URL points at a closed port. */
  dbPortClosed?: boolean;
  /** SQL run as admin on the v2 front-ends' database after the schema step; {db} and {user} are substituted (user is 'name'@'host', once per host). */
  sql?: string[];
  /** SQL run once per host of the v2 account. */
  perUserSql?: string[];
  /** Procedural: a step left out. */
  omitStep?: 'schema';
  /** Procedural: v2 front-ends start before the schema step (rolling); Imago's workflow fixes the order. */
  schemaAfterApp?: boolean;
  /**
   * A fault whose cost shows only at some data size or load runs there, for both strategies (the
   * campaign's small default size and rate otherwise): a missing index costs nothing on 1,000 rows.
   */
  load?: { size?: Partial<{ users: number; items: number; bids: number }>; rate?: number; /** The bound on the Imago upgrade at that size (ms). */ imagoBoundMs?: number };
}

export const NO_FAULT: FaultRecipe = { id: 'none', type: 0, description: 'control run: the upgrade as documented, no fault' };

/** The load-dependent faults' data size, and a control run there: what a healthy v2 shows at that size. */
const LARGE = { size: { users: 20_000, items: 500_000, bids: 500_000 }, imagoBoundMs: 300_000 };
export const NO_FAULT_LARGE: FaultRecipe = { id: 'none-large', type: 0, description: 'control run at the size of the load-dependent faults (500,000 items and bids)', load: LARGE };

export const CATALOG: FaultRecipe[] = [
  // 1 — simple configuration / procedural errors
  { id: 'db-host-typo', type: 1, description: "typo in the database host name ('localhots')", appEnv: { FAULTLAB_DB_HOST: 'localhots' } },
  { id: 'db-port-wrong', type: 1, description: 'wrong database port (a closed port)', dbPortClosed: true },
  { id: 'schema-step-omitted', type: 1, description: 'omitted step: the v2 schema is not installed / not migrated', omitStep: 'schema' },
  { id: 'steps-reordered', type: 1, description: 'two steps in the wrong order: v2 front-ends started before the schema step', schemaAfterApp: true },
  // 2 — semantic configuration errors
  { id: 'query-timeout-tiny', type: 2, description: 'query timeout 2 ms: valid value, breaks under load', appEnv: { AUCTION_QUERY_TIMEOUT_MS: '2' } },
  { id: 'pool-size-1', type: 2, description: 'connection pool of 1 for the whole front-end', appEnv: { AUCTION_POOL_SIZE: '1' } },
  { id: 'timezone-wrong', type: 2, description: "database time zone '+05:00' instead of UTC", appEnv: { AUCTION_DB_TIMEZONE: '+05:00' } },
  // Faults only writes reveal: every read of Unew is right (its data comes from Uold); what v2 itself stores is wrong.
  { id: 'timezone-write', type: 2, description: "the write path's session time zone '+05:00': new bids, users, comments dated 5 h ahead (reads unaffected)", appEnv: { FAULTLAB_WRITE_TIMEZONE: '+05:00' } },
  { id: 'amount-write', type: 4, description: "new bids stored without their cents (the reply shows the amount sent; reads of older data unaffected)", appEnv: { FAULTLAB_WRITE_AMOUNT: 'drop-cents' } },
  // 3 — broken environmental dependencies
  { id: 'library-missing', type: 3, description: 'a preloaded module that is not installed (NODE_OPTIONS --require)', appEnv: { NODE_OPTIONS: '--require /nonexistent/faultlab-apm-agent.js' } },
  { id: 'port-conflict', type: 3, description: 'listening-port conflict with another service of the host', listenOnBusyPort: true },
  { id: 'config-path-wrong', type: 3, description: 'wrong file path for the configuration file', appEnv: { AUCTION_CONFIG_FILE: '/etc/auction/v2/config.json' } },
  { id: 'db-name-unresolvable', type: 3, description: 'database host name that does not resolve (DNS)', appEnv: { FAULTLAB_DB_HOST: 'auction-db.invalid' } },
  // 4 — data-access errors
  {
    id: 'privilege-missing-insert', type: 4, description: 'missing privilege: v2 account may not INSERT into item_bids',
    perUserSql: ['REVOKE INSERT ON `{db}`.* FROM {user}',
      ...['users', 'comments', 'purchases', 'bid_sequence', 'items', 'categories', 'regions'].map((t) => `GRANT INSERT ON \`{db}\`.\`${t}\` TO {user}`)],
  },
  {
    id: 'privilege-missing-select', type: 4, description: 'missing privilege: v2 account may not SELECT comments',
    perUserSql: ['REVOKE SELECT ON `{db}`.* FROM {user}',
      ...['users', 'item_bids', 'purchases', 'bid_sequence', 'items', 'categories', 'regions'].map((t) => `GRANT SELECT ON \`{db}\`.\`${t}\` TO {user}`)],
  },
  { id: 'privilege-excessive', type: 4, description: 'excessive privilege: v2 account gets ALL PRIVILEGES ON *.* WITH GRANT OPTION', perUserSql: ['GRANT ALL PRIVILEGES ON *.* TO {user} WITH GRANT OPTION'] },
  { id: 'schema-mismatch', type: 4, description: 'application/schema mismatch: categories.slug missing', sql: ['ALTER TABLE `{db}`.categories DROP COLUMN slug'] },
  {
    id: 'index-missing', type: 4, description: 'missing indexes on items (category, end date) and item_bids (user)', sql: ['ALTER TABLE `{db}`.items DROP INDEX ix_items_category_end', 'ALTER TABLE `{db}`.item_bids DROP INDEX ix_item_bids_user'],
    // On 1,000 items a scan costs what an index lookup does; on half a million it costs a fifth of a second.
    load: LARGE,
  },
];

/** The CI subset: one fault per type. */
export const FAST_SUBSET = ['db-host-typo', 'query-timeout-tiny', 'library-missing', 'privilege-missing-insert'];

export function faultById(id: string): FaultRecipe {
  const f = id === 'none' ? NO_FAULT : id === NO_FAULT_LARGE.id ? NO_FAULT_LARGE : CATALOG.find((x) => x.id === id);
  if (!f) throw new Error(`unknown fault '${id}'`);
  return f;
}

/** SQL statements of a recipe for one database and one account (with its hosts). */
export function recipeSql(f: FaultRecipe, db: string, user: string, hosts = ['127.0.0.1', 'localhost', '%']): string[] {
  const sub = (s: string, u?: string) => s.replaceAll('{db}', db).replaceAll('{user}', u ?? '');
  const out = (f.sql ?? []).map((s) => sub(s));
  for (const h of hosts) for (const s of f.perUserSql ?? []) out.push(sub(s, `'${user}'@'${h}'`));
  return out;
}
