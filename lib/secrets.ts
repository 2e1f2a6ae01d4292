import * as fs from 'node:fs';
import { imagoError } from './errors';

/**
 * Resolves a secret reference ('env:NAME' or 'file:/path'). Called only inside
 * activities on the worker: the value never enters workflow history, which
 * anyone with access to Temporal's web UI can read.
 */
export function resolveSecret(ref: string, where: string): string {
  if (ref.startsWith('env:')) {
    const v = process.env[ref.slice(4)];
    if (v === undefined || v === '') throw imagoError('IMAGO_SECRET_UNRESOLVED', `${where}: environment variable ${ref.slice(4)} is not set on the worker`);
    return v;
  }
  if (ref.startsWith('file:')) {
    try { return fs.readFileSync(ref.slice(5), 'utf8').trim(); } catch (err) {
      throw imagoError('IMAGO_SECRET_UNRESOLVED', `${where}: cannot read ${ref.slice(5)}: ${(err as Error).message}`);
    }
  }
  throw imagoError('IMAGO_SECRET_UNRESOLVED', `${where}: '${ref}' is not a reference (use env:NAME or file:/path)`);
}

/** Hides the password of a database URL, for logs and status. */
export function redactUrl(url: string): string {
  return url.replace(/(\/\/[^:/@]+:)[^@]*@/, '$1***@');
}

/**
 * A grant statement without its credential: SHOW GRANTS prints the account's
 * password hash (`IDENTIFIED BY PASSWORD '*…'`, `IDENTIFIED VIA … USING '…'`),
 * which must not reach a status, a log or workflow history.
 */
export function redactGrant(grant: string): string {
  return grant.replace(/\s+IDENTIFIED\s+(BY\s+PASSWORD\s+'[^']*'|BY\s+'[^']*'|VIA\s+\S+(\s+(USING|AS)\s+(PASSWORD\s*\(\s*)?'[^']*'\)?)?(\s+OR\s+\S+(\s+(USING|AS)\s+(PASSWORD\s*\(\s*)?'[^']*'\)?)?)*)/gi, '');
}
