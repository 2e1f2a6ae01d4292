/**
 * The preflight's checks of Uold's database: reachable with the plan's
 * replication user, its binary log and the user's privileges (the shared
 * rules of lib/uold-requirements.ts), and its tables: each has a primary key
 * and is converted or deliberately ignored. Read-only: Imago never writes to
 * Uold.
 */
import * as mysql from 'mysql2/promise';
import type { ConversionModule } from '../../transfer/conversion';
import { Inspector } from '../../transfer/inspector';
import { binlogChecks, grantChecks, readUoldServer } from '../../lib/uold-requirements';
import { redactUrl } from '../../lib/secrets';
import { bareUrl, dbPoolOptions, explainDbError, tlsOfUrl } from '../../lib/db-tls';
import { checkFromError, type ReportBuilder } from './report';

export interface UoldCatalog {
  /** Every base table with its primary-key columns ([] when it has none). */
  tables: Map<string, string[]>;
}

/** Connects as the replication user and checks the server; undefined when Uold cannot be reached (a failed check says why). */
export async function checkUoldServer(r: ReportBuilder, url: string, database: string): Promise<mysql.Pool | undefined> {
  const db = { url, link: "Uold's database (replication account, uold.db)", tlsPath: '/uold/db/tls' };
  let tls: ReturnType<typeof tlsOfUrl>;
  let pool: mysql.Pool;
  try { tls = tlsOfUrl(url, '/uold/db/tls'); pool = mysql.createPool(dbPoolOptions(db, { connectionLimit: 2, connectTimeout: 5_000 })); } catch (err) {
    r.add('uold', checkFromError('reachable', err));
    return undefined;
  }
  try {
    const facts = await readUoldServer(pool);
    r.ok('uold', 'reachable', `${redactUrl(bareUrl(url))} as ${facts.account}, ${tls ? `over TLS (certificate verified${tls.verifyIdentity ? ' for the host' : ''}${tls.cert ? ', client certificate' : ''})` : 'in plain text'}, binlog at GTID ${facts.variables.gtid_binlog_pos || '(none yet)'}`);
    r.add('uold', ...binlogChecks(facts.variables), ...grantChecks(facts.grants, database, facts.account));
    return pool;
  } catch (err) {
    await pool.end().catch(() => undefined);
    // A TLS cause (the server requires TLS and the plan has none; its certificate does not verify) is named as such.
    const tlsCause = await explainDbError(db, err).catch(() => undefined);
    if (tlsCause) { r.add('uold', { ...checkFromError('reachable', tlsCause), fix: `set ${db.tlsPath} in the plan (caRef, and certRef/keyRef if the account requires a client certificate)` }); return undefined; }
    // The driver's message may quote the user, never the password; the URL is redacted.
    r.add('uold', { ...checkFromError('reachable', err), code: 'IMAGO_PREFLIGHT_UNREACHABLE', detail: `${redactUrl(bareUrl(url))}: ${(err as Error).message}` });
    return undefined;
  }
}

/** Uold's tables and their primary keys, read from its catalog. */
export async function readUoldCatalog(pool: mysql.Pool, database: string): Promise<UoldCatalog> {
  const inspector = new Inspector(pool, database);
  const tables = new Map<string, string[]>();
  for (const t of await inspector.tables()) tables.set(t, await inspector.primaryKey(t));
  return { tables };
}

/**
 * Every Uold table against the conversion: converted (with a primary key),
 * or listed in ignoreTables; and every table the conversion names exists.
 */
export function tableChecks(r: ReportBuilder, catalog: UoldCatalog, conv: ConversionModule, database: string): void {
  const ignored = new Set(conv.ignoreTables ?? []);
  const bySource = new Map(conv.tables.map((t) => [t.source, t]));
  if (catalog.tables.size === 0) r.add('tables', { name: `database ${database}`, status: 'fail', code: 'TRANSFER_TABLE_MISSING', detail: `Uold's database '${database}' has no tables (or the user cannot see them)` });
  for (const [table, key] of catalog.tables) {
    const tc = bySource.get(table);
    if (!tc) {
      if (ignored.has(table)) r.ok('tables', table, "not carried over (the conversion's ignoreTables)");
      else r.add('tables', { name: table, status: 'fail', code: 'TRANSFER_CONVERSION_INCOMPLETE', detail: `conversion '${conv.name}' neither converts nor ignores it`, fix: `add a TableConversion with source '${table}' to the conversion module, or list '${table}' in its ignoreTables` });
      continue;
    }
    if (key.length === 0) {
      r.add('tables', {
        name: table, status: 'fail', code: 'TRANSFER_NO_PRIMARY_KEY', detail: `Uold table '${database}.${table}' has no primary key: the chunked copy and the change stream find rows by it`,
        fix: `ALTER TABLE \`${database}\`.\`${table}\` ADD PRIMARY KEY (<its unique, non-null columns>);   -- or list '${table}' in the conversion's ignoreTables`,
      });
      continue;
    }
    r.ok('tables', table, `key (${key.join(', ')}) → ${tc.targets.map((t) => `${t.table} (${t.key.join(', ')})`).join(', ')}`);
  }
  for (const tc of conv.tables) {
    if (!catalog.tables.has(tc.source)) r.add('tables', { name: tc.source, status: 'fail', code: 'TRANSFER_TABLE_MISSING', detail: `conversion '${conv.name}' converts '${tc.source}', which Uold's database '${database}' does not have` });
  }
  for (const t of ignored) {
    if (!catalog.tables.has(t)) r.add('tables', { name: t, status: 'warn', detail: `listed in ignoreTables, but Uold's database '${database}' has no such table` });
  }
}
