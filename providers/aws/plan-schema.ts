/**
 * The plan's `unew.aws` section: JSON schema (exported so the plan schema can
 * embed it) and its one-time validation. Every error is reported with its
 * plan path, all together, before anything is created in AWS. Unknown keys
 * are rejected, which also keeps credentials out of the plan: they come from
 * the SDK's default provider chain on the worker host only.
 */
import Ajv, { type ErrorObject } from 'ajv';
import { imagoError } from '../../lib/errors';

/** Placeholder in `userData` replaced by Unew's application database URL (resolved on the worker, never in workflow history). */
export const DB_URL_PLACEHOLDER = '{{UNEW_DB_URL}}';

const arn = (service: string, kind: string) => ({ type: 'string', pattern: `^arn:aws[a-z-]*:${service}:[a-z0-9-]+:\\d{12}:${kind}/\\S+$` });

export const awsPlanSchema = {
  $id: 'imago:unew.aws',
  type: 'object',
  additionalProperties: false,
  required: ['ami', 'instanceType', 'count', 'subnets', 'securityGroups', 'userData', 'listenerArn', 'uoldTargetGroupArn', 'database'],
  properties: {
    region: { type: 'string', pattern: '^[a-z]{2}(-[a-z]+)+-\\d$' },
    /** Only for moto/LocalStack; omit for real AWS. */
    endpoint: { type: 'string', pattern: '^https?://' },
    ami: { type: 'string', pattern: '^ami-[0-9a-f]{8,17}$' },
    instanceType: { type: 'string', pattern: '^[a-z][a-z0-9-]*\\.[a-z0-9]+$' },
    count: { type: 'integer', minimum: 1, maximum: 100 },
    subnets: { type: 'array', minItems: 1, uniqueItems: true, items: { type: 'string', pattern: '^subnet-[0-9a-f]{8,17}$' } },
    securityGroups: { type: 'array', minItems: 1, uniqueItems: true, items: { type: 'string', pattern: '^sg-[0-9a-f]{8,17}$' } },
    keyName: { type: 'string', minLength: 1, maxLength: 255 },
    /** Instance profile name or ARN. */
    instanceProfile: { type: 'string', minLength: 1 },
    /** Boot script; must contain {{UNEW_DB_URL}} so the new version uses Unew's database only (isolation). */
    userData: { type: 'string', minLength: 1, maxLength: 12000, pattern: '\\{\\{UNEW_DB_URL\\}\\}' },
    /** Port the new version listens on (target group port). */
    appPort: { type: 'integer', minimum: 1, maximum: 65535, default: 80 },
    listenerArn: arn('elasticloadbalancing', 'listener/(app|net)'),
    ruleArns: { type: 'array', uniqueItems: true, default: [], items: arn('elasticloadbalancing', 'listener-rule/(app|net)') },
    uoldTargetGroupArn: arn('elasticloadbalancing', 'targetgroup'),
    healthCheck: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        path: { type: 'string', pattern: '^/', default: '/health' },
        port: { anyOf: [{ type: 'integer', minimum: 1, maximum: 65535 }, { const: 'traffic-port' }], default: 'traffic-port' },
        intervalSeconds: { type: 'integer', minimum: 5, maximum: 300, default: 10 },
        timeoutSeconds: { type: 'integer', minimum: 2, maximum: 120, default: 5 },
        healthyThreshold: { type: 'integer', minimum: 2, maximum: 10, default: 2 },
        unhealthyThreshold: { type: 'integer', minimum: 2, maximum: 10, default: 2 },
        matcher: { type: 'string', pattern: '^\\d{3}([-,]\\d{3})*$', default: '200' },
      },
    },
    /** Unew's database, prepared by the user (e.g. an RDS instance). URLs are references (env:NAME or file:/path), resolved on the worker. */
    database: {
      type: 'object',
      additionalProperties: false,
      required: ['adminUrlRef', 'appUrlRef', 'endpoint', 'database'],
      properties: {
        adminUrlRef: { type: 'string', pattern: '^(env|file):.+' },
        appUrlRef: { type: 'string', pattern: '^(env|file):.+' },
        endpoint: { type: 'string', pattern: '^[^\\s:/]+:\\d+$' },
        database: { type: 'string', pattern: '^[A-Za-z0-9_$]+$' },
      },
    },
    timeouts: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        instancesRunningMs: { type: 'integer', minimum: 1000, default: 600_000 },
        targetsHealthyMs: { type: 'integer', minimum: 1000, default: 900_000 },
      },
    },
  },
} as const;

export interface AwsHealthCheck {
  path: string; port: number | 'traffic-port'; intervalSeconds: number; timeoutSeconds: number;
  healthyThreshold: number; unhealthyThreshold: number; matcher: string;
}

export interface AwsPlan {
  region?: string; endpoint?: string; ami: string; instanceType: string; count: number;
  subnets: string[]; securityGroups: string[]; keyName?: string; instanceProfile?: string;
  userData: string; appPort: number; listenerArn: string; ruleArns: string[]; uoldTargetGroupArn: string;
  healthCheck: AwsHealthCheck;
  database: { adminUrlRef: string; appUrlRef: string; endpoint: string; database: string };
  timeouts: { instancesRunningMs: number; targetsHealthyMs: number };
}

const ajv = new Ajv({ allErrors: true, useDefaults: true, strict: true });
const validate = ajv.compile(awsPlanSchema);

function describe(e: ErrorObject, base: string): string {
  const at = `${base}${e.instancePath.replace(/\//g, '.')}`;
  if (e.keyword === 'required') return `${at}.${(e.params as { missingProperty: string }).missingProperty}: is required`;
  if (e.keyword === 'additionalProperties') return `${at}.${(e.params as { additionalProperty: string }).additionalProperty}: unknown key`;
  if (e.keyword === 'pattern' && at.endsWith('.userData')) return `${at}: must contain ${DB_URL_PLACEHOLDER}`;
  return `${at}: ${e.message ?? e.keyword}`;
}

/** Validates `unew.aws` (from the plan's `unew` section) and returns it with defaults applied, frozen. Throws PROVIDER_AWS_INVALID listing every error. */
export function validateAwsPlan(unew: Record<string, unknown>, base = 'unew.aws'): AwsPlan {
  const section = unew?.aws;
  if (section === undefined || section === null || typeof section !== 'object') {
    throw imagoError('PROVIDER_AWS_INVALID', `${base}: is required for the aws provider`);
  }
  const copy = structuredClone(section); // useDefaults mutates: never touch the caller's plan
  const msgs = validate(copy) ? [] : [...new Set((validate.errors ?? []).filter((e) => e.keyword !== 'anyOf').map((e) => describe(e, base)))];
  // Cross-field rules the schema cannot express; ELBv2 would only reject them after the instances were launched.
  const hc = (copy as { healthCheck?: Partial<AwsHealthCheck> }).healthCheck;
  if (hc && typeof hc.timeoutSeconds === 'number' && typeof hc.intervalSeconds === 'number' && hc.timeoutSeconds >= hc.intervalSeconds) {
    msgs.push(`${base}.healthCheck.timeoutSeconds: must be smaller than intervalSeconds (${hc.intervalSeconds})`);
  }
  if (msgs.length) throw imagoError('PROVIDER_AWS_INVALID', msgs.join('; '));
  return deepFreeze(copy as unknown as AwsPlan);
}

function deepFreeze<T>(o: T): T {
  if (o && typeof o === 'object') { for (const v of Object.values(o)) deepFreeze(v); Object.freeze(o); }
  return o;
}
