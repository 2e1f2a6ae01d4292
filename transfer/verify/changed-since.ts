/**
 * The fast check for the termination pause: only the rows changed in Uold
 * since `since` (found in the binlog), compared at one consistent position.
 * During quiescence Uold does not move, so one pass is exact.
 *
 * The cut-over prepares it before holding anyone (WindowCheck.open: the
 * connections and the conversion's tables, and the binlog scan from `since`,
 * whose start costs a read of the binlog file), so that inside the hold only
 * the scan's last transactions and the compare remain.
 */
import { Inspector } from '../inspector';
import { GtidPosition } from '../position';
import { TouchedScan } from './binlog-scan';
import { close, compareKeys, emptyReport, finish, open, settle, type Ctx, type VerifyOptions, type VerifyReport } from './compare';

export class WindowCheck {
  private constructor(private readonly ctx: Ctx, private readonly scan: TouchedScan) {}

  static async open(o: VerifyOptions, since: string): Promise<WindowCheck> {
    const ctx = await open(o);
    const scan = new TouchedScan({ url: o.source.url, database: o.source.database, serverId: o.serverId }, ctx.tables, GtidPosition.parse(since));
    try {
      await scan.start();
    } catch (err) {
      scan.stop();
      await close(ctx);
      throw err;
    }
    return new WindowCheck(ctx, scan);
  }

  /** Compares every row changed since `since` up to Uold's position now (and any the scan read beyond it). */
  async run(): Promise<VerifyReport> {
    const report = emptyReport();
    const now = GtidPosition.parse(await new Inspector(this.ctx.source, this.ctx.o.source.database).gtidBinlogPos());
    await this.scan.until(now);
    const { p, q } = await compareKeys(this.ctx, this.scan.old, this.scan.targets, report);
    report.position = p.toString();
    await settle(this.ctx, report, p, q);
    return finish(report);
  }

  async close(): Promise<void> {
    this.scan.stop();
    await close(this.ctx);
  }
}

export async function verifyChangedSince(o: VerifyOptions, since: string): Promise<VerifyReport> {
  const w = await WindowCheck.open(o, since);
  try { return await w.run(); } finally { await w.close(); }
}
