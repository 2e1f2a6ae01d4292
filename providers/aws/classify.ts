/**
 * Turns AWS SDK errors into registry errors, and retries the transient ones.
 * Capacity, quota and permission failures are non-retryable: retrying cannot
 * help and only burns the upgrade's time budget. Throttling and 5xx are
 * retried here with capped exponential backoff and, if they persist, surface
 * as a retryable error so Temporal retries the whole (idempotent) step.
 * Messages quote AWS's error code and message, never request parameters
 * (user data carries Unew's database URL).
 */
import { imagoError, isImagoError, type ErrorCode, type ImagoError } from '../../lib/errors';

const CAPACITY = new Set(['InsufficientInstanceCapacity', 'InsufficientCapacity', 'InsufficientHostCapacity', 'InsufficientReservedInstanceCapacity', 'InsufficientFreeAddressesInSubnet', 'Unsupported']);
const QUOTA = new Set(['InstanceLimitExceeded', 'VcpuLimitExceeded', 'ResourceLimitExceeded', 'TooManyTargetGroups', 'TooManyTargets', 'TooManyRegistrationsForTargetId', 'TooManyTags', 'TooManyActions', 'TooManyRules', 'VolumeLimitExceeded', 'MaxIOPSLimitExceeded']);
const PERMISSION = new Set(['UnauthorizedOperation', 'AccessDenied', 'AccessDeniedException', 'AuthFailure', 'Blocked', 'OptInRequired', 'InvalidClientTokenId', 'SignatureDoesNotMatch', 'UnrecognizedClientException', 'ExpiredToken']);
const TRANSIENT = new Set(['RequestLimitExceeded', 'Throttling', 'ThrottlingException', 'TooManyRequestsException', 'ServiceUnavailable', 'Unavailable', 'InternalError', 'InternalFailure', 'RequestTimeout', 'RequestTimeoutException', 'TimeoutError', 'ECONNRESET', 'ECONNREFUSED', 'EPIPE', 'ETIMEDOUT']);
const INVALID_PREFIXES = ['Invalid', 'Malformed', 'ValidationError', 'ListenerNotFound', 'RuleNotFound', 'TargetGroupNotFound', 'LoadBalancerNotFound', 'MissingParameter', 'UnknownParameter'];

export function errorName(err: unknown): string {
  const e = err as { name?: string; code?: string; Code?: string } | undefined;
  return e?.Code ?? e?.code ?? e?.name ?? 'Unknown';
}

/** Maps an AWS error to a registry code; `what` says which call and resource, for the message. */
export function classifyAwsError(err: unknown, what: string): ImagoError {
  if (isImagoError(err)) return err;
  const name = errorName(err);
  const status = (err as { $metadata?: { httpStatusCode?: number } })?.$metadata?.httpStatusCode;
  let code: ErrorCode = 'PROVIDER_AWS_UNEXPECTED';
  if (CAPACITY.has(name)) code = 'PROVIDER_AWS_CAPACITY';
  else if (QUOTA.has(name) || /LimitExceeded$/.test(name) && name !== 'RequestLimitExceeded') code = 'PROVIDER_AWS_QUOTA';
  else if (PERMISSION.has(name)) code = 'PROVIDER_AWS_PERMISSION';
  else if (TRANSIENT.has(name) || (status !== undefined && status >= 500)) code = 'PROVIDER_AWS_TRANSIENT';
  else if (INVALID_PREFIXES.some((p) => name.startsWith(p))) code = 'PROVIDER_AWS_INVALID';
  const msg = (err as Error)?.message ?? String(err);
  return imagoError(code, `${what}: AWS ${name}: ${msg}`, err);
}

export interface RetryOptions { attempts?: number; baseMs?: number; maxMs?: number; sleep?: (ms: number) => Promise<void> }

const realSleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Runs an AWS call; retries only PROVIDER_AWS_TRANSIENT, with capped exponential backoff and jitter. */
export async function withAwsRetry<T>(what: string, call: () => Promise<T>, opts: RetryOptions = {}): Promise<T> {
  const attempts = opts.attempts ?? 5;
  const sleep = opts.sleep ?? realSleep;
  for (let i = 1; ; i++) {
    try {
      return await call();
    } catch (err) {
      const e = classifyAwsError(err, what);
      if (e.code !== 'PROVIDER_AWS_TRANSIENT' || i >= attempts) throw e;
      const cap = Math.min(opts.maxMs ?? 20_000, (opts.baseMs ?? 500) * 2 ** (i - 1));
      await sleep(cap / 2 + Math.random() * (cap / 2));
    }
  }
}
