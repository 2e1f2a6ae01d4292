/**
 * The compare rules: the plan's `compare` section, its JSON Schema, and the one
 * validator (ajv, unknown keys rejected, every error reported with its path).
 * Defaults are filled in here, so the rest of compare/ reads a complete,
 * frozen `CompareRules`.
 */
import Ajv from 'ajv';
import { imagoError } from '../lib/errors';
import { compilePath } from './json-path';

export interface ValuePatternRule {
  /** Regular expression; a string value (or the part of it) that matches is replaced by a placeholder. */
  pattern: string;
  /** Restrict to these JSON paths (same syntax as ignorePaths); all string values when absent. */
  paths?: string[];
}

export interface CompareRules {
  /** Response headers not compared (case-insensitive), in addition to the built-in hop-by-hop list. */
  ignoreHeaders: string[];
  /** JSON paths removed before the diff: `$.a.b`, `$.items[*].updatedAt`, `$..requestId`, `$.meta.*`. */
  ignorePaths: string[];
  /** String values replaced by a placeholder before the diff. */
  ignoreValues: ValuePatternRule[];
  /** Regular expressions removed from text (non-JSON) bodies before the diff. */
  textPatterns: string[];
  /** Route patterns for endpoint grouping, e.g. `/items/:id`; unmatched paths get numeric/uuid segments replaced by `:id`. */
  routes: string[];
  /** Every endpoint with traffic needs at least this many compared pairs for the verdict to pass. */
  minSamplesPerEndpoint: number;
  /** Highest share of an endpoint's pairs with a regression that still passes (0..1). */
  maxRegressionRate: number;
  /**
   * Highest share of an endpoint's pairs in which Unew failed (5xx or no reply)
   * where Uold answered below 500, that still passes (0..1). Apart from
   * maxRegressionRate because a server error is never noise: default 0.
   */
  maxServerErrorRate: number;
  /** Share of safe mirrored requests re-sent to Uold to learn noise (0..1). */
  noiseSamplingRate: number;
  noise: {
    /** Uold-vs-Uold samples an endpoint needs before any of its fields can be called noise. */
    minSamples: number;
    /** A field is noise when its Uold-vs-Uold rate >= ratio x its Uold-vs-Unew rate. */
    ratio: number;
  };
  lag: {
    /** Wait before re-sending a differing request to both (used without a position hook, and as the poll step with one). */
    recheckDelayMs: number;
    /** Rechecks of one pair before its difference counts as a regression. */
    attempts: number;
    /** Rechecks waiting or in flight; beyond it a difference is counted without recheck (and the skip is counted). */
    maxPending: number;
    /** Longest wait for Unew's applied position to pass Uold's. */
    positionTimeoutMs: number;
  };
  limits: {
    /** Pairs waiting to be compared; onPair drops (and counts) beyond it. */
    queueSize: number;
    maxEndpoints: number;
    maxFieldsPerEndpoint: number;
    examplesPerField: number;
    /** All examples kept across the report. */
    maxExamples: number;
    /** Bytes of each body kept in an example. */
    exampleBodyBytes: number;
    /** Largest body parsed and diffed; a longer one is compared by hash only. */
    maxBodyBytes: number;
    /** Timeout of a re-sent request (noise or lag recheck). */
    requestTimeoutMs: number;
    /** Concurrent re-sent requests (noise plus rechecks). */
    maxConcurrentRequests: number;
  };
}

const stringList = { type: 'array', items: { type: 'string', minLength: 1 }, default: [] } as const;

