/**
 * The compare rules: the plan's `compare` section, declared once (TypeBox):
 * its JSON Schema and the `CompareRules` type are one declaration. The one
 * validator fills defaults, rejects unknown keys, reports every error with
 * its path, and checks every regular expression and JSON path; the rest of
 * compare/ reads complete, frozen `CompareRules`.
 */
import { imagoError } from '../lib/errors';
import { compileChecker } from '../plan/checker';
import { Default, Defaulted, List, NonEmpty, Section, Type, type Static } from '../plan/schema-kit';
import { compilePath } from './json-path';

const JsonPath = Type.String({ pattern: '^\\$', description: 'A JSON path: `$.a.b`, `$.items[*].updatedAt`, `$..requestId`, `$.meta.*`.' });
const Rate = (def: number, description: string) => Default(Type.Number({ minimum: 0, maximum: 1, description }), def);
const Int = (def: number, minimum: number, maximum: number, description?: string) =>
  Default(Type.Integer({ minimum, maximum, ...(description ? { description } : {}) }), def);

export const valuePatternRuleSchema = Section({
  pattern: Type.String({ minLength: 1, description: 'Regular expression; a string value (or the part of it) that matches is replaced by a placeholder.' }),
  paths: Type.Optional(Type.Array(JsonPath, { description: 'Restrict to these JSON paths (same syntax as ignorePaths); all string values when absent.' })),
});

/** JSON Schema of the plan's `compare` section: the source of the `CompareRules` type. */
export const compareRulesSchema = Section({
  ignoreHeaders: List(NonEmpty, 'Response headers not compared (case-insensitive), in addition to the built-in hop-by-hop list.'),
  ignorePaths: List(JsonPath, 'JSON paths removed before the diff.'),
  ignoreValues: List(valuePatternRuleSchema, 'String values replaced by a placeholder before the diff.'),
  textPatterns: List(NonEmpty, 'Regular expressions removed from text (non-JSON) bodies before the diff.'),
  routes: List(Type.String({ pattern: '^/' }), 'Route patterns for endpoint grouping, e.g. `/items/:id`; unmatched paths get numeric/uuid segments replaced by `:id`.'),
  minSamplesPerEndpoint: Default(Type.Integer({ minimum: 1, description: 'Every endpoint with traffic needs at least this many compared pairs for the verdict to pass.' }), 30),
  maxRegressionRate: Rate(0.01, "Highest share of an endpoint's pairs with a regression that still passes."),
  // Apart from maxRegressionRate because a server error is never noise: default 0.
  maxServerErrorRate: Rate(0, "Highest share of an endpoint's pairs in which Unew failed (5xx or no reply) where Uold answered below 500, that still passes."),
  noiseSamplingRate: Rate(0.1, 'Share of safe mirrored requests re-sent to Uold to learn noise.'),
  noise: Defaulted(Section({
    minSamples: Default(Type.Integer({ minimum: 1, description: 'Uold-vs-Uold samples an endpoint needs before any of its fields can be called noise.' }), 5),
    ratio: Default(Type.Number({ exclusiveMinimum: 0, maximum: 1, description: 'A field is noise when its Uold-vs-Uold rate >= ratio x its Uold-vs-Unew rate.' }), 0.5),
  })),
  lag: Defaulted(Section({
    recheckDelayMs: Int(250, 0, 60_000, 'Wait before re-sending a differing request to both (used without a position hook, and as the poll step with one).'),
    attempts: Int(2, 0, 10, 'Rechecks of one pair before its difference counts as a regression.'),
    maxPending: Int(64, 0, 10_000, 'Rechecks waiting or in flight; beyond it a difference is counted without recheck (and the skip is counted).'),
    positionTimeoutMs: Int(5000, 1, 600_000, "Longest wait for Unew's applied position to pass Uold's."),
  })),
  limits: Defaulted(Section({
    queueSize: Int(2000, 1, 1_000_000, 'Pairs waiting to be compared; onPair drops (and counts) beyond it.'),
    maxEndpoints: Int(200, 1, 10_000),
    maxFieldsPerEndpoint: Int(100, 1, 10_000),
    examplesPerField: Int(2, 0, 100),
    maxExamples: Int(200, 0, 100_000, 'All examples kept across the report.'),
    exampleBodyBytes: Int(2048, 0, 1_048_576, 'Bytes of each body kept in an example.'),
    maxBodyBytes: Int(1_048_576, 1, 67_108_864, 'Largest body parsed and diffed; a longer one is compared by hash only.'),
    requestTimeoutMs: Int(5000, 1, 600_000, 'Timeout of a re-sent request (noise or lag recheck).'),
    maxConcurrentRequests: Int(8, 1, 1000, 'Concurrent re-sent requests (noise plus rechecks).'),
  })),
}, { description: 'Compare rules and gate thresholds: see docs/compare-rules.md.' });

