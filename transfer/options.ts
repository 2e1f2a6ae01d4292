import Ajv from 'ajv';
import { imagoError } from '../lib/errors';
import type { ConversionModule } from './conversion';

export interface Endpoint { url: string; database: string }

export interface ThrottleSettings {
  /** Copy waits while Uold's Threads_running is above this. */
  maxThreadsRunning: number;
  /** Copy waits while our own apply lag (ms) is above this. */
  maxLagMs: number;
  /** How often Uold's load is sampled. */
  checkIntervalMs: number;
}

export interface TransferOptions {
  /** Uold: a user with only REPLICATION SLAVE, REPLICATION CLIENT and SELECT. */
  source: Endpoint;
  /** Unew: an admin user of the target database. */
  target: Endpoint;
  conversion: ConversionModule;
  chunkSize: number;
  parallelTables: number;
  /** Server id of our binlog reader; must differ from every server and reader. */
  serverId: number;
  throttle: ThrottleSettings;
  /** Rows of each table converted and test-written (then rolled back) at preflight. */
  sampleRows: number;
  /** Most change events applied in one Unew transaction while following. */
  maxApplyBatch: number;
}

export type TransferInput = Omit<Partial<TransferOptions>, 'throttle'> & Pick<TransferOptions, 'source' | 'target' | 'conversion' | 'serverId'> & { throttle?: Partial<ThrottleSettings> };

export const DEFAULT_THROTTLE: ThrottleSettings = { maxThreadsRunning: 50, maxLagMs: 5_000, checkIntervalMs: 250 };

const endpoint = {
  type: 'object', additionalProperties: false, required: ['url', 'database'],
  properties: { url: { type: 'string', pattern: '^mysql://' }, database: { type: 'string', minLength: 1, pattern: '^[A-Za-z0-9_$]+$' } },
};
const throttleSchema = {
  type: 'object', additionalProperties: false,
  properties: {
    maxThreadsRunning: { type: 'integer', minimum: 1 },
    maxLagMs: { type: 'integer', minimum: 1 },
    checkIntervalMs: { type: 'integer', minimum: 10, maximum: 60_000 },
  },
};
const schema = {
  type: 'object', additionalProperties: false, required: ['source', 'target', 'conversion', 'serverId'],
  properties: {
    source: endpoint, target: endpoint,
    conversion: { type: 'object', required: ['name', 'tables'], properties: { name: { type: 'string' }, tables: { type: 'array', minItems: 1 } } },
    chunkSize: { type: 'integer', minimum: 1, maximum: 100_000 },
    parallelTables: { type: 'integer', minimum: 1, maximum: 64 },
    serverId: { type: 'integer', minimum: 1, maximum: 4294967295 },
    throttle: throttleSchema,
    sampleRows: { type: 'integer', minimum: 0, maximum: 10_000 },
    maxApplyBatch: { type: 'integer', minimum: 1, maximum: 100_000 },
  },
};

const ajv = new Ajv({ allErrors: true, strict: false });
const check = ajv.compile(schema);
const checkThrottle = ajv.compile(throttleSchema);

function report(errors: typeof check.errors, where: string): never {
  const list = (errors ?? []).map((e) => `${where}${e.instancePath || '/'} ${e.message}${e.keyword === 'additionalProperties' ? ` '${(e.params as { additionalProperty: string }).additionalProperty}'` : ''}`);
  throw imagoError('IMAGO_OPTIONS_INVALID', `transfer options: ${list.join('; ')}`);
}

/** Validates once, fills defaults, freezes. Every error is reported together. */
export function validateTransferOptions(input: TransferInput): Readonly<TransferOptions> {
  if (!check(input)) report(check.errors, 'options');
  const o: TransferOptions = {
    chunkSize: 2_000, parallelTables: 2, sampleRows: 20, maxApplyBatch: 2_000,
    ...input,
    throttle: { ...DEFAULT_THROTTLE, ...(input.throttle ?? {}) },
  };
  return Object.freeze(o);
}

/** For setThrottle(partial) while running. */
export function validateThrottlePatch(patch: Partial<ThrottleSettings>): Partial<ThrottleSettings> {
  if (!checkThrottle(patch)) report(checkThrottle.errors, 'throttle');
  return patch;
}
