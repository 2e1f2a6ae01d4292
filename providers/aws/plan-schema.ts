/**
 * The plan's `unew.aws` section: JSON schema (exported so the plan schema can
 * embed it) and its one-time validation. Every error is reported with its
 * plan path, all together, before anything is created in AWS. Unknown keys
 * are rejected, which also keeps credentials out of the plan: they come from
 * the SDK's default provider chain on the worker host only.
 *
 * No secret is ever written into the plan or into user data: the instance's
 * secrets are named by `secretEnv` (SSM Parameter Store references) and
 * fetched on the instance, with its own role, at boot.
 */
import Ajv, { type ErrorObject } from 'ajv';
import { imagoError } from '../../lib/errors';

const arn = (service: string, kind: string) => ({ type: 'string', pattern: `^arn:aws[a-z-]*:${service}:[a-z0-9-]+:\\d{12}:${kind}/\\S+$` });

/** Variables an `appUrl` template may use; `{tag:KEY}` reads one of the instance's tags. */
export const APP_URL_VARIABLES = ['privateIp', 'privateDnsName', 'publicIp', 'publicDnsName', 'instanceId', 'appPort'] as const;
export const DEFAULT_APP_URL = 'http://{privateIp}:{appPort}';
/** SSM parameter reference: `ssm:/path/name` or `ssm:name` (Secrets Manager secrets through /aws/reference/secretsmanager/<id>). */
export const SSM_REF = '^ssm:[A-Za-z0-9_./-]{1,1011}$';
const ENV_NAME = '^[A-Za-z_][A-Za-z0-9_]*$';

