import * as fs from 'node:fs';
import * as mysql from 'mysql2/promise';
import { imagoError } from '../lib/errors';
import { redactGrant, redactUrl } from '../lib/secrets';

export interface PreflightReport {
  server: string;
  version: string;
  binlogFormat: string;
  gtidPosition: string;
  grants: string[];
  tables: number;
  freeDiskBytes: number;
}

/**
 * Read-only checks on Uold before anything is created (the inspector role).
 * It only ever reads: the upgrade must never write to Uold's data store.
 */
export async function preflightUold(url: string, database: string, opts: { diskDir: string; minFreeBytes: number }): Promise<PreflightReport> {
  let conn: mysql.Connection;
  try {
    conn = await mysql.createConnection({ uri: url, connectTimeout: 5_000 });
  } catch (err) {
    throw imagoError('IMAGO_PREFLIGHT_UNREACHABLE', `${redactUrl(url)}: ${(err as Error).message}`);
  }
  try {
    const [[vars]] = await conn.query(
      'SELECT @@version AS version, @@log_bin AS logBin, @@binlog_format AS format, @@binlog_row_image AS image, @@gtid_binlog_pos AS gtid',
    ) as any;
    if (Number(vars.logBin) !== 1) throw imagoError('IMAGO_PREFLIGHT_BINLOG', `${redactUrl(url)}: log_bin is OFF`);
    if (vars.format !== 'ROW') throw imagoError('IMAGO_PREFLIGHT_BINLOG', `${redactUrl(url)}: binlog_format is ${vars.format}, not ROW`);
    if (vars.image !== 'FULL') throw imagoError('IMAGO_PREFLIGHT_BINLOG', `${redactUrl(url)}: binlog_row_image is ${vars.image}, not FULL`);
    const [grantRows] = await conn.query('SHOW GRANTS') as any;
    // Without the password hash SHOW GRANTS prints: the report goes into workflow history.
    const grants: string[] = grantRows.map((r: Record<string, string>) => redactGrant(Object.values(r)[0]));
    expectPrivileges(grants, database, url);
    const [[{ n }]] = await conn.query('SELECT COUNT(*) AS n FROM information_schema.tables WHERE table_schema = ? AND table_type = "BASE TABLE"', [database]) as any;
    const stat = fs.statfsSync(opts.diskDir);
    const free = stat.bavail * stat.bsize;
    if (free < opts.minFreeBytes) throw imagoError('IMAGO_PREFLIGHT_DISK', `${opts.diskDir} has ${free} bytes free, need ${opts.minFreeBytes}`);
    return { server: redactUrl(url), version: vars.version, binlogFormat: vars.format, gtidPosition: vars.gtid, grants, tables: Number(n), freeDiskBytes: free };
  } finally {
    await conn.end().catch(() => undefined);
  }
}

/** The replication user needs REPLICATION SLAVE, REPLICATION CLIENT (global) and SELECT on the database. */
export function expectPrivileges(grants: string[], database: string, url: string): void {
  const global = grants.filter((g) => / ON \*\.\* TO /i.test(g)).join(' ').toUpperCase();
  const onDb = grants.filter((g) => new RegExp(` ON [\`']?${database}[\`']?\\.\\* TO `, 'i').test(g)).join(' ').toUpperCase();
  const all = /GRANT ALL PRIVILEGES/.test(global);
  const missing: string[] = [];
  if (!all && !/REPLICATION SLAVE|BINLOG MONITOR.*REPLICATION SLAVE|REPLICATION REPLICA/.test(global)) missing.push('REPLICATION SLAVE');
  if (!all && !/REPLICATION CLIENT|BINLOG MONITOR/.test(global)) missing.push('REPLICATION CLIENT');
  if (!all && !/\bSELECT\b/.test(global) && !/\bSELECT\b|ALL PRIVILEGES/.test(onDb)) missing.push(`SELECT ON ${database}.*`);
  if (missing.length) throw imagoError('IMAGO_PREFLIGHT_PRIVILEGES', `${redactUrl(url)} lacks ${missing.join(', ')} (grants: ${grants.join('; ')})`);
}
