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

/**
 * A read-back rule: after a mirrored write, GET `get` in both universes and
 * compare what it shows of the write. Templates: `{path.name}` (the write's
 * URL matched against `route`), `{reply.key}` and `{request.key}` (top-level
 * keys of the write's reply and request JSON; the reply's is each universe's
 * own, so ids assigned by sequences are followed on each side).
 */
export const readBackRuleSchema = Section({
  route: Type.String({ pattern: '^(POST|PUT|PATCH|DELETE) /', description: "The write endpoint: method and route pattern, e.g. 'POST /items/:id/bids'." }),
  get: Type.String({ pattern: '^/', description: "The URL to read back, with templates: '/items/{path.id}', '/users/{reply.id}', '/users/{request.toUserId}'." }),
  list: Type.Optional(Type.With(JsonPath, { description: "Compare only the record of this list (e.g. '$.bids') whose `match` key holds the write's id: the write's own effect, not the rest of the resource." })),
  match: Type.Optional(Type.String({ minLength: 1, description: "The key of a list record that holds the write's id (default 'id')." })),
  id: Type.Optional(Type.String({ pattern: '^\\{(reply|request)\\.[A-Za-z_$][\\w$]*\\}$', description: "Where the write's id is in its reply (default '{reply.id}')." })),
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
  }, { description: 'Learning noise: fields that differ between two replies of Uold itself are not regressions.' })),
  lag: Defaulted(Section({
    recheckDelayMs: Int(250, 0, 60_000, 'Wait before re-sending a differing request to both (used without a position hook, and as the poll step with one).'),
    attempts: Int(2, 0, 10, 'Rechecks of one pair before its difference counts as a regression.'),
    maxPending: Int(64, 0, 10_000, 'Rechecks waiting or in flight; beyond it a difference is counted without recheck (and the skip is counted).'),
    positionTimeoutMs: Int(5000, 1, 600_000, "Longest wait for Unew's applied position to pass Uold's."),
  }, { description: 'Rechecks of a difference that may only be Unew lagging behind Uold.' })),
  latency: Defaulted(Section({
    enabled: Default(Type.Boolean({ description: "Judge Unew's latency against Uold's, per endpoint, on the same mirrored requests." }), true),
    minSamples: Int(20, 1, 1_000_000, "Mirrored pairs an endpoint needs before its p50 is judged (its p99 needs 100)."),
    maxP50Ratio: Default(Type.Number({ minimum: 1, maximum: 1000, description: "Highest Unew p50 / Uold p50 of an endpoint that still passes." }), 2),
    maxP99Ratio: Default(Type.Number({ minimum: 1, maximum: 1000, description: "Highest Unew p99 / Uold p99 of an endpoint that still passes." }), 3),
    // 200 ms, not a few: the two sides are measured differently (Uold by nginx, Unew by a Node process whose
    // event loop stalls when its host is busy), and an identity upgrade on a loaded 2-core host showed Unew's
    // p99 at 40 ms against Uold's 13 ms. The faults this rule is for (an exhausted pool, a missing index) cost
    // hundreds of ms to seconds, well above it.
    noiseFloorMs: Int(200, 0, 600_000, "A slower Unew passes while it is within this many ms of Uold (measurement noise: Uold's latency is taken by nginx, Unew's by the interceptor's Node process)."),
  }, { description: "The latency rule: Unew's p50/p99 per endpoint against Uold's on the same mirrored requests." })),
  activeSampling: Defaulted(Section({
    enabled: Default(Type.Boolean({ description: 'Replay recent recorded safe requests of endpoints short of minSamplesPerEndpoint to both universes.' }), true),
    afterMs: Int(5000, 0, 3_600_000, 'Live traffic alone first: active sampling starts this long after the compare engine.'),
    intervalMs: Int(250, 10, 60_000, 'One replayed pair per short endpoint per interval, at most.'),
    recentPerEndpoint: Int(20, 1, 1000, 'Recent safe requests kept per endpoint to replay (the latest ones, in turn).'),
    maxPerEndpoint: Int(50, 0, 100_000, 'Most pairs replayed for one endpoint.'),
    maxTotal: Int(500, 0, 1_000_000, 'Most pairs replayed over the whole compare window.'),
  }, { description: "Active sampling: rare endpoints reach minSamplesPerEndpoint by replaying recent recorded safe requests (reads only) to Uold and Unew." })),
  writes: Defaulted(Section({
    readBack: List(readBackRuleSchema, "How to read back what a mirrored write stored, per write endpoint; without a rule: the reply's Location, else POST /x with a reply id → GET /x/{id}, PUT/PATCH/DELETE → GET of the same URL."),
    idKeys: Default(Type.Array(NonEmpty, { description: "Keys that hold ids assigned by the store (sequences): compared by presence and type in the write's reply, and by mapping (Uold's id ↔ the sandbox's) in the read-back." }), ['id']),
    timeToleranceMs: Int(30_000, 0, 86_400_000, "Two ISO-8601 timestamps within this many ms are equal in write replies and read-backs (each universe stamps 'now' itself)."),
    maxRegressionRate: Rate(0.05, "Highest share of a write endpoint's pairs with a regression (reply status or shape, or the read-back) that still passes."),
  }, { description: 'Shadow writes in the sandbox: how write replies and what they stored are compared (docs/sandbox.md).' })),
  limits: Defaulted(Section({
    queueSize: Int(2000, 1, 1_000_000, 'Pairs waiting to be compared; onPair drops (and counts) beyond it.'),
    maxEndpoints: Int(200, 1, 10_000, 'Endpoints tracked; traffic to more is counted under one overflow endpoint.'),
    maxFieldsPerEndpoint: Int(100, 1, 10_000, 'Differing fields tracked per endpoint.'),
    examplesPerField: Int(2, 0, 100, 'Example diffs kept per field.'),
    maxExamples: Int(200, 0, 100_000, 'All examples kept across the report.'),
    exampleBodyBytes: Int(2048, 0, 1_048_576, 'Bytes of each body kept in an example.'),
    maxBodyBytes: Int(1_048_576, 1, 67_108_864, 'Largest body parsed and diffed; a longer one is compared by hash only.'),
    requestTimeoutMs: Int(5000, 1, 600_000, 'Timeout of a re-sent request (noise or lag recheck).'),
    maxConcurrentRequests: Int(8, 1, 1000, 'Concurrent re-sent requests (noise plus rechecks).'),
  }, { description: "Bounds on the compare engine's memory and extra load." })),
}, { description: 'Compare rules and gate thresholds: see docs/compare-rules.md.' });

