/**
 * The grants check of the testing phase: the privileges Unew's application
 * account really holds, read from Unew's catalog after the schema step, against
 * what the plan says it needs (unew.grants). A missing privilege is an outage
 * waiting for the first request that needs it — often a write, which mirrored
 * GET traffic never exercises; an extra one is a security exposure that no
 * reply comparison can see. Both fail the gate before any client reaches Unew.
 */
import type { UpgradePlan } from '../plan/types';
import type { UnewHandle } from '../providers/provider';
import type { TestResult } from '../workflows/status';
import { META_TABLES } from '../transfer/meta';
import { DEFAULT_APP_PRIVILEGES } from '../plan/schema';
import { unewAdminDb } from './context';
import { openDb } from '../lib/db-tls';

export const GRANTS_TEST_NAME = 'imago: database grants';

interface PrivilegeRow { grantee: string; privilege: string; grantable: string; schema?: string; table?: string }

/** Compares what each host entry of `user` holds with `expected(table)`; returns one line per finding. */
export function grantFindings(user: string, database: string, tables: string[], rows: { global: PrivilegeRow[]; schema: PrivilegeRow[]; table: PrivilegeRow[] },
  expected: (table: string) => string[]): string[] {
  const findings: string[] = [];
  const grantees = [...new Set([...rows.global, ...rows.schema, ...rows.table].map((r) => r.grantee))].sort();
  if (!grantees.length) return [`account '${user}' has no privileges at all in this server (is it the account the application connects as?)`];
  const allExpected = new Set(tables.flatMap(expected));
  for (const g of grantees) {
    const global = rows.global.filter((r) => r.grantee === g && r.privilege !== 'USAGE');
    for (const r of global) findings.push(`${g}: excessive: ${r.privilege} ON *.* (every database of the server)`);
    const onDb = rows.schema.filter((r) => r.grantee === g && r.schema === database);
    for (const r of rows.schema.filter((x) => x.grantee === g && x.schema !== database)) findings.push(`${g}: excessive: ${r.privilege} ON \`${r.schema}\`.* (another database)`);
    for (const r of onDb.filter((x) => !allExpected.has(x.privilege))) findings.push(`${g}: excessive: ${r.privilege} ON \`${database}\`.*`);
    for (const r of [...global, ...onDb, ...rows.table.filter((x) => x.grantee === g)].filter((x) => x.grantable === 'YES')) {
      findings.push(`${g}: excessive: ${r.privilege} WITH GRANT OPTION`);
    }
    for (const t of tables) {
      const want = expected(t);
      const onTable = rows.table.filter((r) => r.grantee === g && r.schema === database && r.table === t).map((r) => r.privilege);
      const has = new Set([...global.map((r) => r.privilege), ...onDb.map((r) => r.privilege), ...onTable]);
      const missing = want.filter((p) => !has.has(p));
      if (missing.length) findings.push(`${g}: missing: ${missing.join(', ')} ON \`${database}\`.\`${t}\``);
      const extra = onTable.filter((p) => !want.includes(p));
      if (extra.length) findings.push(`${g}: excessive: ${extra.join(', ')} ON \`${database}\`.\`${t}\``);
    }
  }
  return [...new Set(findings)];
}

export function createGrantsActivities() {
  return {
    async checkGrants(handle: UnewHandle, plan: UpgradePlan): Promise<TestResult> {
      const started = Date.now();
      const cfg = plan.unew.grants ?? { enabled: true, privileges: DEFAULT_APP_PRIVILEGES, tables: {} };
      const user = handle.db.appUser;
      const result = (passed: boolean, output: string): TestResult => ({ name: GRANTS_TEST_NAME, passed, exitCode: passed ? 0 : 1, durationMs: Date.now() - started, output });
      if (!user) return result(true, `skipped: provider '${handle.provider}' does not name the application's database account`);
      const database = handle.db.database;
      const c = await openDb(unewAdminDb(handle, plan));
      try {
        const [tableRows] = await c.query("SELECT table_name AS t FROM information_schema.tables WHERE table_schema = ? AND table_type = 'BASE TABLE'", [database]) as [any[], unknown];
        const tables = tableRows.map((r) => String(r.t)).filter((t) => !META_TABLES.includes(t)).sort();
        // GRANTEE is "'user'@'host'": match the user part exactly, whatever the host.
        const like = `'${user.replace(/'/g, "''").replace(/[\\%_]/g, '\\$&')}'@%`;
        const q = async (sql: string) => (await c.query(sql, [like]) as [any[], unknown])[0].map((r) => ({
          grantee: String(r.GRANTEE), privilege: String(r.PRIVILEGE_TYPE), grantable: String(r.IS_GRANTABLE), schema: r.TABLE_SCHEMA, table: r.TABLE_NAME,
        }) as PrivilegeRow);
        const rows = {
          global: await q('SELECT GRANTEE, PRIVILEGE_TYPE, IS_GRANTABLE FROM information_schema.USER_PRIVILEGES WHERE GRANTEE LIKE ?'),
          schema: await q('SELECT GRANTEE, PRIVILEGE_TYPE, IS_GRANTABLE, TABLE_SCHEMA FROM information_schema.SCHEMA_PRIVILEGES WHERE GRANTEE LIKE ?'),
          table: await q('SELECT GRANTEE, PRIVILEGE_TYPE, IS_GRANTABLE, TABLE_SCHEMA, TABLE_NAME FROM information_schema.TABLE_PRIVILEGES WHERE GRANTEE LIKE ?'),
        };
        const unknownTables = Object.keys(cfg.tables).filter((t) => !tables.includes(t));
        const findings = grantFindings(user, database, tables, rows, (t) => cfg.tables[t] ?? cfg.privileges);
        for (const t of unknownTables) findings.push(`plan: unew.grants.tables names '${t}', which is not a table of \`${database}\` in Unew`);
        if (!findings.length) return result(true, `${user}: ${cfg.privileges.join(', ')} on ${tables.length} tables of \`${database}\`, nothing more`);
        return result(false, [...findings, `Fix the grants in the schema file (unew.schemaFile), or declare the table's needs under unew.grants.tables (docs/grants-check.md).`].join('\n'));
      } finally {
        await c.end();
      }
    },
  };
}
