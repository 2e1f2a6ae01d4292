/**
 * The preflight's checks for a plan that wants rollback after the switchover
 * (postSwitchover.rollback.enabled):
 *  - the conversion's reverse covers every Unew table it writes;
 *  - forward then reverse is the identity on a sample of Uold's real rows
 *    (the first differing row of each table is reported with its key);
 *  - the writer account (uoldWriterUrlRef) reaches Uold's database and holds
 *    SELECT, INSERT, UPDATE, DELETE, CREATE, DROP there: the reverse replication
 *    uses it from the point of no return only. Checked by reading its grants:
 *    nothing is written to Uold here.
 */
import * as mysql from 'mysql2/promise';
import { parseGrant, quoteAccount } from '../../lib/uold-requirements';
import { redactUrl, resolveSecret } from '../../lib/secrets';
import { id } from '../../lib/sql';
import type { UpgradePlan } from '../../plan/types';
import type { ConversionModule, Row } from '../../transfer/conversion';
import { checkRoundTrip, reverseCoverageProblems, roundTripError } from '../../transfer/inverse';
import { checkFromError, type ReportBuilder } from './report';
import type { UoldCatalog } from './uold';

/** What the writer account needs on Uold's database. */
export const WRITER_PRIVILEGES = ['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'CREATE', 'DROP'] as const;

export async function checkRollback(r: ReportBuilder, plan: UpgradePlan, s: { conv?: ConversionModule; pool?: mysql.Pool; catalog?: UoldCatalog; sampleRows: number }): Promise<void> {
  const rb = plan.postSwitchover.rollback;
  if (!rb?.enabled) return;
  const database = plan.uold.db.database;
  if (!s.conv) r.skip('rollback: the conversion did not load');
  else {
    const problems = reverseCoverageProblems(s.conv);
    if (problems.length) r.add('rollback', { name: 'reverse', status: 'fail', code: 'ROLLBACK_REVERSE_MISSING', detail: problems.join('; '), fix: "add a `reverse` entry to the conversion module for each named Unew table (docs/rollback.md), or set postSwitchover.rollback.enabled: false" });
    else {
      r.ok('rollback', 'reverse', `every Unew table the conversion writes has a reverse (${s.conv.reverse!.length})`);
      if (s.pool && s.catalog) await roundTrips(r, s.conv, s.pool, s.catalog, database, s.sampleRows);
      else r.skip('rollback: the round trip needs Uold reached');
    }
  }
  await writerGrants(r, rb.uoldWriterUrlRef, database);
}

/** forward then reverse on the first rows of every converted table; one verdict per table. */
async function roundTrips(r: ReportBuilder, conv: ConversionModule, pool: mysql.Pool, catalog: UoldCatalog, database: string, sampleRows: number): Promise<void> {
  for (const t of conv.tables) {
    const key = catalog.tables.get(t.source);
    if (!key?.length) continue; // the 'tables' group reports it
    try {
      const [rows] = await pool.query(`SELECT * FROM ${id(database)}.${id(t.source)} ORDER BY ${key.map(id).join(', ')} LIMIT ${Math.max(1, sampleRows)}`) as [Row[], unknown];
      const res = checkRoundTrip(conv, t, key, rows);
      if (res.diff) r.add('rollback', checkFromError(`round trip ${t.source}`, roundTripError(res.diff), `fix the reverse of the Unew table(s) ${t.targets.map((x) => x.table).join(', ')} (or ${t.source}'s convert) so that reverse(convert(row)) is the row`));
      else if (!rows.length) r.add('rollback', { name: `round trip ${t.source}`, status: 'warn', detail: `Uold's ${t.source} is empty: its reverse was not exercised here` });
      else r.ok('rollback', `round trip ${t.source}`, `${res.checked} row(s): reverse(convert(row)) = row, every column`);
    } catch (err) {
      r.add('rollback', checkFromError(`round trip ${t.source}`, err));
    }
  }
}

async function writerGrants(r: ReportBuilder, ref: string | undefined, database: string): Promise<void> {
  let url: string;
  try { url = resolveSecret(ref ?? '', '/postSwitchover/rollback/uoldWriterUrlRef'); } catch (err) {
    r.add('rollback', checkFromError('writer account', err));
    return;
  }
  const c = await mysql.createConnection({ uri: url, connectTimeout: 5_000 }).catch((err: Error) => err);
  if (c instanceof Error) {
    r.add('rollback', { name: 'writer account', status: 'fail', code: 'IMAGO_PREFLIGHT_UNREACHABLE', detail: `${redactUrl(url)}: ${c.message}` });
    return;
  }
  try {
    const [grantRows] = await c.query('SHOW GRANTS') as [Array<Record<string, string>>, unknown];
    const [[me]] = await c.query('SELECT CURRENT_USER() AS account') as [Array<{ account: string }>, unknown];
    const missing = missingWriterPrivileges(grantRows.map((g) => String(Object.values(g)[0])), database);
    const who = quoteAccount(me.account);
    if (missing.length) {
      r.add('rollback', {
        name: 'writer account', status: 'fail', code: 'ROLLBACK_WRITER_PRIVILEGES',
        detail: `${who} lacks ${missing.join(', ')} on ${database}.* (used by the reverse replication from the point of no return only)`,
        fix: `GRANT ${missing.join(', ')} ON \`${database}\`.* TO ${who};`,
      });
    } else r.ok('rollback', 'writer account', `${redactUrl(url)} as ${who}: ${WRITER_PRIVILEGES.join(', ')} on ${database}.* (used from the point of no return only; nothing written now)`);
  } catch (err) {
    r.add('rollback', checkFromError('writer account', err));
  } finally {
    await c.end().catch(() => undefined);
  }
}

/** The writer privileges `grants` (SHOW GRANTS lines) do not give on `database`. */
export function missingWriterPrivileges(grants: string[], database: string): string[] {
  const have = new Set<string>();
  for (const g of grants.map(parseGrant)) {
    if (!g || (g.on !== '*.*' && g.on.toLowerCase() !== `${database.toLowerCase()}.*`)) continue;
    for (const p of g.privileges) have.add(p);
  }
  if (have.has('ALL PRIVILEGES') || have.has('ALL')) return [];
  return WRITER_PRIVILEGES.filter((p) => !have.has(p));
}
