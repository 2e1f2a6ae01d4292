/**
 * Names, tags and idempotency tokens derived from the upgrade id alone, so a
 * retried step and a teardown after a crash find exactly what was created,
 * with no record needed.
 */
import { createHash } from 'node:crypto';

export const TAG_UPGRADE = 'imago:upgrade-id';
export const TAG_ROLE = 'imago:role';
export const TAG_SLOT = 'imago:slot';
/** Set on Unew's instances before a cut-over holds anyone: the universe may serve clients, so it is never garbage. */
export const TAG_SERVING = 'imago:serving';
export const ROLE_APP = 'unew-app';
export const ROLE_TG = 'unew-target-group';

function digest(...parts: string[]): string {
  return createHash('sha256').update(parts.join('\u0000')).digest('hex');
}

/** RunInstances ClientToken (max 64 ASCII): same upgrade, step and subnet slot → same token → AWS returns the same instances. */
export function clientToken(upgradeId: string, step: string, slot: number): string {
  return `imago-${digest(upgradeId, step, String(slot)).slice(0, 48)}`;
}

/** Unew's target-group name (max 32 chars, unique per account and region): deterministic so a crash cannot orphan it. */
export function targetGroupName(upgradeId: string): string {
  return `imago-unew-${digest(upgradeId).slice(0, 21)}`;
}

export function instanceTags(upgradeId: string, slot: number): Array<{ Key: string; Value: string }> {
  return [
    { Key: TAG_UPGRADE, Value: upgradeId },
    { Key: TAG_ROLE, Value: ROLE_APP },
    { Key: TAG_SLOT, Value: String(slot) },
    { Key: 'Name', Value: `imago-unew-${upgradeId}`.slice(0, 255) },
  ];
}