/** JSON Schema of the plan's `compare` section. */
export const compareRulesSchema = {
  $id: 'imago:compare-rules',
  type: 'object',
  additionalProperties: false,
  properties: {
    ignoreHeaders: stringList,
    ignorePaths: { ...stringList, items: { type: 'string', pattern: '^\\$' } },
    ignoreValues: {
      type: 'array', default: [],
      items: {
        type: 'object', additionalProperties: false, required: ['pattern'],
        properties: { pattern: { type: 'string', minLength: 1 }, paths: { type: 'array', items: { type: 'string', pattern: '^\\$' } } },
      },
    },
    textPatterns: stringList,
    routes: { ...stringList, items: { type: 'string', pattern: '^/' } },
    minSamplesPerEndpoint: { type: 'integer', minimum: 1, default: 30 },
    maxRegressionRate: { type: 'number', minimum: 0, maximum: 1, default: 0.01 },
    maxServerErrorRate: { type: 'number', minimum: 0, maximum: 1, default: 0 },
    noiseSamplingRate: { type: 'number', minimum: 0, maximum: 1, default: 0.1 },
    noise: {
      type: 'object', additionalProperties: false, default: {},
      properties: {
        minSamples: { type: 'integer', minimum: 1, default: 5 },
        ratio: { type: 'number', exclusiveMinimum: 0, maximum: 1, default: 0.5 },
      },
    },
    lag: {
      type: 'object', additionalProperties: false, default: {},
      properties: {
        recheckDelayMs: { type: 'integer', minimum: 0, maximum: 60000, default: 250 },
        attempts: { type: 'integer', minimum: 0, maximum: 10, default: 2 },
        maxPending: { type: 'integer', minimum: 0, maximum: 10000, default: 64 },
        positionTimeoutMs: { type: 'integer', minimum: 1, maximum: 600000, default: 5000 },
      },
    },
    limits: {
      type: 'object', additionalProperties: false, default: {},
      properties: {
        queueSize: { type: 'integer', minimum: 1, maximum: 1000000, default: 2000 },
        maxEndpoints: { type: 'integer', minimum: 1, maximum: 10000, default: 200 },
        maxFieldsPerEndpoint: { type: 'integer', minimum: 1, maximum: 10000, default: 100 },
        examplesPerField: { type: 'integer', minimum: 0, maximum: 100, default: 2 },
        maxExamples: { type: 'integer', minimum: 0, maximum: 100000, default: 200 },
        exampleBodyBytes: { type: 'integer', minimum: 0, maximum: 1048576, default: 2048 },
        maxBodyBytes: { type: 'integer', minimum: 1, maximum: 67108864, default: 1048576 },
        requestTimeoutMs: { type: 'integer', minimum: 1, maximum: 600000, default: 5000 },
        maxConcurrentRequests: { type: 'integer', minimum: 1, maximum: 1000, default: 8 },
      },
    },
  },
} as const;

const ajv = new Ajv({ allErrors: true, useDefaults: true, strict: true });
const check = ajv.compile(compareRulesSchema);

/** Every regular expression in the rules, with its path, compiled once here so a bad one is a validation error. */
function regexErrors(rules: CompareRules): string[] {
  const errors: string[] = [];
  const tryRegex = (src: string, where: string) => {
    try { new RegExp(src); } catch (e) { errors.push(`${where}: not a valid regular expression (${(e as Error).message})`); }
  };
  const tryPath = (src: string, where: string) => {
    try { compilePath(src); } catch (e) { errors.push(`${where}: not a valid JSON path (${(e as Error).message})`); }
  };
  rules.ignorePaths.forEach((p, i) => tryPath(p, `/ignorePaths/${i}`));
  rules.ignoreValues.forEach((r, i) => {
    tryRegex(r.pattern, `/ignoreValues/${i}/pattern`);
    r.paths?.forEach((p, j) => tryPath(p, `/ignoreValues/${i}/paths/${j}`));
  });
  rules.textPatterns.forEach((p, i) => tryRegex(p, `/textPatterns/${i}`));
  return errors;
}

/**
 * Validates the plan's `compare` section (a plain object, possibly empty) and
 * returns the complete rules with defaults, frozen. Throws COMPARE_RULES_INVALID
 * listing every error with its path.
 */
export function validateCompareRules(input: unknown, where = 'compare'): Readonly<CompareRules> {
  const { rules, errors } = checkCompareRules(input, where);
  if (errors.length) throw imagoError('COMPARE_RULES_INVALID', errors.join('; '));
  return rules as Readonly<CompareRules>;
}

/** The same check, returning the error list instead of throwing (for callers that add their own errors). */
export function checkCompareRules(input: unknown, where = 'compare'): { rules?: Readonly<CompareRules>; errors: string[] } {
  const copy = structuredClone(input ?? {}) as unknown;
  const errors: string[] = [];
  if (!check(copy)) {
    for (const e of check.errors ?? []) {
      const extra = e.keyword === 'additionalProperties' ? ` '${(e.params as { additionalProperty: string }).additionalProperty}'` : '';
      errors.push(`${where}${e.instancePath || ''}: ${e.message}${extra}`);
    }
  } else {
    errors.push(...regexErrors(copy as CompareRules).map((m) => `${where}${m}`));
  }
  return errors.length ? { errors } : { rules: deepFreeze(copy as CompareRules), errors };
}

type DeepPartial<T> = { [K in keyof T]?: T[K] extends Array<infer U> ? U[] : T[K] extends object ? DeepPartial<T[K]> : T[K] };
/** The plan's `compare` section as written: every key optional, defaults filled in by the validator. */
export type CompareRulesInput = DeepPartial<CompareRules>;

function deepFreeze<T>(o: T): T {
  if (o && typeof o === 'object') {
    for (const v of Object.values(o)) deepFreeze(v);
    Object.freeze(o);
  }
  return o;
}
