/**
 * Names, tags and idempotency tokens derived from the upgrade id, so a
 * retried step and a teardown after a crash find exactly what was created,
 * with no record needed. Everything Imago creates in AWS carries the tag
 * `imago:upgrade-id`: teardown, `listUniverses` and `imago gc` work from it.
 */
import { createHash } from 'node:crypto';

export const TAG_UPGRADE = 'imago:upgrade-id';
export const TAG_ROLE = 'imago:role';
export const TAG_SLOT = 'imago:slot';
/** Set on Unew's instances before a cut-over holds anyone: the universe may serve clients, so it is never garbage. */
export const TAG_SERVING = 'imago:serving';
export const ROLE_APP = 'unew-app';
export const ROLE_TG = 'unew-target-group';
export const ROLE_PROBE = 'unew-probe-rule';
export const TG_PREFIX = 'imago-unew-';

/** The header of the probe rule: together with an unresolvable host name, no client ever sends it. */
export const PROBE_HEADER = 'X-Imago-Probe';
export const PROBE_HOST = 'imago-probe.invalid';

function digest(...parts: string[]): string {
  return createHash('sha256').update(parts.join('\u0000')).digest('hex');
}

/**
 * RunInstances ClientToken (max 64 ASCII). Same upgrade, launch nonce, step
 * and subnet slot → same token → AWS returns the same reservation, so a
 * retried step never starts a second fleet. The nonce is drawn once per
 * provisioning (kept in the handle): AWS honours a token for at least 24 h
 * after the instances terminate, so without it a new run with the same
 * upgrade id would get the terminated instances back.
 */
export function clientToken(upgradeId: string, nonce: string, step: string, slot: number): string {
  return `imago-${digest(upgradeId, nonce, step, String(slot)).slice(0, 48)}`;
}

/** Unew's target-group name (max 32 chars, unique per account and region): deterministic so a crash cannot orphan it. */
export function targetGroupName(upgradeId: string): string {
  return `${TG_PREFIX}${digest(upgradeId).slice(0, 21)}`;
}

/** The probe rule's header value: unguessable, stable per upgrade (a retried step finds its own rule). */
export function probeValue(upgradeId: string): string {
  return digest(upgradeId, 'probe').slice(0, 32);
}

/** Who a universe belongs to (namespace, task queue, workflow id), so `imago gc` and the worker's sweep find its workflow. */
export const TAG_OWNER_NAMESPACE = 'imago:owner-namespace';
export const TAG_OWNER_TASK_QUEUE = 'imago:owner-task-queue';
export const TAG_OWNER_WORKFLOW = 'imago:owner-workflow-id';

export interface Owner { namespace: string; taskQueue: string; workflowId: string }
type Tag = { Key: string; Value: string };

export function ownerTags(owner?: Owner): Tag[] {
  if (!owner) return [];
  // Tag values hold at most 256 characters.
  return [{ Key: TAG_OWNER_NAMESPACE, Value: owner.namespace.slice(0, 256) }, { Key: TAG_OWNER_TASK_QUEUE, Value: owner.taskQueue.slice(0, 256) }, { Key: TAG_OWNER_WORKFLOW, Value: owner.workflowId.slice(0, 256) }];
}

export function ownerOf(tagMap: Record<string, string>): Owner | undefined {
  const [namespace, taskQueue, workflowId] = [tagMap[TAG_OWNER_NAMESPACE], tagMap[TAG_OWNER_TASK_QUEUE], tagMap[TAG_OWNER_WORKFLOW]];
  return namespace && taskQueue && workflowId ? { namespace, taskQueue, workflowId } : undefined;
}

export function tags(upgradeId: string, role: string, extra: Tag[] = [], owner?: Owner): Tag[] {
  return [{ Key: TAG_UPGRADE, Value: upgradeId }, { Key: TAG_ROLE, Value: role }, ...extra, ...ownerTags(owner)];
}

export function instanceTags(upgradeId: string, slot: number, owner?: Owner): Tag[] {
  return tags(upgradeId, ROLE_APP, [{ Key: TAG_SLOT, Value: String(slot) }, { Key: 'Name', Value: `imago-unew-${upgradeId}`.slice(0, 255) }], owner);
}
