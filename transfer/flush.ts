import * as mysql from 'mysql2/promise';
import { mysqlOptionsOf } from '../lib/db-tls';
import { imagoError } from '../lib/errors';
import { readAppliedGtid } from './meta';
import { GtidPosition } from './position';

/** Uold's position: every transaction committed so far (read after quiescence for flush). */
export async function readUoldPosition(sourceUrl: string): Promise<string> {
  const c = await mysql.createConnection(mysqlOptionsOf(sourceUrl));
  try {
    const [[r]] = await c.query('SELECT @@gtid_binlog_pos AS p') as [any[], unknown];
    return String(r.p ?? '');
  } finally { await c.end(); }
}

/**
 * Returns when Unew has applied everything up to `position` of Uold, or
 * throws TRANSFER_FLUSH_TIMEOUT. It reads the applied position from the state
 * table in Unew, so it works from any process. The transfer records the
 * position of every transaction it sees (also those on tables it does not
 * convert), so a quiet Uold is reached as soon as the stream has read it.
 */
export async function flushTo(targetUrl: string, database: string, position: string, timeoutMs: number): Promise<{ waitedMs: number; appliedPosition: string }> {
  const want = GtidPosition.parse(position);
  const started = Date.now();
  const c = await mysql.createConnection({ ...mysqlOptionsOf(targetUrl), database });
  try {
    let applied: string | null = null;
    for (let delay = 2; ; delay = Math.min(delay * 2, 25)) {
      applied = await readAppliedGtid(c);
      if (applied !== null && GtidPosition.parse(applied).covers(want)) return { waitedMs: Date.now() - started, appliedPosition: applied };
      if (Date.now() - started >= timeoutMs) break;
      await new Promise((r) => setTimeout(r, Math.min(delay, Math.max(1, timeoutMs - (Date.now() - started)))));
    }
    const behind = applied === null ? 'no transfer state in Unew' : `applied ${applied}, ${GtidPosition.parse(applied).behind(want)} transaction(s) behind`;
    throw imagoError('TRANSFER_FLUSH_TIMEOUT', `${database}: position ${position} not reached in ${timeoutMs} ms (${behind})`);
  } finally { await c.end(); }
}
