import Ajv from 'ajv';
import { imagoError } from '../lib/errors';
import type { ConversionModule } from './conversion';
import type { ControlClientTls } from '../interceptors/ingress/control-client';

export interface Endpoint { url: string; database: string }

/** An ingress interceptor in front of Uold: its control API reports the latency Uold's clients see. */
export interface IngressEndpoint { controlUrl: string; token: string; tls?: ControlClientTls }

export interface ThrottleSettings {
  /** max-load: the copy waits while Uold's Threads_running is above this. */
  maxThreadsRunning: number;
  /** critical-load: above this on two samples in a row the copy pauses for criticalPauseMs (0: off). */
  criticalThreadsRunning: number;
  /** max-load on Uold's p99 latency at the ingress interceptors, ms (0: off; needs `ingress`). */
  maxUoldP99Ms: number;
  /** critical-load on that p99, ms (0: off). */
  criticalUoldP99Ms: number;
  /**
   * max-load on that p99 relative to Uold's own before the copy (the interceptors' histograms up to the
   * transfer's start): the copy waits while the p99 is above this multiple of it (0: off; needs `ingress`).
   */
  maxUoldP99Ratio: number;
  /** …and at least this many ms above it: a p99 of 4 ms that becomes 6 ms is noise, not load. */
  uoldP99FloorMs: number;
  /** How long a critical load pauses the copy. */
  criticalPauseMs: number;
  /** The p99 is taken over the requests of this last window. */
  p99WindowMs: number;
  /** The copy waits while the change stream's apply lag (ms) is above this. */
  maxLagMs: number;
  /** How often Uold's load is sampled. */
  checkIntervalMs: number;
  /** After each chunk, the copy rests this many times the chunk's own time (gh-ost's nice-ratio; 0: no rest). */
  niceRatio: number;
}

export interface TransferOptions {
  /** Uold: a user with only REPLICATION SLAVE, REPLICATION CLIENT and SELECT. */
  source: Endpoint;
  /** Unew: an admin user of the target database. */
  target: Endpoint;
  conversion: ConversionModule;
  chunkSize: number;
  /** Tables whose chunks are read at the same time (each with its own snapshot). */
  parallelTables: number;
  /** Server id of our binlog reader; must differ from every server and reader. */
  serverId: number;
  throttle: ThrottleSettings;
  /** Interceptors whose latency the throttle watches (maxUoldP99Ms, criticalUoldP99Ms). */
  ingress: IngressEndpoint[];
  /** Rows of each table converted and test-written (then rolled back) at preflight. */
  sampleRows: number;
  /** Most change events applied in one Unew transaction while following. */
  maxApplyBatch: number;
  /**
   * The tables this transfer copies itself ('all', the default), or a list
   * (possibly empty: it then only follows, while copy units — createCopyUnit —
   * copy the rest, each its own tables).
   */
  copyTables: 'all' | string[];
  /** Rows of a refreshed table recomputed per statement of the set-based refresh pass. */
  refreshBatch: number;
}

export type TransferInput = Omit<Partial<TransferOptions>, 'throttle'> & Pick<TransferOptions, 'source' | 'target' | 'conversion' | 'serverId'> & { throttle?: Partial<ThrottleSettings> };

/** A copy unit: the copy of some tables, run beside the follower (a Transfer) in its own process or activity. */
export interface CopyUnitOptions {
  source: Endpoint;
  target: Endpoint;
  conversion: ConversionModule;
  /** The old tables this unit copies; no other unit or transfer may copy them. */
  tables: string[];
  chunkSize: number;
  parallelTables: number;
  throttle: ThrottleSettings;
  ingress: IngressEndpoint[];
  /** How long to wait for the follower's state in Unew before TRANSFER_STATE_MISSING. */
  waitForStateMs: number;
}

export type CopyUnitInput = Omit<Partial<CopyUnitOptions>, 'throttle'> & Pick<CopyUnitOptions, 'source' | 'target' | 'conversion' | 'tables'> & { throttle?: Partial<ThrottleSettings> };

export const DEFAULT_THROTTLE: ThrottleSettings = {
  maxThreadsRunning: 50, criticalThreadsRunning: 0, maxUoldP99Ms: 0, criticalUoldP99Ms: 0, maxUoldP99Ratio: 0, uoldP99FloorMs: 10,
  criticalPauseMs: 30_000, p99WindowMs: 3_000, maxLagMs: 5_000, checkIntervalMs: 250, niceRatio: 0,
};

