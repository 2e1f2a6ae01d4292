/**
 * The instance simulator: what EC2 would do with the instances moto only
 * records. moto's instances run nothing and their private addresses are
 * invented, so no traffic is ever sent to them. Instead, for each instance
 * moto reports running with Imago's role tag, this simulator "boots" it:
 *
 *   - it reads the instance's user data back from moto, exactly as the
 *     provider wrote it, and runs it with /bin/sh, as cloud-init would;
 *   - the script's AWS CLI calls (the secrets, from SSM) reach moto, with the
 *     "instance role's" credentials in the environment, as an instance gets
 *     them from IMDSv2;
 *   - the instance's network is loopback: the script runs with PORT set to a
 *     free loopback port (the one thing the simulation adds: on EC2 every
 *     instance owns appPort on its own address; here they share 127.0.0.1).
 *     Once the app answers, the simulator tags the instance with that
 *     address (SIM_ADDRESS_TAG), which the plan's `unew.aws.appUrl`
 *     template reads: the worker and the interceptors reach the instance on
 *     loopback through an ordinary plan setting, with no hook in product code;
 *   - when moto reports an instance terminated, its process is stopped.
 *
 * What it records for the tests: the user data of each instance (to prove
 * no secret is in it), its metadata options (IMDSv2), and the environment
 * its app process really got (from /proc), to prove the secret arrived.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { CreateTagsCommand, DescribeInstanceAttributeCommand, DescribeInstancesCommand, EC2Client } from '@aws-sdk/client-ec2';
import { imagoError } from '../../lib/errors';
import { findOnPath } from '../../lib/moto';
import { freePort } from '../../lib/ports';
import { ManagedProcess } from '../../lib/proc';
import { matches } from '../../providers/aws/aws-provider';
import { ROLE_APP, TAG_ROLE, TAG_UPGRADE } from '../../providers/aws/naming';
import { CREDENTIALS, REGION, SIM_ADDRESS_TAG } from './moto-world';

export interface SimInstance {
  instanceId: string;
  upgradeId: string;
  userData: string;
  httpTokens?: string;
  port: number;
  proc: ManagedProcess;
  /** 'booting' until the app answers, then 'up'; 'failed' if it exited first; 'stopped' once terminated. */
  state: 'booting' | 'up' | 'failed' | 'stopped';
}

export class InstanceSimulator {
  readonly instances = new Map<string, SimInstance>();
  readonly dir = fs.mkdtempSync(path.join(os.tmpdir(), 'imago-aws-sim-'));
  private readonly ec2: EC2Client;
  private timer?: NodeJS.Timeout;
  private busy = false;
  private stopped = false;

  constructor(private readonly motoEndpoint: string, private readonly healthPath = '/health') {
    if (!findOnPath('aws')) throw imagoError('IMAGO_PREREQ_MISSING', "'aws' (the AWS CLI) is not on PATH: the simulated instances' boot scripts run it; run 'bash scripts/setup.sh'");
    this.ec2 = new EC2Client({ endpoint: motoEndpoint, region: REGION, credentials: CREDENTIALS });
  }

  start(): this {
    this.timer = setInterval(() => { void this.tick(); }, 150);
    return this;
  }

  private async tick(): Promise<void> {
    if (this.busy || this.stopped) return;
    this.busy = true;
    try {
      const res = await this.ec2.send(new DescribeInstancesCommand({ Filters: [{ Name: `tag:${TAG_ROLE}`, Values: [ROLE_APP] }] }));
      for (const i of (res.Reservations ?? []).flatMap((r) => r.Instances ?? [])) {
        const id = i.InstanceId!;
        const known = this.instances.get(id);
        const state = i.State?.Name ?? '';
        if (!known && state === 'running') await this.boot(id, i.Tags?.find((t) => t.Key === TAG_UPGRADE)?.Value ?? '', i.MetadataOptions?.HttpTokens);
        else if (known && ['shutting-down', 'terminated', 'stopped'].includes(state) && known.state !== 'stopped') {
          known.state = 'stopped';
          await known.proc.stop(5_000);
        }
      }
    } catch { /* moto restarting between tests: try again at the next tick */ } finally { this.busy = false; }
  }

