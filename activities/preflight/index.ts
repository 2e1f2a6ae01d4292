/**
 * The one preflight: everything that can be checked without starting an
 * upgrade, in one report. `imago preflight` runs all of it; the workflow's
 * preflight activity runs the same code without the scratch database
 * (`scratch: false`) and fails the upgrade, before anything is created, when
 * a check fails.
 *
 *  secrets       the plan's references resolve where this runs (the worker's environment for the workflow)
 *  uold          reachable as the replication user; binary log and privileges (lib/uold-requirements.ts)
 *  tables        every Uold table has a primary key and is converted or ignored
 *  conversion    the module loads as the worker loads it and is a ConversionModule
 *  unew schema   (scratch) the schema file applies to an empty database, with the app's account there
 *  samples       (scratch) rows of every converted table, converted and written into that schema, rolled back
 *  rollback      (postSwitchover.rollback.enabled) the conversion's reverse covers every Unew table, gives back
 *                a sample of Uold's rows unchanged, and the writer account holds its grants (read, not used)
 *  interceptors  reachable with their token, not holding; the hold timeout within their cap
 *  provider      the provider runs here, and its preconditions (local: mariadbd, disk, the app's command)
 *  temporal      (added by the CLI) the namespace has Imago's search attributes; a worker polls the queue
 *
 * Read-only towards Uold and the interceptors. Nothing in the report is a
 * secret: URLs are redacted and grants carry no password hash.
 */
import type * as mysql from 'mysql2/promise';
import { redactUrl, resolveSecret } from '../../lib/secrets';
import { tlsOfUrl, withDbTls } from '../../lib/db-tls';
import { DEFAULT_APP_PRIVILEGES } from '../../plan/schema';
import type { UpgradePlan } from '../../plan/types';
import type { Provider } from '../../providers/provider';
import { checkConversionLoads, checkSamples } from './conversion';
import { checkInterceptors } from './interceptors';
import { checkProvider } from './provider';
import { checkRollback } from './rollback';
import { checkFromError, ReportBuilder, type PreflightReport } from './report';
import { ScratchUnew } from './scratch';
import { checkUoldServer, readUoldCatalog, tableChecks } from './uold';

export { preflightError, PREFLIGHT_GROUPS, ReportBuilder, type PreflightCheck, type PreflightGroup, type PreflightReport } from './report';

export interface PreflightOptions {
  providers: Record<string, Provider>;
  /** Start a scratch MariaDB: apply the schema file and convert samples into it. */
  scratch: boolean;
  /** Rows per table for the samples (default 100). */
  sampleRows?: number;
  /** Checks the caller adds to the same report (the CLI: the Temporal namespace). */
  extra?: (r: ReportBuilder) => Promise<void>;
}

export async function runPreflight(plan: UpgradePlan, opts: PreflightOptions): Promise<PreflightReport> {
  const r = new ReportBuilder();
  const database = plan.uold.db.database;
  let uoldUrl: string | undefined;
  try {
    uoldUrl = resolveSecret(plan.uold.db.urlRef, '/uold/db/urlRef');
    r.ok('secrets', 'uold.db.urlRef', `${plan.uold.db.urlRef} → ${redactUrl(uoldUrl)}`);
  } catch (err) {
    r.add('secrets', checkFromError('uold.db.urlRef', err));
  }
  const conv = checkConversionLoads(r, plan.unew.conversion);
  if (uoldUrl && plan.uold.db.tls) {
    // Its TLS material is read now, so a reference that does not resolve is a secret's failure, not Uold's.
    try {
      uoldUrl = withDbTls(uoldUrl, plan.uold.db.tls);
      tlsOfUrl(uoldUrl, '/uold/db/tls');
      r.ok('secrets', 'uold.db.tls', [plan.uold.db.tls.caRef, plan.uold.db.tls.certRef, plan.uold.db.tls.keyRef].filter(Boolean).join(', ') || "Node's public CAs");
    } catch (err) {
      r.add('secrets', checkFromError('uold.db.tls', err));
      uoldUrl = undefined;
    }
  }
  const pool = uoldUrl ? await checkUoldServer(r, uoldUrl, database) : undefined;
  if (!uoldUrl) r.skip("uold: its URL did not resolve");
  try {
    const catalog = pool ? await readUoldCatalog(pool, database) : undefined;
    if (catalog && conv) tableChecks(r, catalog, conv, database);
    else r.skip(`tables: ${catalog ? 'the conversion did not load' : 'Uold was not reached'}`);
    if (opts.scratch) await scratchChecks(r, plan, { pool, uoldUrl, conv, uoldTables: [...(catalog?.tables.keys() ?? [])], sampleRows: opts.sampleRows ?? 100 });
    else r.skip('unew schema and samples: no scratch database in this run (imago preflight makes them)');
    await checkRollback(r, plan, { conv, pool, catalog, sampleRows: opts.sampleRows ?? 100 });
    await checkInterceptors(r, plan);
    await checkProvider(r, plan, opts.providers);
    if (opts.extra) await opts.extra(r);
  } finally {
    await pool?.end().catch(() => undefined);
  }
  return r.report();
}

async function scratchChecks(r: ReportBuilder, plan: UpgradePlan, s: { pool?: mysql.Pool; uoldUrl?: string; conv?: ReturnType<typeof checkConversionLoads>; uoldTables: string[]; sampleRows: number }): Promise<void> {
  let scratch: ScratchUnew;
  try {
    scratch = await ScratchUnew.start(plan.unew.database, plan.unew.grants?.privileges ?? DEFAULT_APP_PRIVILEGES);
  } catch (err) {
    r.add('unew schema', checkFromError('scratch MariaDB', err));
    return;
  }
  try {
    try {
      const n = await scratch.applySchema(plan.unew.schemaFile);
      r.ok('unew schema', 'schema file', `${plan.unew.schemaFile} applies to an empty database (${n} tables), with 'app' at 127.0.0.1, localhost and '%'`);
    } catch (err) {
      r.add('unew schema', checkFromError('schema file', err));
      r.skip('samples: the schema file does not apply');
      return;
    }
    // The transfer refuses to start on these; its per-table check would only repeat them.
    if (!s.pool || !s.uoldUrl || !s.conv) { r.skip(`samples: ${!s.conv ? 'the conversion did not load' : 'Uold was not reached'}`); return; }
    if (r.failed('uold')) { r.skip("samples: Uold's binary log or the replication user's privileges must be fixed first"); return; }
    await checkSamples(r, s.conv, s.pool, scratch, { uoldUrl: s.uoldUrl, uoldDatabase: plan.uold.db.database, sampleRows: s.sampleRows, uoldTables: s.uoldTables });
  } finally {
    await scratch.destroy();
  }
}
