/**
 * The AWS SDK clients for one plan: region and endpoint from `unew.aws`
 * (region falling back to the worker's SDK configuration), credentials from
 * the SDK's default provider chain (environment, profile, SSO, instance or
 * task role). Credentials are never logged and never part of a returned
 * value, so they cannot reach workflow history.
 *
 * Each call is retried by the SDK alone, in adaptive mode (exponential
 * backoff with jitter plus client-side rate limiting once AWS throttles):
 * the one retry layer per call (see classify.ts). The exception is the
 * Modify calls inside the hold (elbSwitch): sent once by the SDK and retried
 * at once by switcher.ts, because clients are waiting.
 *
 * Clients are pooled per region and endpoint for the worker's lifetime, so
 * the cut-over's applySwitch finds a client whose credentials prepareSwitch
 * already resolved: inside the hold it sends only its Modify calls.
 */
import { EC2Client } from '@aws-sdk/client-ec2';
import { ElasticLoadBalancingV2Client } from '@aws-sdk/client-elastic-load-balancing-v2';
import { SSMClient } from '@aws-sdk/client-ssm';
import { imagoError } from '../../lib/errors';

export interface AwsClients {
  ec2: EC2Client; elb: ElasticLoadBalancingV2Client; ssm: SSMClient; region: string;
  /** ELB client for the Modify calls inside the hold: no SDK retry (its backoff and rate limiting would stretch the clients' pause); switcher.ts retries at once. */
  elbSwitch: ElasticLoadBalancingV2Client;
}

export interface Where { region?: string; endpoint?: string }

/** SDK attempts per call (the first one included). */
export const SDK_MAX_ATTEMPTS = 4;

export class ClientPool {
  private readonly pool = new Map<string, AwsClients>();

  /** The clients for a plan's region and endpoint (created once; cheap afterwards). */
  get(where: Where): AwsClients {
    const key = `${where.region ?? ''}|${where.endpoint ?? ''}`;
    let c = this.pool.get(key);
    if (!c) {
      const region = where.region ?? process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION;
      const common = {
        ...(region ? { region } : {}),
        ...(where.endpoint ? { endpoint: where.endpoint } : {}),
        retryMode: 'adaptive',
        maxAttempts: SDK_MAX_ATTEMPTS,
      };
      c = {
        ec2: new EC2Client(common), elb: new ElasticLoadBalancingV2Client(common), ssm: new SSMClient(common), region: region ?? '',
        elbSwitch: new ElasticLoadBalancingV2Client({ ...common, retryMode: 'standard', maxAttempts: 1 }),
      };
      this.pool.set(key, c);
    }
    return c;
  }

  /**
   * Resolves the region and the credentials now (the SDK caches them in the
   * client until they near expiry), so a later call makes no credential
   * lookup. Throws PROVIDER_AWS_PERMISSION / PROVIDER_AWS_INVALID with what
   * to configure.
   */
  async warm(where: Where): Promise<AwsClients> {
    const c = this.get(where);
    let region: string;
    try { region = await c.elb.config.region(); } catch {
      throw imagoError('PROVIDER_AWS_INVALID', 'unew.aws.region: not set, and the worker has no default region (set unew.aws.region, or AWS_REGION / a profile region on the worker)');
    }
    const none = "no AWS credentials on this worker: the SDK's default chain (environment, profile, SSO, instance or task role) found none";
    let accessKeyId: string | undefined;
    try {
      // Both ELB clients resolve (and cache) their credentials now: applySwitch, inside the hold, looks up none.
      const [creds] = await Promise.all([c.elb.config.credentials(), c.elbSwitch.config.credentials()]);
      accessKeyId = creds?.accessKeyId;
    } catch (err) {
      throw imagoError('PROVIDER_AWS_PERMISSION', `${none}: ${(err as Error).message}`, err);
    }
    if (!accessKeyId) throw imagoError('PROVIDER_AWS_PERMISSION', `${none}: empty credentials`);
    c.region = region;
    return c;
  }

  destroy(): void {
    for (const c of this.pool.values()) { c.ec2.destroy(); c.elb.destroy(); c.ssm.destroy(); c.elbSwitch.destroy(); }
    this.pool.clear();
  }
}
