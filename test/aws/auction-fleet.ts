/**
 * The simulated data plane of Unew for the whole-workflow test against moto:
 * for each EC2 instance moto reports, a real auction v2 process on 127.0.0.1.
 *
 * moto's instances run nothing and their private addresses are invented, so
 * no traffic is ever sent to them. Instead, when the provider asks for an
 * instance's app URL (`appUrlFor`), the "instance boots": its user data is
 * read back from moto (DescribeInstanceAttribute), the database URL the
 * provider substituted for {{UNEW_DB_URL}} is taken from it, and auction v2
 * is started on a free loopback port against that database. So a wrong
 * substitution, or a URL that reaches anything but Unew's database, shows up
 * as a failed health check, not as a silently working test.
 *
 * Terminating an instance in moto does not stop its process by itself:
 * `reap()` stops the process of every instance moto reports terminated (what
 * EC2 would do), and `stop()` stops them all.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { DescribeInstanceAttributeCommand, DescribeInstancesCommand, type EC2Client } from '@aws-sdk/client-ec2';
import { startAuction, type RunningAuction } from '../../examples/auction/launcher';
import type { FleetInstance } from '../../providers/aws/provisioner';

export interface FleetMember { instanceId: string; dbUrl: string; app: RunningAuction }

export class AuctionFleet {
  private readonly members = new Map<string, Promise<FleetMember>>();
  readonly logDir = fs.mkdtempSync(path.join(os.tmpdir(), 'imago-aws-fleet-'));

  constructor(private readonly ec2: EC2Client) {}

  /** The provider's `appUrlFor`: boots (once) the instance's application on loopback and returns its base URL. */
  appUrlFor = async (inst: FleetInstance): Promise<string> => {
    let m = this.members.get(inst.instanceId);
    if (!m) {
      m = this.boot(inst.instanceId);
      this.members.set(inst.instanceId, m);
      m.catch(() => this.members.delete(inst.instanceId)); // a retried activity may boot it again
    }
    return (await m).app.url;
  };

  private async boot(instanceId: string): Promise<FleetMember> {
    const attr = await this.ec2.send(new DescribeInstanceAttributeCommand({ InstanceId: instanceId, Attribute: 'userData' }));
    const raw = attr.UserData?.Value ?? '';
    const script = raw.includes('DB_URL=') ? raw : Buffer.from(raw, 'base64').toString('utf8');
    const dbUrl = /DB_URL='?([^'\s]+)'?/.exec(script)?.[1];
    if (!dbUrl) throw new Error(`instance ${instanceId}: no DB_URL in its user data`);
    const app = await startAuction({ version: 'v2', dbUrl, logFile: path.join(this.logDir, `${instanceId}.log`), healthTimeoutMs: 30_000 });
    return { instanceId, dbUrl, app };
  }

  async running(): Promise<FleetMember[]> {
    const all = await Promise.all([...this.members.values()].map((m) => m.catch(() => null)));
    return all.filter((m): m is FleetMember => !!m && !m.app.proc.exitedAlready);
  }

  /** Stops the process of every instance moto reports terminated; returns their ids. */
  async reap(): Promise<string[]> {
    const members = await this.running();
    if (!members.length) return [];
    const res = await this.ec2.send(new DescribeInstancesCommand({ InstanceIds: members.map((m) => m.instanceId) }));
    const gone = new Set((res.Reservations ?? []).flatMap((r) => r.Instances ?? [])
      .filter((i) => ['shutting-down', 'terminated'].includes(i.State?.Name ?? '')).map((i) => i.InstanceId!));
    const reaped = members.filter((m) => gone.has(m.instanceId));
    await Promise.all(reaped.map((m) => m.app.stop()));
    return reaped.map((m) => m.instanceId);
  }

  async stop(): Promise<void> {
    await Promise.all((await this.running()).map((m) => m.app.stop()));
    this.members.clear();
    fs.rmSync(this.logDir, { recursive: true, force: true });
  }
}
