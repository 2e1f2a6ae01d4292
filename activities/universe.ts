/** Bootstrapping activities: validate the plan on the worker, preflight Uold, create / start / destroy Unew. */
import * as fs from 'node:fs';
import type { RowDataPacket } from 'mysql2/promise';
import type { UpgradePlan } from '../plan/types';
import type { Provider, SandboxHandle, UnewHandle, UoldRetirement } from '../providers/provider';
import { validateLoadedPlan } from '../plan/load';
import { imagoError, isImagoError } from '../lib/errors';
import { Context } from '@temporalio/activity';
import { preflightError, runPreflight, type PreflightReport } from './preflight';
import { ingressClients, planDir, unewAdminDb, withHeartbeat } from './context';
import { openDb } from '../lib/db-tls';
import { id } from '../lib/sql';

export function createUniverseActivities(providers: Record<string, Provider>) {
  const providerOf = (plan: UpgradePlan): Provider => {
    const p = providers[plan.unew.provider];
    if (!p) throw imagoError('IMAGO_PLAN_INVALID', `/unew/provider: '${plan.unew.provider}' is not configured on this worker (have: ${Object.keys(providers).join(', ')})`);
    return p;
  };
  const unewSection = (plan: UpgradePlan): Record<string, unknown> => plan.unew;

  return {
    /** The client validated the plan; the worker checks again, where the files must exist. */
    async validatePlanOnWorker(plan: UpgradePlan): Promise<void> {
      validateLoadedPlan(plan, 'plan (on the worker)');
    },

    /**
     * The one preflight (activities/preflight), without the scratch database
     * `imago preflight` adds: every check is made, and any failure fails the
     * upgrade here, before Unew exists, with every problem listed.
     */
    async preflight(plan: UpgradePlan): Promise<PreflightReport> {
      const report = await runPreflight(plan, { providers, scratch: false });
      if (!report.ok) throw preflightError(report);
      return report;
    },

    async provisionUnew(upgradeId: string, plan: UpgradePlan): Promise<UnewHandle> {
      const info = Context.current().info;
      const owner = { namespace: info.workflowNamespace ?? 'default', taskQueue: info.taskQueue, workflowId: info.workflowExecution?.workflowId ?? upgradeId };
      return withHeartbeat('provisioning Unew', () => providerOf(plan).provisionDatabase({ upgradeId, unew: unewSection(plan), planDir: planDir(plan), owner }));
    },

    /** Applies the new schema to Unew's empty database. Idempotent: skipped when the tables already exist. */
    async installSchema(handle: UnewHandle, plan: UpgradePlan): Promise<{ statements: number }> {
      const sql = fs.readFileSync(plan.unew.schemaFile, 'utf8');
      // Heartbeats like the other provisioning steps: a schema of hundreds of tables can outlast the preset's timeout.
      return withHeartbeat('installing the schema', async () => {
        const conn = await openDb(unewAdminDb(handle, plan), { multipleStatements: true });
        try {
          await conn.query(`USE ${id(handle.db.database)}`);
          const [rows] = await conn.query<RowDataPacket[]>('SHOW TABLES');
          if (rows.length > 0) return { statements: 0 };
          await conn.query(sql);
          return { statements: sql.split(';').filter((s) => s.trim()).length };
        } catch (err) {
          throw imagoError('TRANSFER_SCHEMA_MISMATCH', `/unew/schemaFile ${plan.unew.schemaFile} failed on Unew: ${(err as Error).message}`);
        } finally {
          await conn.end().catch(() => undefined);
        }
      });
    },

    async startUnewApp(handle: UnewHandle, plan: UpgradePlan): Promise<UnewHandle> {
      return withHeartbeat('starting Unew', () => providerOf(plan).startApplication(handle, { upgradeId: handle.upgradeId, unew: unewSection(plan), planDir: planDir(plan) }));
    },

    async waitUnewHealthy(handle: UnewHandle, plan: UpgradePlan): Promise<void> {
      await withHeartbeat('waiting for Unew to be healthy', (signal) => providerOf(plan).waitHealthy(handle, plan.unew.app.startTimeoutMs, plan.unew.app.healthPath, signal));
    },

    /** At finalize: Uold's fleet deregistered and terminated at the provider's level, or kept (postSwitchover.keepUold). */
    async retireUold(handle: UnewHandle, plan: UpgradePlan): Promise<UoldRetirement> {
      return withHeartbeat('retiring Uold', () => providerOf(plan).retireUold(handle, unewSection(plan), { keepUold: plan.postSwitchover.keepUold }));
    },

    /**
     * The sandbox of shadow writes (docs/sandbox.md), per plan.sandbox.enabled:
     * null when it is off, or 'auto' on a provider that cannot make one (then
     * only reads are mirrored, as the status says).
     */
    async createSandbox(handle: UnewHandle, plan: UpgradePlan): Promise<SandboxHandle | null> {
      const enabled = plan.sandbox?.enabled ?? 'auto';
      if (enabled === false) return null;
      try {
        return await withHeartbeat('making the sandbox of shadow writes', () => providerOf(plan).createSandbox(handle, { upgradeId: handle.upgradeId, unew: unewSection(plan), planDir: planDir(plan) }));
      } catch (err) {
        if (enabled === 'auto' && isImagoError(err, 'SANDBOX_UNSUPPORTED')) return null;
        throw err;
      }
    },

    /**
     * Ends shadow writes: every interceptor stops copying writes (reads stay
     * mirrored to Unew), then the provider stops the sandbox and removes its
     * data. Idempotent: called at the end of testing and by compensation.
     */
    async destroySandbox(upgradeId: string, plan: UpgradePlan): Promise<void> {
      for (const c of ingressClients(plan)) {
        const st = await c.status();
        // Why first: a write copied to a sandbox being torn down would only fail there and count against Unew's version.
        if (st.mirror.on && st.mirror.writeShadow) await c.mirror({ on: true, writeShadow: null });
      }
      await withHeartbeat('destroying the sandbox', () => providerOf(plan).destroySandbox(upgradeId, unewSection(plan)));
    },

    async destroyUnew(upgradeId: string, plan: UpgradePlan): Promise<void> {
      await withHeartbeat('destroying Unew', () => providerOf(plan).destroy(upgradeId, unewSection(plan)));
    },

    /** For the cut-over: the provider-level switch while every interceptor holds. */
    providerOf,
  };
}