const endpoint = {
  type: 'object', additionalProperties: false, required: ['url', 'database'],
  properties: { url: { type: 'string', pattern: '^mysql://' }, database: { type: 'string', minLength: 1, pattern: '^[A-Za-z0-9_$]+$' } },
};
const ingress = {
  type: 'array',
  items: { type: 'object', additionalProperties: false, required: ['controlUrl', 'token'], properties: { controlUrl: { type: 'string', pattern: '^https?://' }, token: { type: 'string', minLength: 1 }, tls: { type: 'object' } } },
};
const throttleSchema = {
  type: 'object', additionalProperties: false,
  properties: {
    maxThreadsRunning: { type: 'integer', minimum: 1 },
    criticalThreadsRunning: { type: 'integer', minimum: 0 },
    maxUoldP99Ms: { type: 'number', minimum: 0 },
    criticalUoldP99Ms: { type: 'number', minimum: 0 },
    maxUoldP99Ratio: { type: 'number', minimum: 0 },
    uoldP99FloorMs: { type: 'number', minimum: 0 },
    criticalPauseMs: { type: 'integer', minimum: 0, maximum: 3_600_000 },
    p99WindowMs: { type: 'integer', minimum: 100, maximum: 600_000 },
    maxLagMs: { type: 'integer', minimum: 1 },
    checkIntervalMs: { type: 'integer', minimum: 10, maximum: 60_000 },
    niceRatio: { type: 'number', minimum: 0, maximum: 100 },
  },
};
const conversion = { type: 'object', required: ['name', 'tables'], properties: { name: { type: 'string' }, tables: { type: 'array', minItems: 1 } } };
const chunkSize = { type: 'integer', minimum: 1, maximum: 100_000 };
const parallelTables = { type: 'integer', minimum: 1, maximum: 64 };
const schema = {
  type: 'object', additionalProperties: false, required: ['source', 'target', 'conversion', 'serverId'],
  properties: {
    source: endpoint, target: endpoint, conversion, chunkSize, parallelTables, ingress,
    serverId: { type: 'integer', minimum: 1, maximum: 4294967295 },
    throttle: throttleSchema,
    sampleRows: { type: 'integer', minimum: 0, maximum: 10_000 },
    maxApplyBatch: { type: 'integer', minimum: 1, maximum: 100_000 },
    copyTables: { oneOf: [{ const: 'all' }, { type: 'array', items: { type: 'string', minLength: 1 }, uniqueItems: true }] },
    refreshBatch: { type: 'integer', minimum: 1, maximum: 100_000 },
  },
};
const unitSchema = {
  type: 'object', additionalProperties: false, required: ['source', 'target', 'conversion', 'tables'],
  properties: {
    source: endpoint, target: endpoint, conversion, chunkSize, parallelTables, ingress, throttle: throttleSchema,
    tables: { type: 'array', minItems: 1, items: { type: 'string', minLength: 1 }, uniqueItems: true },
    waitForStateMs: { type: 'integer', minimum: 0 },
  },
};

const ajv = new Ajv({ allErrors: true, strict: false });
const check = ajv.compile(schema);
const checkUnit = ajv.compile(unitSchema);
const checkThrottle = ajv.compile(throttleSchema);

function report(errors: typeof check.errors, where: string): never {
  const list = (errors ?? []).map((e) => `${where}${e.instancePath || '/'} ${e.message}${e.keyword === 'additionalProperties' ? ` '${(e.params as { additionalProperty: string }).additionalProperty}'` : ''}`);
  throw imagoError('IMAGO_OPTIONS_INVALID', `transfer options: ${list.join('; ')}`);
}

/** The keys given a value: a key present as `undefined` (an optional field passed along) must not erase its default. */
function given<T extends object>(input: T): Partial<T> {
  return Object.fromEntries(Object.entries(input).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/** Validates once, fills defaults, freezes. Every error is reported together. */
export function validateTransferOptions(input: TransferInput): Readonly<TransferOptions> {
  if (!check(input)) report(check.errors, 'options');
  const o: TransferOptions = {
    chunkSize: 2_000, parallelTables: 2, sampleRows: 20, maxApplyBatch: 2_000, ingress: [], copyTables: 'all', refreshBatch: 2_000,
    ...given(input) as TransferInput,
    throttle: { ...DEFAULT_THROTTLE, ...(input.throttle ?? {}) },
  };
  return Object.freeze(o);
}

export function validateCopyUnitOptions(input: CopyUnitInput): Readonly<CopyUnitOptions> {
  if (!checkUnit(input)) report(checkUnit.errors, 'options');
  const o: CopyUnitOptions = {
    chunkSize: 2_000, parallelTables: 2, ingress: [], waitForStateMs: 120_000,
    ...given(input) as CopyUnitInput,
    throttle: { ...DEFAULT_THROTTLE, ...(input.throttle ?? {}) },
  };
  return Object.freeze(o);
}

/** For setThrottle(partial) while running. */
export function validateThrottlePatch(patch: Partial<ThrottleSettings>): Partial<ThrottleSettings> {
  if (!checkThrottle(patch)) report(checkThrottle.errors, 'throttle');
  return patch;
}
