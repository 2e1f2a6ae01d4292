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

export function tags(upgradeId: string, role: string, extra: Array<{ Key: string; Value: string }> = []): Array<{ Key: string; Value: string }> {
  return [{ Key: TAG_UPGRADE, Value: upgradeId }, { Key: TAG_ROLE, Value: role }, ...extra];
}

export function instanceTags(upgradeId: string, slot: number): Array<{ Key: string; Value: string }> {
  return tags(upgradeId, ROLE_APP, [{ Key: TAG_SLOT, Value: String(slot) }, { Key: 'Name', Value: `imago-unew-${upgradeId}`.slice(0, 255) }]);
}