export type ValuePatternRule = Static<typeof valuePatternRuleSchema>;
/** The compare rules with every default filled: what the engine reads. */
export type CompareRules = Static<typeof compareRulesSchema>;

type DeepPartial<T> = { [K in keyof T]?: T[K] extends Array<infer U> ? U[] : T[K] extends object ? DeepPartial<T[K]> : T[K] };
/** The plan's `compare` section as written: every key may be left out (each has a default). */
export type CompareRulesInput = DeepPartial<CompareRules>;

const check = compileChecker(compareRulesSchema, 'compare');

/**
 * What the schema cannot say: every regular expression and JSON path in the
 * rules compiles. Paths are relative to the section ('/ignorePaths/0'). Also
 * run on rules that failed their schema (any shape): it reads only the
 * strings where strings are expected, so their errors come in the same run.
 */
export function compareRulesErrors(rules: unknown): string[] {
  const errors: string[] = [];
  const r = (rules ?? {}) as { ignorePaths?: unknown; ignoreValues?: unknown; textPatterns?: unknown };
  const list = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);
  const tryRegex = (src: unknown, where: string) => {
    if (typeof src !== 'string') return;
    try { new RegExp(src); } catch (e) { errors.push(`${where}: not a valid regular expression (${(e as Error).message})`); }
  };
  const tryPath = (src: unknown, where: string) => {
    if (typeof src !== 'string' || !src.startsWith('$')) return; // the schema reports it
    try { compilePath(src); } catch (e) { errors.push(`${where}: not a valid JSON path (${(e as Error).message})`); }
  };
  list(r.ignorePaths).forEach((p, i) => tryPath(p, `/ignorePaths/${i}`));
  list(r.ignoreValues).forEach((v, i) => {
    const rule = (v ?? {}) as { pattern?: unknown; paths?: unknown };
    tryRegex(rule.pattern, `/ignoreValues/${i}/pattern`);
    list(rule.paths).forEach((p, j) => tryPath(p, `/ignoreValues/${i}/paths/${j}`));
  });
  list(r.textPatterns).forEach((p, i) => tryRegex(p, `/textPatterns/${i}`));
  return errors;
}

/**
 * Validates the plan's `compare` section (a plain object, possibly empty) and
 * returns the complete rules with defaults, frozen. Throws COMPARE_RULES_INVALID
 * listing every error with its path.
 */
export function validateCompareRules(input: unknown): Readonly<CompareRules> {
  const { rules, errors } = checkCompareRules(input);
  if (errors.length || !rules) throw imagoError('COMPARE_RULES_INVALID', errors.join('; '));
  return rules;
}

/** The same check, returning the error list instead of throwing (for callers that add their own errors). */
export function checkCompareRules(input: unknown): { rules?: Readonly<CompareRules>; errors: string[] } {
  const { value, errors, filled } = check(input ?? {});
  const all = [...errors, ...compareRulesErrors(filled).map((m) => `compare${m}`)];
  return value && all.length === 0 ? { rules: value, errors: all } : { errors: all };
}
