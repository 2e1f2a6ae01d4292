/**
 * Database set-up for the auction: creates the database, applies schema v1 or
 * v2, and creates the application's user with only the grants the app needs
 * (SELECT, INSERT, UPDATE on its own database: the app never deletes, never
 * changes the schema, never reads another database).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as mysql from 'mysql2/promise';
import type { MariaDbInstance } from '../../lib/mariadb';
import { auctionError } from './errors';
import { dbOptionsOf } from './common/db';

export type SchemaVersion = 'v1' | 'v2';

export interface SetupOptions {
  database: string;
  appUser: string;
  appPassword: string;
}

export const APP_GRANTS = 'SELECT, INSERT, UPDATE';

export function schemaSql(version: SchemaVersion): string {
  return fs.readFileSync(path.join(__dirname, 'schema', `${version}.sql`), 'utf8');
}

/** Opens an admin connection from an instance or a URL (multipleStatements on). */
export async function adminConnection(admin: MariaDbInstance | string, database?: string): Promise<mysql.Connection> {
  if (typeof admin !== 'string') return admin.connect(database);
  const c = await mysql.createConnection({ ...dbOptionsOf(admin), multipleStatements: true });
  if (database) await c.query(`USE \`${database}\``);
  return c;
}

export async function setupDatabase(admin: MariaDbInstance | string, version: SchemaVersion, opts: SetupOptions): Promise<void> {
  if (!/^[A-Za-z0-9_]{1,64}$/.test(opts.database)) throw auctionError('AUCTION_CONFIG_INVALID', `database name '${opts.database}' must be letters, digits and _`);
  const c = await adminConnection(admin);
  try {
    // Idempotent, so a retried activity can call it again: an empty database
    // gets the schema, one that already holds this version is left as it is,
    // anything else is refused rather than mixed.
    await c.query(`CREATE DATABASE IF NOT EXISTS \`${opts.database}\` CHARACTER SET utf8mb4`);
    await c.query(`USE \`${opts.database}\``);
    const [tables] = await c.query('SELECT table_name AS t FROM information_schema.tables WHERE table_schema = DATABASE()') as any;
    const have = new Set((tables as any[]).map((r) => String(r.t ?? r.TABLE_NAME)));
    const want = [...schemaSql(version).matchAll(/CREATE TABLE (\w+)/g)].map((m) => m[1]);
    if (have.size === 0) await c.query(schemaSql(version));
    else if (have.size !== want.length || !want.every((t) => have.has(t))) {
      throw auctionError('AUCTION_SCHEMA_UNKNOWN', `database '${opts.database}' already holds tables [${[...have].sort().join(', ')}], not schema ${version}; drop it or choose another name`);
    }
    for (const host of ['127.0.0.1', 'localhost', '%']) {
      await c.query('CREATE OR REPLACE USER ?@? IDENTIFIED BY ?', [opts.appUser, host, opts.appPassword]);
      await c.query(`GRANT ${APP_GRANTS} ON \`${opts.database}\`.* TO ?@?`, [opts.appUser, host]);
    }
  } finally {
    await c.end();
  }
}

/** Tells which auction schema a database holds, from its catalog. */
export async function detectSchema(conn: mysql.Connection | mysql.Pool): Promise<SchemaVersion> {
  const [rows] = await conn.query(
    "SELECT table_name AS t FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name IN ('bids','item_bids')",
  ) as any;
  const names = new Set((rows as any[]).map((r) => r.t ?? r.TABLE_NAME));
  if (names.has('item_bids')) return 'v2';
  if (names.has('bids')) return 'v1';
  throw auctionError('AUCTION_SCHEMA_UNKNOWN', 'neither bids (v1) nor item_bids (v2) exists in the current database');
}

if (require.main === module) {
  const { parseArgs } = require('node:util') as typeof import('node:util');
  const { values } = parseArgs({ options: {
    admin: { type: 'string' }, version: { type: 'string', default: 'v1' }, database: { type: 'string', default: 'auction' },
    user: { type: 'string', default: 'auction' }, password: { type: 'string' },
  } });
  if (!values.admin || !values.password || !['v1', 'v2'].includes(values.version!)) {
    console.error('usage: database.ts --admin mysql://root@127.0.0.1:3306/ --version v1|v2 --database auction --user auction --password PW');
    process.exit(2);
  }
  setupDatabase(values.admin, values.version as SchemaVersion, { database: values.database!, appUser: values.user!, appPassword: values.password })
    .then(() => console.log(`database ${values.database} has schema ${values.version}; user ${values.user} has ${APP_GRANTS} on it`))
    .catch((e) => { console.error(e.message); process.exit(1); });
}
