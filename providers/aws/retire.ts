/**
 * Finalize on AWS, as CodeDeploy blue/green does: once the post-switchover
 * window has passed, Uold's fleet (the targets of Uold's target group: in
 * the documented topology the hosts of the ingress interceptors, with Uold's
 * app servers when they run side by side) is deregistered and its EC2
 * instances terminated — unless the plan keeps it (postSwitchover.keepUold).
 *
 * It refuses unless every listener and rule already forwards to Unew's
 * group: Uold is retired only when it can no longer receive a request.
 * Imago's probe rule is removed either way. Uold's target group itself is
 * left in place (empty), like CodeDeploy's original target group.
 */
import { DescribeInstancesCommand } from '@aws-sdk/client-ec2';
import { imagoError } from '../../lib/errors';
import { call } from './classify';
import type { AwsClients } from './clients';
import { TAG_UPGRADE } from './naming';
import { ProbeRules } from './probe-rule';
import { Provisioner } from './provisioner';
import { Switcher, type Route } from './switcher';
import { TargetGroups } from './target-group';
import { describeForwarders } from './topology';

export interface Retirement { kept: boolean; deregistered: string[]; terminated: string[]; skipped: string[]; detail: string }

export async function retireUold(c: AwsClients, upgradeId: string, route: Route, unewInstanceIds: string[], keepUold: boolean): Promise<Retirement> {
  const switcher = new Switcher(c);
  const traffic = await switcher.state(route);
  if (traffic !== 'unew') {
    throw imagoError('PROVIDER_AWS_CONFLICT', `refusing to retire Uold while traffic is ${traffic ?? 'routed to neither group'}: every listener and rule must forward to Unew's target group ${route.unewTargetGroupArn} first`);
  }
  const listeners = [...new Set((await describeForwarders(c, route.loadBalancerArns)).map((f) => f.listenerArn))];
  await new ProbeRules(c).remove(listeners, upgradeId);
  const tgs = new TargetGroups(c);
  const targets = [...(await tgs.health(route.uoldTargetGroupArn)).keys()];
  if (keepUold) {
    return { kept: true, deregistered: [], terminated: [], skipped: targets, detail: `Uold's fleet kept (postSwitchover.keepUold): ${targets.length} target(s) stay registered in ${route.uoldTargetGroupArn}, receiving no traffic` };
  }
  const deregistered = await tgs.deregisterAll(route.uoldTargetGroupArn);
  // Never terminate an instance of Unew, or of any universe Imago made (it may serve another system).
  const candidates = deregistered.filter((t) => t.startsWith('i-') && !unewInstanceIds.includes(t));
  const skipped = deregistered.filter((t) => !candidates.includes(t));
  let terminated: string[] = [];
  if (candidates.length) {
    const res = await call('DescribeInstances (Uold fleet)', () => c.ec2.send(new DescribeInstancesCommand({ InstanceIds: candidates })));
    const instances = (res.Reservations ?? []).flatMap((r) => r.Instances ?? []);
    const imagos = instances.filter((i) => i.Tags?.some((t) => t.Key === TAG_UPGRADE)).map((i) => i.InstanceId!);
    terminated = instances.map((i) => i.InstanceId!).filter((id) => !imagos.includes(id));
    skipped.push(...imagos);
    if (terminated.length) await new Provisioner(c).terminate(terminated, `Uold's fleet (after ${upgradeId})`);
  }
  return {
    kept: false, deregistered, terminated, skipped,
    detail: `deregistered ${deregistered.length} target(s) from Uold's group; terminated ${terminated.length} instance(s)${skipped.length ? `; left ${skipped.join(', ')} (IP targets or Imago's own instances)` : ''}`,
  };
}
