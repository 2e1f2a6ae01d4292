/**
 * Every universe Imago left in an account and region, found by its tags
 * alone (`imago:upgrade-id`), whatever became of its workflow: instances not
 * terminated, volumes, Unew target groups, probe rules. The input of
 * `imago gc`, which destroys those whose upgrade is over (a live Unew, one
 * that serves after its switch, is marked in use: destroy refuses it).
 */
import { DescribeInstancesCommand } from '@aws-sdk/client-ec2';
import type { UniverseRecord } from '../provider';
import { call } from './classify';
import type { AwsClients } from './clients';
import { ownerOf, TAG_SERVING, TAG_UPGRADE, TG_PREFIX, type Owner } from './naming';
import { ProbeRules } from './probe-rule';
import { Switcher } from './switcher';
import { TargetGroups } from './target-group';
import { loadBalancersOf, volumesOf } from './teardown';
import { describeForwarders } from './topology';

interface Found { instances: string[]; volumes: string[]; targetGroups: string[]; probeRules: string[]; inUse: boolean; marked: boolean; owner?: Owner }

export async function listUniverses(c: AwsClients, uoldTargetGroupArn: string): Promise<UniverseRecord[]> {
  const by = new Map<string, Found>();
  const of = (id: string) => {
    let f = by.get(id);
    if (!f) { f = { instances: [], volumes: [], targetGroups: [], probeRules: [], inUse: false, marked: false }; by.set(id, f); }
    return f;
  };
  let NextToken: string | undefined;
  do {
    const res = await call('DescribeInstances (by tag)', () => c.ec2.send(new DescribeInstancesCommand({
      Filters: [{ Name: 'tag-key', Values: [TAG_UPGRADE] }, { Name: 'instance-state-name', Values: ['pending', 'running', 'stopping', 'stopped', 'shutting-down'] }], NextToken,
    })));
    for (const i of (res.Reservations ?? []).flatMap((r) => r.Instances ?? [])) {
      const t = Object.fromEntries((i.Tags ?? []).map((x) => [x.Key!, x.Value ?? '']));
      const id = t[TAG_UPGRADE];
      if (!id) continue;
      const f = of(id);
      f.instances.push(`${i.InstanceId} (${i.State?.Name})`);
      if (t[TAG_SERVING] === 'true') f.marked = true;
      f.owner ??= ownerOf(t);
    }
    NextToken = res.NextToken;
  } while (NextToken);
  for (const v of await volumesOf(c)) {
    const id = v.Tags?.find((t) => t.Key === TAG_UPGRADE)?.Value;
    if (id && v.State !== 'deleted') of(id).volumes.push(`${v.VolumeId} (${v.State})`);
  }
  const groups = (await new TargetGroups(c).listOurs(TG_PREFIX)).filter((g) => g.tags[TAG_UPGRADE]);
  const lbArns = new Set(await loadBalancersOf(c, uoldTargetGroupArn));
  for (const g of groups) for (const lb of g.loadBalancerArns) lbArns.add(lb);
  const switcher = new Switcher(c);
  for (const g of groups) {
    const f = of(g.tags[TAG_UPGRADE]);
    f.targetGroups.push(g.name);
    f.owner ??= ownerOf(g.tags);
    if ((await switcher.usersOf({ loadBalancerArns: g.loadBalancerArns }, g.arn)).length) f.inUse = true;
  }
  const listeners = [...new Set((await describeForwarders(c, [...lbArns])).map((x) => x.listenerArn))];
  for (const r of await new ProbeRules(c).find(listeners)) of(r.upgradeId).probeRules.push(r.arn);

  return [...by.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([upgradeId, f]) => ({
    upgradeId,
    // Serving: marked by a cut-over (the tag on its instances), or a listener forwards to its group now.
    serving: f.marked || f.inUse,
    inUse: f.inUse,
    ...(f.owner ? { owner: f.owner } : {}),
    detail: [
      f.inUse ? 'LIVE: a listener forwards to its target group' : f.marked ? 'marked serving by a cut-over' : '',
      f.instances.length ? `${f.instances.length} instance(s): ${f.instances.join(', ')}` : '',
      f.targetGroups.length ? `target group ${f.targetGroups.join(', ')}` : '',
      f.probeRules.length ? `${f.probeRules.length} probe rule(s)` : '',
      f.volumes.length ? `${f.volumes.length} volume(s): ${f.volumes.join(', ')}` : '',
    ].filter(Boolean).join('; '),
  }));
}
