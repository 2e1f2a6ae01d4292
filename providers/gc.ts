/**
 * Garbage collection of universes: every universe a provider finds (local
 * folders, AWS resources by tag) whose upgrade will never use it again — its
 * workflow closed without switching over (aborted, failed, terminated, timed
 * out) or unknown to the server — is listed, and destroyed when asked.
 *
 * Why the care: a terminated workflow runs no compensation, so its Unew (a
 * database, processes, instances) is left behind. But a universe that a
 * cut-over marked as serving is the live system now, whatever its workflow
 * says: it is never destroyed here. Keeping garbage costs money; destroying a
 * live system loses data.
 *
 * Used by `imago gc` (dry run unless --yes) and by the worker at start, for
 * the universes of its own task queue.
 */
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import { ImagoOutcome, ImagoPhase } from '../workflows/search-attributes';
import type { Provider, UniverseRecord } from './provider';

export interface GcEntry extends UniverseRecord {
  provider: string;
  /** The workflow as the server knows it: RUNNING, COMPLETED, TERMINATED, …, or UNKNOWN. */
  workflow: string;
  outcome: string | null;
  action: 'keep' | 'destroy';
  why: string;
  destroyed?: boolean;
  error?: string;
}

export interface GcOptions {
  client: Client;
  /** Each provider with the plan section that tells it where to look (e.g. the local base folder, the AWS region). */
  sources: Array<{ provider: Provider; unew: Record<string, unknown> }>;
  /** Destroy the garbage (default: list only). */
  destroy?: boolean;
  /** Only universes recorded as belonging to this task queue (the worker's own sweep). */
  taskQueue?: string;
  log?: (line: string) => void;
}

export async function collectGarbage(o: GcOptions): Promise<GcEntry[]> {
  const out: GcEntry[] = [];
  for (const { provider, unew } of o.sources) {
    let universes: UniverseRecord[];
    try { universes = await provider.listUniverses(unew); } catch (err) {
      o.log?.(`gc: cannot list the '${provider.name}' provider's universes: ${(err as Error).message}`);
      continue;
    }
    for (const u of universes) {
      if (o.taskQueue && u.owner?.taskQueue !== o.taskQueue) continue;
      const entry: GcEntry = { ...u, provider: provider.name, ...await judge(o.client, u) };
      if (entry.action === 'destroy' && o.destroy) {
        try {
          await provider.destroy(u.upgradeId, unew);
          entry.destroyed = true;
        } catch (err) {
          entry.error = (err as Error).message;
        }
      }
      out.push(entry);
    }
  }
  return out;
}

async function judge(client: Client, u: UniverseRecord): Promise<Pick<GcEntry, 'workflow' | 'outcome' | 'action' | 'why'>> {
  const workflowId = u.owner?.workflowId ?? u.upgradeId;
  let workflow = 'UNKNOWN';
  let outcome: string | null = null;
  let phase: string | null = null;
  try {
    const handle = u.owner?.namespace && u.owner.namespace !== client.options.namespace ? null : client.workflow.getHandle(workflowId);
    if (!handle) return { workflow, outcome, action: 'keep', why: `its workflow is in namespace '${u.owner!.namespace}', not '${client.options.namespace}': run gc there` };
    const d = await handle.describe();
    workflow = d.status.name;
    outcome = (d.typedSearchAttributes.get(ImagoOutcome) as string | undefined) ?? null;
    phase = (d.typedSearchAttributes.get(ImagoPhase) as string | undefined) ?? null;
  } catch (err) {
    if (!(err instanceof WorkflowNotFoundError)) return { workflow: 'UNREACHABLE', outcome, action: 'keep', why: `the server did not answer (${(err as Error).message}): nothing is destroyed on a guess` };
  }
  if (u.serving) return { workflow, outcome, action: 'keep', why: 'a cut-over marked it as serving clients: it is the live system (or may be), never garbage' };
  if (workflow === 'RUNNING' || workflow === 'CONTINUED_AS_NEW') return { workflow, outcome, action: 'keep', why: 'its upgrade is running' };
  if (outcome === 'completed' || phase === 'post-switchover' || phase === 'switchover') return { workflow, outcome, action: 'keep', why: 'its upgrade switched over: it serves clients' };
  if (workflow === 'UNKNOWN') return { workflow, outcome, action: 'destroy', why: 'no workflow with its id on this server (deleted, or started elsewhere)' };
  return { workflow, outcome, action: 'destroy', why: `its workflow is ${workflow.toLowerCase()}${outcome && outcome !== 'running' ? ` (${outcome})` : ''} and never switched over: nothing will use it again` };
}
