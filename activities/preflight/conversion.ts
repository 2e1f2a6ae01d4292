/**
 * The preflight's checks of the conversion: it loads as the worker loads it,
 * and — with a scratch Unew — a sample of real rows of every converted Uold
 * table goes through it and into the new schema (written, then rolled back).
 *
 * The sample runs the data transfer's own start-up check (transfer/preflight)
 * once per table, with the other tables set aside: the rules are the ones the
 * transfer will apply, and every table gets its own verdict instead of the
 * run stopping at the first.
 */
import type * as mysql from 'mysql2/promise';
import type { ConversionModule } from '../../transfer/conversion';
import { preflight as transferPreflight } from '../../transfer/preflight';
import { loadConversionModule } from '../../plan/deep-check';
import { checkFromError, type ReportBuilder } from './report';
import type { ScratchUnew } from './scratch';

/** Loads the plan's conversion module; undefined (and a failed check) when it does not load or is not a ConversionModule. */
export function checkConversionLoads(r: ReportBuilder, file: string): ConversionModule | undefined {
  try {
    const conv = loadConversionModule(file);
    r.ok('conversion', 'module', `'${conv.name}' from ${file}: ${conv.tables.length} table(s) converted${conv.ignoreTables?.length ? `, ${conv.ignoreTables.length} ignored` : ''}`);
    return conv;
  } catch (err) {
    r.add('conversion', checkFromError('module', err));
    return undefined;
  }
}

export interface SampleOptions {
  uoldUrl: string;
  uoldDatabase: string;
  /** Rows per table, the first by primary key. */
  sampleRows: number;
}

/** Converts a sample of every converted table into the scratch Unew, one verdict per table. */
export async function checkSamples(r: ReportBuilder, conv: ConversionModule, uold: mysql.Pool, scratch: ScratchUnew, opts: SampleOptions & { uoldTables: string[] }): Promise<void> {
  const target = await scratch.connect();
  try {
    for (const tc of conv.tables) {
      // Every other Uold table set aside: whether each is covered is the 'tables' group's verdict, not this table's.
      const one: ConversionModule = { ...conv, tables: [tc], ignoreTables: opts.uoldTables.filter((t) => t !== tc.source) };
      try {
        await transferPreflight({
          source: { url: opts.uoldUrl, database: opts.uoldDatabase },
          target: { url: scratch.db.rootUrl, database: scratch.database },
          conversion: one, sampleRows: opts.sampleRows,
        }, uold, target);
        const [[{ n }]] = await uold.query(`SELECT COUNT(*) AS n FROM (SELECT 1 FROM \`${opts.uoldDatabase}\`.\`${tc.source}\` LIMIT ${opts.sampleRows}) AS s`) as [Array<{ n: number }>, unknown];
        if (Number(n) === 0) r.add('samples', { name: tc.source, status: 'warn', detail: `Uold's ${tc.source} is empty: its conversion was not exercised here (the change stream will run it on the rows written during the upgrade)` });
        else r.ok('samples', tc.source, `${n} row(s) converted into ${tc.targets.map((t) => t.table).join(', ')} and accepted by the new schema (rolled back)`);
      } catch (err) {
        r.add('samples', checkFromError(tc.source, err));
      }
    }
  } finally {
    await target.end().catch(() => undefined);
  }
}
