/**
 * What Imago needs of Uold's MariaDB, as one set of rules: the binary log
 * (on, ROW format, full row images, a server id, MariaDB's GTIDs) and the
 * replication user's privileges (REPLICATION SLAVE and REPLICATION CLIENT on
 * *.*, SELECT on the database, and nothing that writes). Every rule gives a
 * check with what it found and, when it fails, the SQL or configuration that
 * fixes it. `imago preflight`, the workflow's preflight activity and the data
 * transfer's own start-up check all read these rules (activities/preflight,
 * transfer/inspector.ts), so they cannot disagree.
 *
 * The rules are pure (they read SHOW GLOBAL VARIABLES and SHOW GRANTS
 * output); readUoldServer() is the one place that asks the server. Grants are
 * redacted before they leave: SHOW GRANTS prints the password hash.
 */
import type * as mysql from 'mysql2/promise';
import { imagoError, type ErrorCode } from './errors';
import { redactGrant } from './secrets';

/** One check: what was looked at, what was found, and what fixes it when it fails. */
export interface Check {
  /** What is checked, e.g. 'binlog_format' or 'interceptor http://…'. */
  name: string;
  /** fail: the upgrade would fail; warn: it would work, but something deserves a look. */
  status: 'ok' | 'warn' | 'fail';
  /** What was found (a figure, a setting), or what is wrong. Never a secret. */
  detail: string;
  /** SQL or configuration that fixes it, ready to paste. */
  fix?: string;
  /** The registry code a failure is raised with. */
  code?: ErrorCode;
}

/** The server's settings the rules read (SHOW GLOBAL VARIABLES, by name). */
export type ServerVariables = Record<string, string>;

/** What Uold's server told about itself and the replication user. */
export interface UoldServerFacts {
  variables: ServerVariables;
  /** SHOW GRANTS of the replication user, password hashes removed. */
  grants: string[];
  /** CURRENT_USER(): the account the grants belong to, as user@host. */
  account: string;
}

const VARIABLES = ['version', 'log_bin', 'binlog_format', 'binlog_row_image', 'server_id', 'gtid_binlog_pos', 'binlog_expire_logs_seconds', 'expire_logs_days'];

/** Reads the server's settings and the user's grants. Read-only; grants come back redacted. */
export async function readUoldServer(conn: mysql.Connection | mysql.Pool): Promise<UoldServerFacts> {
  const [vars] = await conn.query(`SHOW GLOBAL VARIABLES WHERE Variable_name IN (${VARIABLES.map(() => '?').join(', ')})`, VARIABLES) as [Array<{ Variable_name: string; Value: string }>, unknown];
  const [grantRows] = await conn.query('SHOW GRANTS') as [Array<Record<string, string>>, unknown];
  const [[me]] = await conn.query('SELECT CURRENT_USER() AS account') as [Array<{ account: string }>, unknown];
  return {
    variables: Object.fromEntries(vars.map((v) => [v.Variable_name, String(v.Value ?? '')])),
    // Why redacted here, at the source: SHOW GRANTS prints IDENTIFIED BY PASSWORD '*…', which must reach no report, status or history.
    grants: grantRows.map((r) => redactGrant(String(Object.values(r)[0]))),
    account: me.account,
  };
}

/** The my.cnf lines Imago needs on Uold (log_bin needs a restart; the others can also be set live). */
export const SERVER_CONFIG = `[mariadbd]
log_bin          = mariadb-bin      # restart needed
server_id        = 1                # any non-zero id unique among your servers
binlog_format    = ROW
binlog_row_image = FULL`;

const ON = (v: string | undefined) => v === '1' || v?.toUpperCase() === 'ON';