export const awsPlanSchema = {
  $id: 'imago:unew.aws',
  type: 'object',
  additionalProperties: false,
  required: ['ami', 'instanceType', 'count', 'subnets', 'securityGroups', 'uoldTargetGroupArn', 'database'],
  properties: {
    region: { type: 'string', pattern: '^[a-z]{2}(-[a-z]+)+-\\d$', description: "Default: the worker's SDK configuration (AWS_REGION, profile)." },
    /** Only for moto/LocalStack; omit for real AWS. */
    endpoint: { type: 'string', pattern: '^https?://' },
    ami: { type: 'string', pattern: '^ami-[0-9a-f]{8,17}$' },
    instanceType: { type: 'string', pattern: '^[a-z][a-z0-9-]*\\.[a-z0-9]+$' },
    count: { type: 'integer', minimum: 1, maximum: 100 },
    subnets: { type: 'array', minItems: 1, uniqueItems: true, items: { type: 'string', pattern: '^subnet-[0-9a-f]{8,17}$' } },
    securityGroups: { type: 'array', minItems: 1, uniqueItems: true, items: { type: 'string', pattern: '^sg-[0-9a-f]{8,17}$' } },
    keyName: { type: 'string', minLength: 1, maxLength: 255 },
    /** Instance profile name or ARN: the role the instance fetches its secrets with. */
    instanceProfile: { type: 'string', minLength: 1 },
    /** Port the new version listens on (target group port). Imago does not pass it to the app: unew.app.command or env does. */
    appPort: { type: 'integer', minimum: 1, maximum: 65535, default: 80 },
    /** How the worker and the interceptors reach one instance's app (health probes, tests, mirrored and held traffic). */
    appUrl: { type: 'string', pattern: '^https?://\\S+$', default: DEFAULT_APP_URL },
    /** The folder on the instance where unew.app.command runs (where the AMI has the new version). */
    workDir: { type: 'string', pattern: '^/', default: '/' },
    /** Shell commands run at boot before the secrets are fetched and the app starts (no secrets here: user data is readable). */
    bootScript: { type: 'string', maxLength: 8000 },
    /** Environment variables whose values are secrets, fetched on the instance with its role: NAME → ssm:/parameter/name. */
    secretEnv: { type: 'object', default: {}, propertyNames: { pattern: ENV_NAME }, additionalProperties: { type: 'string', pattern: SSM_REF } },
    /** The target group Uold serves through (in the documented topology: the ingress interceptors). Every listener and rule forwarding to it is switched. */
    uoldTargetGroupArn: arn('elasticloadbalancing', 'targetgroup'),
    /** Where the worker connects from, for the security-group preflight (optional: the health wait probes anyway). */
    workerCidr: { type: 'string', pattern: '^\\d{1,3}(\\.\\d{1,3}){3}/\\d{1,2}$' },
    healthCheck: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        /** Default: unew.app.healthPath. */
        path: { type: 'string', pattern: '^/' },
        port: { anyOf: [{ type: 'integer', minimum: 1, maximum: 65535 }, { const: 'traffic-port' }], default: 'traffic-port' },
        intervalSeconds: { type: 'integer', minimum: 5, maximum: 300, default: 10 },
        timeoutSeconds: { type: 'integer', minimum: 2, maximum: 120, default: 5 },
        healthyThreshold: { type: 'integer', minimum: 2, maximum: 10, default: 2 },
        unhealthyThreshold: { type: 'integer', minimum: 2, maximum: 10, default: 2 },
        matcher: { type: 'string', pattern: '^\\d{3}([-,]\\d{3})*$', default: '200' },
      },
    },
    /** Unew's database, prepared by the user (e.g. an RDS instance). The admin URL is a reference resolved on the worker (the data transfer writes through it). */
    database: {
      type: 'object',
      additionalProperties: false,
      required: ['adminUrlRef', 'endpoint', 'database'],
      properties: {
        adminUrlRef: { type: 'string', pattern: '^(env|file):.+' },
        endpoint: { type: 'string', pattern: '^[^\\s:/]+:\\d+$' },
        database: { type: 'string', pattern: '^[A-Za-z0-9_$]+$' },
        /** The account the app connects as (its URL is a secret in secretEnv): checked by the grants check. */
        appUser: { type: 'string', minLength: 1, maxLength: 80 },
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

/** What the instance runs, from the plan's `unew.app` (absent for calls that only find or remove resources). */
export interface AwsApp { command: string[]; env: Record<string, string> }

export interface AwsPlan {
  region?: string; endpoint?: string; ami: string; instanceType: string; count: number;
  subnets: string[]; securityGroups: string[]; keyName?: string; instanceProfile?: string;
  appPort: number; appUrl: string; workDir: string; bootScript?: string; secretEnv: Record<string, string>;
  uoldTargetGroupArn: string; workerCidr?: string;
  healthCheck: AwsHealthCheck;
  database: { adminUrlRef: string; endpoint: string; database: string; appUser?: string };
  timeouts: { instancesRunningMs: number; targetsHealthyMs: number };
  app?: AwsApp;
}

const ajv = new Ajv({ allErrors: true, useDefaults: true, strict: true });
const validate = ajv.compile(awsPlanSchema);

function describe(e: ErrorObject, base: string): string {
  const at = `${base}${e.instancePath.replace(/\//g, '.')}`;
  if (e.keyword === 'required') return `${at}.${(e.params as { missingProperty: string }).missingProperty}: is required`;
  if (e.keyword === 'additionalProperties') return `${at}.${(e.params as { additionalProperty: string }).additionalProperty}: unknown key`;
  if (e.keyword === 'propertyNames') return `${at}: '${(e.params as { propertyName: string }).propertyName}' is not an environment variable name`;
  if (e.keyword === 'pattern' && /\.secretEnv\./.test(at)) return `${at}: must be an SSM parameter reference, ssm:/name (never the secret itself)`;
  return `${at}: ${e.message ?? e.keyword}`;
}

/** Problems of an appUrl template: unknown variables. */
export function appUrlProblems(template: string): string[] {
  const out: string[] = [];
  for (const m of template.matchAll(/\{([^}]*)\}/g)) {
    const v = m[1];
    if (!(APP_URL_VARIABLES as readonly string[]).includes(v) && !/^tag:[^{}]+$/.test(v)) out.push(`unknown variable {${v}} (use ${APP_URL_VARIABLES.map((x) => `{${x}}`).join(', ')} or {tag:KEY})`);
  }
  return out;
}

/**
 * Validates `unew.aws` (from the plan's `unew` section) and returns it with
 * defaults applied, frozen, with the app's command and env from `unew.app`.
 * Throws PROVIDER_AWS_INVALID listing every error.
 */
export function validateAwsPlan(unew: Record<string, unknown>, base = 'unew.aws'): AwsPlan {
  const section = unew?.aws;
  if (section === undefined || section === null || typeof section !== 'object') {
    throw imagoError('PROVIDER_AWS_INVALID', `${base}: is required for the aws provider`);
  }
  const copy = structuredClone(section) as Record<string, any>; // useDefaults mutates: never touch the caller's plan
  const msgs = validate(copy) ? [] : [...new Set((validate.errors ?? []).filter((e) => e.keyword !== 'anyOf').map((e) => describe(e, base)))];
  // Cross-field rules the schema cannot express; ELBv2 would only reject them after the instances were launched.
  const hc = copy.healthCheck as Partial<AwsHealthCheck> | undefined;
  if (hc && typeof hc.timeoutSeconds === 'number' && typeof hc.intervalSeconds === 'number' && hc.timeoutSeconds >= hc.intervalSeconds) {
    msgs.push(`${base}.healthCheck.timeoutSeconds: must be smaller than intervalSeconds (${hc.intervalSeconds})`);
  }
  if (typeof copy.appUrl === 'string') msgs.push(...appUrlProblems(copy.appUrl).map((p) => `${base}.appUrl: ${p}`));
  const app = unew.app as { command?: unknown; env?: Record<string, unknown>; healthPath?: unknown } | undefined;
  let awsApp: AwsApp | undefined;
  if (app && typeof app === 'object') {
    const env = (app.env ?? {}) as Record<string, unknown>;
    for (const [k, v] of Object.entries(env)) {
      if (!new RegExp(ENV_NAME).test(k)) msgs.push(`unew.app.env.${k}: not an environment variable name`);
      if (typeof v !== 'string') msgs.push(`unew.app.env.${k}: must be a string`);
      if (copy.secretEnv && k in copy.secretEnv) msgs.push(`unew.app.env.${k}: also in ${base}.secretEnv; name it in one place`);
    }
    if (Array.isArray(app.command) && app.command.length && app.command.every((a) => typeof a === 'string')) {
      awsApp = { command: [...app.command as string[]], env: { ...env as Record<string, string> } };
    }
    if (hc && hc.path === undefined && typeof app.healthPath === 'string') hc.path = app.healthPath;
  }
  if (hc && hc.path === undefined) hc.path = '/health';
  if (msgs.length) throw imagoError('PROVIDER_AWS_INVALID', msgs.join('; '));
  return deepFreeze({ ...copy, ...(awsApp ? { app: awsApp } : {}) } as unknown as AwsPlan);
}

function deepFreeze<T>(o: T): T {
  if (o && typeof o === 'object') { for (const v of Object.values(o)) deepFreeze(v); Object.freeze(o); }
  return o;
}
