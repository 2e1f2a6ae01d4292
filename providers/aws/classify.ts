/**
 * Turns AWS SDK errors into registry errors, and waits out AWS's eventual
 * consistency for a bounded time.
 *
 * One retry layer per concern, never stacked:
 *   - a single call: the SDK's own retry in adaptive mode (throttling, 5xx,
 *     network errors; clients.ts), nothing on top of it here;
 *   - a whole step: Temporal's activity retry policy, which retries only
 *     errors classified retryable below (transient), never capacity, quota,
 *     permission or invalid input, where retrying cannot help;
 *   - eventual consistency: the few codes AWS documents right after a
 *     change (an instance not visible yet, a target not registrable yet, an
 *     instance profile not propagated yet, a group still in use just after
 *     a swap) are awaited by `untilConsistent` for a bounded time, because
 *     they are expected states, not faults.
 * Messages quote AWS's error code and message, never request parameters.
 */
import { imagoError, isImagoError, type ErrorCode, type ImagoError } from '../../lib/errors';

const CAPACITY = new Set(['InsufficientInstanceCapacity', 'InsufficientCapacity', 'InsufficientHostCapacity', 'InsufficientReservedInstanceCapacity', 'InsufficientFreeAddressesInSubnet', 'Unsupported']);
const QUOTA = new Set(['InstanceLimitExceeded', 'VcpuLimitExceeded', 'ResourceLimitExceeded', 'TooManyTargetGroups', 'TooManyTargets', 'TooManyRegistrationsForTargetId', 'TooManyTags', 'TooManyActions', 'TooManyRules', 'VolumeLimitExceeded', 'MaxIOPSLimitExceeded']);
const PERMISSION = new Set(['UnauthorizedOperation', 'AccessDenied', 'AccessDeniedException', 'AuthFailure', 'Blocked', 'OptInRequired', 'InvalidClientTokenId', 'SignatureDoesNotMatch', 'UnrecognizedClientException', 'ExpiredToken', 'CredentialsProviderError']);
const TRANSIENT = new Set(['RequestLimitExceeded', 'Throttling', 'ThrottlingException', 'TooManyRequestsException', 'ServiceUnavailable', 'Unavailable', 'InternalError', 'InternalFailure', 'RequestTimeout', 'RequestTimeoutException', 'TimeoutError', 'ECONNRESET', 'ECONNREFUSED', 'EPIPE', 'ETIMEDOUT']);
/** Codes AWS answers for a moment right after a change (eventual consistency): retryable as a step. */
export const EVENTUAL = new Set(['InvalidInstanceID.NotFound', 'InvalidTarget', 'ResourceInUse', 'IncorrectInstanceState']);
const INVALID_PREFIXES = ['Invalid', 'Malformed', 'ValidationError', 'ListenerNotFound', 'RuleNotFound', 'TargetGroupNotFound', 'LoadBalancerNotFound', 'MissingParameter', 'UnknownParameter', 'IncompatibleProtocols', 'IdempotentParameterMismatch', 'ParameterNotFound'];

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
  else if (TRANSIENT.has(name) || EVENTUAL.has(name) || (status !== undefined && status >= 500)) code = 'PROVIDER_AWS_TRANSIENT';
  else if (INVALID_PREFIXES.some((p) => name.startsWith(p))) code = 'PROVIDER_AWS_INVALID';
  const msg = (err as Error)?.message ?? String(err);
  return Object.assign(imagoError(code, `${what}: AWS ${name}: ${msg}`, err), { awsCode: name });
}

/** The AWS error code of a classified error (or of a raw SDK error). */
export function awsCodeOf(err: unknown): string {
  return (err as { awsCode?: string })?.awsCode ?? errorName(err);
}

/** Runs one AWS call (the SDK retries it as configured) and classifies its failure. */
export async function call<T>(what: string, fn: () => Promise<T>): Promise<T> {
  try { return await fn(); } catch (err) { throw classifyAwsError(err, what); }
}

/** Runs one AWS call; `undefined` when AWS answers one of `notFound` (the resource does not exist). */
export async function lookup<T>(what: string, notFound: string[], fn: () => Promise<T>): Promise<T | undefined> {
  try { return await fn(); } catch (err) {
    if (notFound.includes(errorName(err))) return undefined;
    throw classifyAwsError(err, what);
  }
}

export interface ConsistencyOptions {
  /** How long the expected state may last (AWS documents "a moment"; we bound it). */
  budgetMs: number;
  pollMs?: number;
  sleep?: (ms: number) => Promise<void>;
  now?: () => number;
}

const realSleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * Runs `fn`; while it fails with an error `expected(code, message)` accepts
 * as eventual consistency, waits and tries again, up to budgetMs. Anything
 * else, or the budget spent, is thrown classified.
 */
export async function untilConsistent<T>(what: string, expected: (code: string, message: string) => boolean, fn: () => Promise<T>, opts: ConsistencyOptions): Promise<T> {
  const now = opts.now ?? Date.now;
  const sleep = opts.sleep ?? realSleep;
  const deadline = now() + opts.budgetMs;
  for (let wait = opts.pollMs ?? 500; ; wait = Math.min(wait * 2, 5_000)) {
    try { return await fn(); } catch (err) {
      const code = awsCodeOf(err);
      if (!expected(code, (err as Error)?.message ?? '') || now() >= deadline) throw classifyAwsError(err, what);
      await sleep(Math.min(wait, Math.max(0, deadline - now())));
    }
  }
}

/** Budgets for the eventual-consistency waits (documented in docs/aws-provider.md). */
export const CONSISTENCY_BUDGET_MS = {
  /** RegisterTargets answering InvalidTarget for an instance that just became running. */
  targetRegistration: 120_000,
  /** RunInstances answering InvalidParameterValue for an instance profile created moments ago. */
  instanceProfile: 60_000,
  /** DeleteTargetGroup answering ResourceInUse right after the last listener or rule stopped using it. */
  targetGroupRelease: 60_000,
};