/** The binary log's rules. Each setting is its own check, so every problem shows at once. */
export function binlogChecks(v: ServerVariables): Check[] {
  const checks: Check[] = [];
  const version = v.version ?? '?';
  checks.push(/mariadb/i.test(version)
    ? { name: 'server', status: 'ok', detail: `MariaDB ${version}` }
    : { name: 'server', status: 'fail', code: 'IMAGO_PREFLIGHT_BINLOG', detail: `${version} is not MariaDB: Imago follows MariaDB's binary log by its GTIDs` });
  checks.push(ON(v.log_bin)
    ? { name: 'log_bin', status: 'ok', detail: 'ON' }
    : { name: 'log_bin', status: 'fail', code: 'IMAGO_PREFLIGHT_BINLOG', detail: 'log_bin is OFF: there is no binary log to follow', fix: `# in the server's configuration, then restart it:\n${SERVER_CONFIG}` });
  const live = (name: string, value: string) =>
    `SET GLOBAL ${name} = '${value}';   -- new sessions only: reconnect the application (or restart it)\n# and in the server's configuration, to survive a restart:\n[mariadbd]\n${name} = ${value}`;
  checks.push(v.binlog_format === 'ROW'
    ? { name: 'binlog_format', status: 'ok', detail: 'ROW' }
    : { name: 'binlog_format', status: 'fail', code: 'IMAGO_PREFLIGHT_BINLOG', detail: `binlog_format is ${v.binlog_format ?? 'unknown'}, not ROW: changes must be logged as rows`, fix: live('binlog_format', 'ROW') });
  checks.push(v.binlog_row_image === 'FULL'
    ? { name: 'binlog_row_image', status: 'ok', detail: 'FULL' }
    : { name: 'binlog_row_image', status: 'fail', code: 'IMAGO_PREFLIGHT_BINLOG', detail: `binlog_row_image is ${v.binlog_row_image ?? 'unknown'}, not FULL: updates and deletes must carry whole rows`, fix: live('binlog_row_image', 'FULL') });
  checks.push(v.server_id && v.server_id !== '0'
    ? { name: 'server_id', status: 'ok', detail: v.server_id }
    : { name: 'server_id', status: 'fail', code: 'IMAGO_PREFLIGHT_BINLOG', detail: 'server_id is 0: a server without an id cannot be followed', fix: "SET GLOBAL server_id = 1;   -- any non-zero id unique among your servers\n# and server_id = 1 under [mariadbd] in the server's configuration" });
  // Retention: an upgrade resumes its binlog stream from where it was; a purged binlog means starting over.
  const seconds = v.binlog_expire_logs_seconds !== undefined ? Number(v.binlog_expire_logs_seconds) : Number(v.expire_logs_days ?? 0) * 86_400;
  if (Number.isFinite(seconds) && seconds > 0 && seconds < 86_400) {
    checks.push({ name: 'binlog retention', status: 'warn', detail: `binary logs expire after ${seconds} s: an upgrade paused or stopped longer than that cannot resume its change stream and must start again`, fix: 'SET GLOBAL binlog_expire_logs_seconds = 604800;   -- a week; and the same under [mariadbd]' });
  } else {
    checks.push({ name: 'binlog retention', status: 'ok', detail: seconds > 0 ? `${Math.round(seconds / 3600)} h` : 'kept until purged by hand' });
  }
  return checks;
}

interface ParsedGrant { privileges: string[]; on: string }