export type ValuePatternRule = Static<typeof valuePatternRuleSchema>;
export type ReadBackRule = Static<typeof readBackRuleSchema>;
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
  list((r as { writes?: { readBack?: unknown } }).writes?.readBack).forEach((x, i) => {
    const rule = (x ?? {}) as { list?: unknown; route?: unknown; get?: unknown };
    tryPath(rule.list, `/writes/readBack/${i}/list`);
    if (typeof rule.list === 'string' && !/^\$(\.[A-Za-z_$][\w$]*)+$/.test(rule.list)) errors.push(`/writes/readBack/${i}/list: must be a plain path of keys ('$.bids', '$.user.comments')`);
    if (typeof rule.get === 'string') {
      for (const m of rule.get.matchAll(/\{([^}]*)\}/g)) {
        if (!/^(path|reply|request)\.[A-Za-z_$][\w$]*$/.test(m[1])) errors.push(`/writes/readBack/${i}/get: template {${m[1]}} must be {path.<name>}, {reply.<key>} or {request.<key>}`);
        else if (m[1].startsWith('path.') && typeof rule.route === 'string' && !rule.route.split(' ')[1]?.split('/').includes(`:${m[1].slice(5)}`)) {
          errors.push(`/writes/readBack/${i}/get: {${m[1]}} is not a parameter of the route '${rule.route}'`);
        }
      }
    }
  });
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
