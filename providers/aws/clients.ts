/**
 * The AWS SDK clients for one plan: region and endpoint from `unew.aws`,
 * credentials from the SDK's default provider chain (or injected by the
 * worker). Credentials are never logged and never part of a returned value,
 * so they cannot reach workflow history.
 */
import { EC2Client, type EC2ClientConfig } from '@aws-sdk/client-ec2';
import { ElasticLoadBalancingV2Client } from '@aws-sdk/client-elastic-load-balancing-v2';
import type { AwsPlan } from './plan-schema';

export interface AwsClients { ec2: EC2Client; elb: ElasticLoadBalancingV2Client }

export interface AwsClientOptions {
  /** Only for tests against moto or for a worker that injects its own; default: the SDK default chain. */
  credentials?: EC2ClientConfig['credentials'];
  /** SDK-level attempts per call (its own throttling retry); our withAwsRetry adds classified retries on top. */
  maxAttempts?: number;
}

export function createAwsClients(plan: Pick<AwsPlan, 'region' | 'endpoint'>, opts: AwsClientOptions = {}): AwsClients {
  const common = {
    region: plan.region ?? process.env.AWS_REGION ?? 'us-east-1',
    ...(plan.endpoint ? { endpoint: plan.endpoint } : {}),
    ...(opts.credentials ? { credentials: opts.credentials } : {}),
    maxAttempts: opts.maxAttempts ?? 3,
  };
  return { ec2: new EC2Client(common), elb: new ElasticLoadBalancingV2Client(common) };
}

export function destroyClients(c: AwsClients): void {
  c.ec2.destroy();
  c.elb.destroy();
}
