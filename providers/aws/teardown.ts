/**
 * Removes Unew from AWS, working from the upgrade id alone (tags and the
 * derived target-group name), so it cleans up after a crash that lost every
 * record. Idempotent: each step skips what is already gone.
 *
 * Safety: it refuses while the listener or a named rule still forwards to
 * Unew's target group, because then Unew is the live system and tearing it
 * down would be an outage. Roll back first.
 */
import { imagoError } from '../../lib/errors';
import type { RetryOptions } from './classify';
import type { AwsClients } from './clients';
import type { AwsPlan } from './plan-schema';
import { Provisioner } from './provisioner';
import { Switcher } from './switcher';
import { TargetGroups } from './target-group';

export interface TeardownReport { terminated: string[]; deregistered: string[]; deletedTargetGroup?: string }

export async function teardownUnew(c: AwsClients, upgradeId: string, plan: Pick<AwsPlan, 'listenerArn' | 'ruleArns' | 'uoldTargetGroupArn'>, retry: RetryOptions = {}): Promise<TeardownReport> {
  const tgs = new TargetGroups(c, retry);
  const tgArn = await tgs.find(upgradeId);
  if (tgArn) {
    const live = await new Switcher(c, retry).forwardingTo({ listenerArn: plan.listenerArn, ruleArns: [...plan.ruleArns], uoldTargetGroupArn: plan.uoldTargetGroupArn }, tgArn);
    if (live.length) throw imagoError('PROVIDER_AWS_IN_USE', `${live.join(', ')} forward to Unew's target group ${tgArn}`);
  }
  const deregistered = tgArn ? await tgs.deregisterAll(tgArn) : [];
  const terminated = await new Provisioner(c, retry).terminateFleet(upgradeId);
  if (tgArn) await tgs.delete(tgArn);
  return { terminated, deregistered, deletedTargetGroup: tgArn };
}
