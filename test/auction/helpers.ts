/** Shared set-up for the auction tests: one MariaDB per test file, small seeded data sets, services started and stopped. */
import type { MariaDbInstance } from '../../lib/mariadb';
import { mariadbFixture, onTeardown } from '../fixtures/servers';
import { setupDatabase } from '../../examples/auction/database';
import { seed, type SeedOptions } from '../../examples/auction/seeder';
import { copyConverted } from '../../examples/auction/convert-copy';
import { startAuction, getJson, type RunningAuction } from '../../examples/auction/launcher';

export const SMALL: SeedOptions = { users: 300, items: 800, bids: 3000, comments: 600, seed: 7 };

export interface AuctionDbs {
  db: MariaDbInstance;
  v1: { app: string; admin: string; name: string };
  v2?: { app: string; admin: string; name: string };
}

let counter = 0;

/** Seeds a v1 database and, when asked, a v2 database converted from it with conversion.ts. */
export async function prepare(opts: { seed?: SeedOptions; v2?: boolean; db?: MariaDbInstance } = {}): Promise<AuctionDbs> {
  const db = opts.db ?? await mariadbFixture();
  const n = ++counter;
  const make = async (version: 'v1' | 'v2') => {
    const name = `auction_${version}_${n}`;
    await setupDatabase(db, version, { database: name, appUser: `app_${version}_${n}`, appPassword: 'pw' });
    return { name, app: db.urlFor(`app_${version}_${n}`, 'pw', name), admin: `${db.rootUrl}${name}` };
  };
  const v1 = await make('v1');
  await seed(v1.admin, opts.seed ?? SMALL);
  if (!opts.v2) return { db, v1 };
  const v2 = await make('v2');
  await copyConverted(v1.admin, v2.admin);
  return { db, v1, v2 };
}

export async function start(version: 'v1' | 'v2', dbUrl: string, env: Record<string, string> = {}): Promise<RunningAuction> {
  const svc = await startAuction({ version, dbUrl, env });
  onTeardown(() => svc.stop());
  return svc;
}

export { getJson };

/** Row counts of every table of a database, to prove that refused requests wrote nothing. */
export async function rowCounts(db: MariaDbInstance, database: string): Promise<Record<string, number>> {
  const tables = await db.query('SELECT table_name AS t FROM information_schema.tables WHERE table_schema = ? ORDER BY 1', [database]) as any[];
  const out: Record<string, number> = {};
  for (const { t } of tables) out[t] = Number(((await db.query(`SELECT COUNT(*) AS n FROM \`${database}\`.\`${t}\``)) as any[])[0].n);
  return out;
}
