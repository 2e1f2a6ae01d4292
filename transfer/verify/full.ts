/**
 * Full verification in the manner of VDiff: every old row, converted, against
 * Unew by key, plus Unew rows no old row produces. Uold is read in one
 * consistent snapshot at position P; Unew in one snapshot taken after it has
 * applied P (its snapshot is at Q >= P). Rows changed in Uold between P and Q
 * are compared again at a later pair of positions (see docs/verification.md).
 */
import { idList, keysetSelect } from '../../lib/sql';
import type { Row } from '../conversion';
import { keyOf, keyText } from '../mapper';
import type { GtidPosition } from '../position';
import type { Keys } from './binlog-scan';
import { close, compareRows, emptyReport, finish, open, settle, uoldSnapshot, unewSnapshotAt, type VerifyOptions, type VerifyReport } from './compare';

export async function verify(o: VerifyOptions): Promise<VerifyReport> {
  const ctx = await open(o);
  const report = emptyReport();
  try {
    const snap = await ctx.source.getConnection();
    let p: GtidPosition;
    let q: GtidPosition;
    const expected: Keys = new Map();
    try {
      p = await uoldSnapshot(snap);
      q = await unewSnapshotAt(ctx, p);
      for (const m of ctx.tables.values()) {
        let after: unknown[] | null = null;
        let rows = 0;
        for (;;) {
          const t0 = Date.now();
          const sel = keysetSelect(o.source.database, m.conv.source, m.sourceKey, after, ctx.o.chunkSize);
          const [chunk] = await snap.query(sel.sql, sel.params) as [Row[], unknown];
          await compareRows(ctx, m, chunk, expected, report);
          if (ctx.o.niceRatio > 0) await new Promise((r) => setTimeout(r, ctx.o.niceRatio * (Date.now() - t0)));
          rows += chunk.length;
          o.onRows?.(chunk.length);
          if (chunk.length < ctx.o.chunkSize) break;
          after = keyOf(chunk[chunk.length - 1], m.sourceKey);
        }
        report.tables.push({ source: m.conv.source, rows });
        report.rowsChecked += rows;
      }
      const targetKeys = new Map<string, string[]>();
      for (const m of ctx.tables.values()) for (const [t, k] of m.targetKeys) targetKeys.set(t, k);
      for (const [t, keyCols] of targetKeys) {
        const exp = expected.get(t) ?? new Map();
        let actual = 0;
        let after: unknown[] | null = null;
        for (;;) {
          const sel = keysetSelect(null, t, keyCols, after, ctx.o.chunkSize, null, idList(keyCols));
          const [rows] = await ctx.target.query(sel.sql, sel.params) as [Row[], unknown];
          for (const r of rows) { const k = keyOf(r, keyCols); if (!exp.has(keyText(k))) report.extra.push({ table: t, key: k }); }
          actual += rows.length;
          if (rows.length < ctx.o.chunkSize) break;
          after = keyOf(rows[rows.length - 1], keyCols);
        }
        report.targets.push({ table: t, expected: exp.size, actual });
      }
    } finally {
      await snap.query('COMMIT').catch(() => undefined);
      snap.release();
      await ctx.target.query('COMMIT').catch(() => undefined);
    }
    report.position = p.toString();
    await settle(ctx, report, p, q);
    return finish(report);
  } finally { await close(ctx); }
}