  private async boot(instanceId: string, upgradeId: string, httpTokens?: string): Promise<void> {
    const attr = await this.ec2.send(new DescribeInstanceAttributeCommand({ InstanceId: instanceId, Attribute: 'userData' }));
    const userData = Buffer.from(attr.UserData?.Value ?? '', 'base64').toString('utf8');
    const script = path.join(this.dir, `${instanceId}.sh`);
    fs.writeFileSync(script, userData);
    const port = await freePort();
    const proc = new ManagedProcess(`instance:${instanceId}`, '/bin/sh', [script], path.join(this.dir, `${instanceId}.log`), {
      cwd: '/',
      env: {
        PATH: process.env.PATH, HOME: process.env.HOME, LANG: 'C.UTF-8',
        // The instance's AWS view: its role's credentials (IMDSv2 on EC2) and the region's endpoints (moto here).
        AWS_ENDPOINT_URL: this.motoEndpoint, AWS_ACCESS_KEY_ID: CREDENTIALS.accessKeyId, AWS_SECRET_ACCESS_KEY: CREDENTIALS.secretAccessKey,
        AWS_CONFIG_FILE: path.join(this.dir, 'no-config'), AWS_SHARED_CREDENTIALS_FILE: path.join(this.dir, 'no-credentials'), AWS_EC2_METADATA_DISABLED: 'true',
        // The simulated network: this instance's appPort is this loopback port.
        PORT: String(port),
        ...(process.env.IMAGO_TEST_RUN ? { IMAGO_TEST_RUN: process.env.IMAGO_TEST_RUN } : {}),
      },
    });
    const inst: SimInstance = { instanceId, upgradeId, userData, httpTokens, port, proc, state: 'booting' };
    this.instances.set(instanceId, inst);
    void this.whenUp(inst);
  }

  private async whenUp(inst: SimInstance): Promise<void> {
    const deadline = Date.now() + 60_000;
    while (!this.stopped && Date.now() < deadline) {
      if (inst.proc.exitedAlready) { inst.state = inst.state === 'stopped' ? 'stopped' : 'failed'; return; }
      const ok = await fetch(`http://127.0.0.1:${inst.port}${this.healthPath}`, { signal: AbortSignal.timeout(1_000) }).then((r) => { void r.arrayBuffer(); return true; }, () => false);
      if (ok) {
        inst.state = 'up';
        await this.ec2.send(new CreateTagsCommand({ Resources: [inst.instanceId], Tags: [{ Key: SIM_ADDRESS_TAG, Value: `127.0.0.1:${inst.port}` }] }));
        return;
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** The load balancer's health check of one target, for the realism proxy: the simulated instance's app, on its health path. */
  healthOf = async (instanceId: string, check: { path: string; matcher: string }): Promise<boolean | undefined> => {
    const inst = this.instances.get(instanceId);
    if (!inst) return undefined; // not an instance of Unew (e.g. Uold's interceptor host): moto's answer stands
    if (inst.state !== 'up') return false;
    try {
      const r = await fetch(`http://127.0.0.1:${inst.port}${check.path}`, { signal: AbortSignal.timeout(2_000) });
      await r.arrayBuffer();
      return matches(r.status, check.matcher);
    } catch { return false; }
  };

  /** The environment the app process of an instance really runs with (after the boot script exec'd it). */
  envOf(instanceId: string): Record<string, string> {
    const pid = this.instances.get(instanceId)?.proc.pid;
    if (!pid) return {};
    try {
      return Object.fromEntries(fs.readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0').filter(Boolean).map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]));
    } catch { return {}; }
  }

  logOf(instanceId: string): string {
    return this.instances.get(instanceId)?.proc.tail(40) ?? '';
  }

  running(): SimInstance[] {
    return [...this.instances.values()].filter((i) => i.state === 'up' || i.state === 'booting');
  }

  /** Stops every simulated process (they stay known, so they are not booted again); the simulator keeps watching moto. */
  async stopAll(): Promise<void> {
    await Promise.all([...this.instances.values()].map(async (i) => { i.state = 'stopped'; await i.proc.stop(5_000); }));
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    while (this.busy) await new Promise((r) => setTimeout(r, 20));
    await this.stopAll();
    this.ec2.destroy();
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}