/** `GRANT a, b (col), c ON target TO …` → its privileges (upper case, column lists dropped) and target. Role grants (no ON) are skipped. */
export function parseGrant(grant: string): ParsedGrant | undefined {
  const m = /^GRANT\s+(.+?)\s+ON\s+(?:(?:TABLE|FUNCTION|PROCEDURE|PACKAGE(?:\s+BODY)?)\s+)?(\S+)\s+TO\s/i.exec(grant.trim());
  if (!m) return undefined;
  const privileges: string[] = [];
  let depth = 0, cur = '';
  for (const ch of m[1]) {
    if (ch === '(') depth++;
    if (ch === ')') depth--;
    if (ch === ',' && depth === 0) { privileges.push(cur); cur = ''; } else cur += ch;
  }
  privileges.push(cur);
  const list = privileges.map((p) => p.replace(/\(.*\)/, '').trim().toUpperCase()).filter(Boolean);
  if (/\sWITH\s+GRANT\s+OPTION\b/i.test(grant)) list.push('GRANT OPTION');
  return { privileges: list, on: m[2].replace(/[`'"]/g, '') };
}

/** 'imago_repl@%' → `'imago_repl'@'%'`, for SQL the operator can paste. */
export function quoteAccount(account: string): string {
  const at = account.lastIndexOf('@');
  const user = at < 0 ? account : account.slice(0, at);
  const host = at < 0 ? '%' : account.slice(at + 1);
  return `'${user.replace(/'/g, "''")}'@'${host.replace(/'/g, "''")}'`;
}

/** What writes or administers: a replication user holding any of these could change Uold. */
const BEYOND_NEED = /^(ALL( PRIVILEGES)?|INSERT|UPDATE|DELETE|CREATE.*|DROP|ALTER.*|INDEX|SUPER|FILE|SHUTDOWN|PROCESS|RELOAD|GRANT OPTION|TRIGGER|EVENT|LOCK TABLES|EXECUTE|DELETE HISTORY|REFERENCES|CONNECTION ADMIN|READ_ONLY ADMIN|SET USER|FEDERATED ADMIN|REPLICATION MASTER ADMIN|REPLICA MONITOR|REPLICATION SLAVE ADMIN|BINLOG ADMIN|BINLOG REPLAY)$/;

/**
 * The replication user's rules: REPLICATION SLAVE and REPLICATION CLIENT
 * (MariaDB 10.5+ shows it as BINLOG MONITOR) on *.*, SELECT on the database
 * or globally. More than that is a warning: Imago never writes to Uold, and
 * a user that could is a risk if its URL leaks.
 */
export function grantChecks(grants: string[], database: string, account: string): Check[] {
  const parsed = grants.map(parseGrant).filter((g): g is ParsedGrant => !!g);
  const globalPrivs = new Set(parsed.filter((g) => g.on === '*.*').flatMap((g) => g.privileges));
  const dbPrivs = new Set(parsed.filter((g) => g.on.toLowerCase() === `${database.toLowerCase()}.*`).flatMap((g) => g.privileges));
  const all = (s: Set<string>) => s.has('ALL PRIVILEGES') || s.has('ALL');
  const missing: string[] = [];
  const fix: string[] = [];
  const who = quoteAccount(account);
  const needGlobal: string[] = [];
  if (!all(globalPrivs) && !globalPrivs.has('REPLICATION SLAVE') && !globalPrivs.has('REPLICATION REPLICA')) needGlobal.push('REPLICATION SLAVE');
  if (!all(globalPrivs) && !globalPrivs.has('REPLICATION CLIENT') && !globalPrivs.has('BINLOG MONITOR')) needGlobal.push('REPLICATION CLIENT');
  if (needGlobal.length) { missing.push(`${needGlobal.join(', ')} ON *.*`); fix.push(`GRANT ${needGlobal.join(', ')} ON *.* TO ${who};`); }
  if (!all(globalPrivs) && !globalPrivs.has('SELECT') && !all(dbPrivs) && !dbPrivs.has('SELECT')) {
    missing.push(`SELECT ON ${database}.*`);
    fix.push(`GRANT SELECT ON \`${database}\`.* TO ${who};`);
  }
  const shown = grants.join('; ');
  const checks: Check[] = [missing.length
    ? { name: 'replication privileges', status: 'fail', code: 'IMAGO_PREFLIGHT_PRIVILEGES', detail: `${who} lacks ${missing.join('; ')} (has: ${shown})`, fix: fix.join('\n') }
    : { name: 'replication privileges', status: 'ok', detail: `${who} has REPLICATION SLAVE, REPLICATION CLIENT on *.* and SELECT on ${database}` }];
  const extra = [
    ...[...globalPrivs].filter((p) => BEYOND_NEED.test(p)).map((p) => ({ p, on: '*.*' })),
    ...[...dbPrivs].filter((p) => BEYOND_NEED.test(p)).map((p) => ({ p, on: `\`${database}\`.*` })),
  ];
  if (extra.length) {
    const targets = [...new Set(extra.map((e) => e.on))];
    const revoke = targets.map((on) => {
      const here = extra.filter((e) => e.on === on).map((e) => e.p);
      // REVOKE ALL takes the needed privileges too: give them back after it.
      if (!here.some((p) => p.startsWith('ALL'))) return `REVOKE ${here.join(', ')} ON ${on} FROM ${who};`;
      const back = on === '*.*' ? `GRANT REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO ${who};` : `GRANT SELECT ON ${on} TO ${who};`;
      return `REVOKE ALL PRIVILEGES ON ${on} FROM ${who};\n${back}`;
    });
    checks.push({
      name: 'least privilege', status: 'warn',
      detail: `${who} also holds ${extra.map((e) => `${e.p} ON ${e.on}`).join(', ')}: Imago never writes to Uold, and a leaked URL of this user could`,
      fix: revoke.join('\n'),
    });
  }
  return checks;
}

/** For callers that stop at a failure (the data transfer's start-up check): throws the first failure's code with every failure's detail. */
export function throwOnFailure(checks: Check[]): void {
  const failed = checks.filter((c) => c.status === 'fail');
  if (failed.length) throw imagoError(failed[0].code ?? 'IMAGO_PREFLIGHT_BINLOG', failed.map((c) => c.detail).join('; '));
}
