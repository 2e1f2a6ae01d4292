/**
 * The fast check for the termination pause: only the rows changed in Uold
 * since `since` (found in the binlog), compared at one consistent position.
 * During quiescence Uold does not move, so one pass is exact.
 */
import { Inspector } from '../inspector';
import { GtidPosition } from '../position';
import { touchedBetween } from './binlog-scan';
import { close, compareKeys, emptyReport, finish, open, settle, type VerifyOptions, type VerifyReport } from './compare';

export async function verifyChangedSince(o: VerifyOptions, since: string): Promise<VerifyReport> {
  const ctx = await open(o);
  const report = emptyReport();
  try {
    const now = GtidPosition.parse(await new Inspector(ctx.source, o.source.database).gtidBinlogPos());
    const touched = await touchedBetween({ url: o.source.url, database: o.source.database, serverId: o.serverId }, ctx.tables, GtidPosition.parse(since), now);
    const { p, q } = await compareKeys(ctx, touched.old, touched.targets, report);
    report.position = p.toString();
    await settle(ctx, report, p, q);
    return finish(report);
  } finally { await close(ctx); }
}
