/**
 * The compare engine's report and verdict, declared once (TypeBox): the JSON
 * Schema and the TypeScript types below are one declaration. The report
 * crosses process boundaries (interceptor → control API → activity →
 * workflow status → client), so a reader can check it against
 * `compareReportSchema` instead of re-parsing it by hand.
 */
import { Section, Type, type Static } from '../plan/schema-kit';

const Count = Type.Integer({ minimum: 0 });
const Rate = Type.Number({ minimum: 0, maximum: 1 });

export const diffKindSchema = Type.Enum(['value', 'missing', 'extra', 'type', 'order', 'length']);
export type DiffKind = Static<typeof diffKindSchema>;

export const differenceSchema = Section({
  /** `status`, `error`, `header:<name>`, `body`, `text`, or a JSON path like `$.items[*].price`. */
  field: Type.String(),
  kind: diffKindSchema,
  /** Uold's (left) and Unew's (right) values, shortened for display. */
  left: Type.Optional(Type.String()),
  right: Type.Optional(Type.String()),
});
export type Difference = Static<typeof differenceSchema>;

export const replyExampleSchema = Section({
  status: Type.Integer(),
  contentType: Type.Optional(Type.String()),
  body: Type.String(),
  error: Type.Optional(Type.String()),
});
export type ReplyExample = Static<typeof replyExampleSchema>;

export const exampleSchema = Section({
  /** Wall-clock ms when the primary request started. */
  at: Type.Number(),
  request: Section({ method: Type.String(), url: Type.String() }),
  uold: replyExampleSchema,
  unew: replyExampleSchema,
  diff: Type.Array(differenceSchema),
  /** How the difference was judged: observed once, confirmed by rechecks, or explained by lag. */
  judged: Type.Enum(['observed', 'confirmed', 'lag-explained']),
});
export type Example = Static<typeof exampleSchema>;

/** Differences of a field by kind; a kind that never occurred is absent. */
export const kindCountsSchema = Section({
  value: Type.Optional(Count), missing: Type.Optional(Count), extra: Type.Optional(Count),
  type: Type.Optional(Count), order: Type.Optional(Count), length: Type.Optional(Count),
});

export const fieldReportSchema = Section({
  field: Type.String(),
  /** regression: counts against the endpoint; noise: differs Uold-vs-Uold as often; lag-explained: agreed on recheck. */
  classification: Type.Enum(['regression', 'noise', 'lag-explained']),
  differences: Count,
  differenceRate: Rate,
  /** differenceRate when the field is a regression, else 0. */
  regressionRate: Rate,
  noiseDifferences: Count,
  noiseRate: Rate,
  lagExplained: Count,
  kinds: kindCountsSchema,
  examples: Type.Array(exampleSchema),
});
export type FieldReport = Static<typeof fieldReportSchema>;

export const endpointReportSchema = Section({
  endpoint: Type.String(),
  samples: Count,
  /** Pairs with at least one difference that is not noise. */
  regressions: Count,
  regressionRate: Rate,
  noiseSamples: Count,
  lagExplained: Count,
  rechecks: Count,
  recheckSkipped: Count,
  /** Pairs where Unew failed (5xx or no reply) and Uold answered below 500. */
  serverErrors: Count,
  /** The first of them. */
  serverErrorExample: Type.Optional(exampleSchema),
  fields: Type.Array(fieldReportSchema),
  /** 'write': mirrored into the sandbox, judged by reply status and shape and by read-back (absent in reports of older engines: 'read'). */
  kind: Type.Optional(Type.Enum(['read', 'write'])),
  /** Pairs active sampling replayed to both universes (counted in samples), and some of their URLs. */
  replayed: Type.Optional(Count),
  replayedUrls: Type.Optional(Type.Array(Type.String())),
  /** Write endpoints: pairs whose effect was read back in both universes, and those with nothing to read back. */
  readBacks: Type.Optional(Count),
  readBackSkipped: Type.Optional(Count),
  /** Live reads: Uold's and Unew's p50/p99 (ms) over the same mirrored pairs. */
  latency: Type.Optional(Section({
    samples: Count, uoldP50: Type.Number(), uoldP99: Type.Number(), unewP50: Type.Number(), unewP99: Type.Number(),
  })),
});
export type EndpointReport = Static<typeof endpointReportSchema>;

const counterProperties = {
  received: Count,
  compared: Count,
  /** Pairs dropped because the queue was full (onPair never blocks). */
  dropped: Count,
  /** Pairs that could not be judged: Uold's own reply failed. */
  skipped: Count,
  /** Pairs queued or waiting for a lag recheck. */
  pending: Count,
  noiseSamples: Count,
  noiseSkipped: Count,
};
export const engineCountersSchema = Section(counterProperties);
export type EngineCounters = Static<typeof engineCountersSchema>;

export const compareReportSchema = Section({
  ...counterProperties,
  minSamplesPerEndpoint: Type.Integer({ minimum: 1 }),
  noiseMinSamples: Type.Integer({ minimum: 1 }),
  maxRegressionRate: Rate,
  maxServerErrorRate: Rate,
  endpoints: Type.Array(endpointReportSchema),
  /** The rules the verdict reads beyond the thresholds above (absent in reports of older engines). */
  latencyRule: Type.Optional(Section({
    enabled: Type.Boolean(), minSamples: Type.Integer({ minimum: 1 }), maxP50Ratio: Type.Number(), maxP99Ratio: Type.Number(), noiseFloorMs: Type.Number(),
  })),
  writesMaxRegressionRate: Type.Optional(Rate),
  /** Pairs replayed by active sampling, over every endpoint; skipped: replays where one universe did not answer. */
  activeSampling: Type.Optional(Section({ replayed: Count, skipped: Count })),
});
/** The compare engine's whole report: what `status.compare` holds. */
export type CompareReport = Static<typeof compareReportSchema>;

/**
 * Which rule of the verdict failed: 'no-traffic' and 'min-samples' only say
 * "not enough evidence yet"; 'latency' is judged once an endpoint has its
 * latency samples (compare.latency); the rest are failures of Unew.
 */
export const verdictRuleSchema = Type.Enum(['no-traffic', 'min-samples', 'regression', 'server-error', 'latency']);
export type VerdictRule = Static<typeof verdictRuleSchema>;

export const compareVerdictSchema = Section({
  pass: Type.Boolean(),
  /** Why it does not pass, one line per endpoint and rule; empty when it passes. */
  reasons: Type.Array(Type.String()),
  /** The same failures as `reasons`, with the rule each broke (for code: the workflow stops testing early on a real failure). */
  failures: Type.Array(Section({ rule: verdictRuleSchema, endpoint: Type.Union([Type.String(), Type.Null()]), reason: Type.String() })),
  endpoints: Type.Array(Section({ endpoint: Type.String(), samples: Count, regressionRate: Rate, pass: Type.Boolean() })),
  compared: Count,
  dropped: Count,
  pending: Count,
});
export type CompareVerdict = Static<typeof compareVerdictSchema>;
