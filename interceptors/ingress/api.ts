/**
 * The control API's shapes, declared once (TypeBox: each schema is the JSON
 * Schema the server validates with and, through Static, the type both the
 * server and IngressControlClient use).
 */
import { Type, type Static } from 'typebox';
import { UPSTREAM_NAME } from './options';

const Obj = <T extends Parameters<typeof Type.Object>[0]>(props: T) => Type.Object(props, { additionalProperties: false });

// ---- requests

export const HoldRequest = Obj({ timeoutMs: Type.Optional(Type.Integer({ minimum: 1, maximum: 600_000, description: 'must be an integer in 1..600000' })) });
export type HoldRequest = Static<typeof HoldRequest>;

export const SwitchRequest = Obj({ target: Type.String({ pattern: UPSTREAM_NAME, description: 'must be an upstream name' }) });
export type SwitchRequest = Static<typeof SwitchRequest>;

export const EmptyRequest = Obj({});

export const UpstreamRequest = Obj({
  name: Type.String({ pattern: UPSTREAM_NAME, description: `must match ${UPSTREAM_NAME}` }),
  url: Type.String({ pattern: '^http://[^/?#@]+/?$', description: 'must be http://host:port' }),
});
export type UpstreamRequest = Static<typeof UpstreamRequest>;

export const MirrorRequest = Obj({
  on: Type.Boolean({ description: 'must be true or false' }),
  shadow: Type.Optional(Type.String({ pattern: UPSTREAM_NAME, description: 'must be an upstream name' })),
  percent: Type.Optional(Type.Number({ minimum: 0, maximum: 100, description: 'must be a number in 0..100' })),
  methods: Type.Optional(Type.Array(Type.String({ pattern: '^[A-Za-z]+$', description: 'must be an HTTP method name' }), { maxItems: 16, description: 'must be a list of HTTP method names' })),
  /** The sandbox writes are copied to (never the shadow or the target); null stops mirroring writes. */
  writeShadow: Type.Optional(Type.Union([Type.String({ pattern: UPSTREAM_NAME }), Type.Null()], { description: 'must be an upstream name or null' })),
  writePercent: Type.Optional(Type.Number({ minimum: 0, maximum: 100, description: 'must be a number in 0..100' })),
  writeMethods: Type.Optional(Type.Array(Type.String({ pattern: '^[A-Za-z]+$', description: 'must be an HTTP method name' }), { maxItems: 16, description: 'must be a list of HTTP method names' })),
  compare: Type.Optional(Type.Unknown()),
});
export type MirrorRequest = Static<typeof MirrorRequest>;

// ---- replies

export const ServedRecord = Type.Object({
  seq: Type.Integer(),
  upstream: Type.String(),
  /** Sent upstream, ms since the epoch (µs precision). */
  start: Type.Number(),
  /** Reply finished or cut. */
  end: Type.Number(),
  /** What the client got; 499 = client went away, 502/504 = upstream failed. */
  status: Type.Integer(),
});
export type ServedRecord = Static<typeof ServedRecord>;

export const ServedReply = Type.Object({ records: Type.Array(ServedRecord), next: Type.Integer(), lost: Type.Integer() });
export type ServedReply = Static<typeof ServedReply>;

export const HoldInfo = Type.Object({ startedAt: Type.Number(), deadline: Type.Number(), origin: Type.String(), committed: Type.Boolean() });

export const MirrorStatus = Type.Object({
  on: Type.Boolean(), shadow: Type.Union([Type.String(), Type.Null()]), percent: Type.Number(), methods: Type.Array(Type.String()),
  outstanding: Type.Integer(), pairs: Type.Integer(), comparer: Type.Boolean(),
  /** Where writes are mirrored (a sandbox), or null; and writes copied there so far. */
  writeShadow: Type.Optional(Type.Union([Type.String(), Type.Null()])), writePercent: Type.Optional(Type.Number()), writeMethods: Type.Optional(Type.Array(Type.String())),
  writes: Type.Optional(Type.Integer()),
});
export type MirrorStatus = Static<typeof MirrorStatus>;

export const TransitionNote = Type.Object({ at: Type.Number(), what: Type.String(), detail: Type.String() });

export const LatencySummary = Type.Object({ boundsMs: Type.Array(Type.Number()), counts: Type.Array(Type.Integer()), count: Type.Integer(), meanMs: Type.Number() });

export const DataPlaneInfo = Type.Object({
  kind: Type.Literal('nginx'),
  workers: Type.Array(Type.Object({ id: Type.Integer(), pid: Type.Integer(), inFlight: Type.Integer(), held: Type.Integer() })),
  /** Times the supervisor restarted the whole data plane (its master died). */
  restarts: Type.Integer(),
  /** Requests of a worker that died, still possibly running at the upstream: drained waits for them. */
  orphaned: Type.Integer(),
});

export const IngressStatus = Type.Object({
  state: Type.Union([Type.Literal('forward'), Type.Literal('mirror'), Type.Literal('held')]),
  target: Type.String(),
  upstreams: Type.Record(Type.String(), Type.String()),
  inFlight: Type.Integer(),
  held: Type.Integer(),
  hold: Type.Union([HoldInfo, Type.Null()]),
  mirror: MirrorStatus,
  counters: Type.Record(Type.String(), Type.Number()),
  latency: LatencySummary,
  transitions: Type.Array(TransitionNote),
  dataPlane: DataPlaneInfo,
});
export type IngressStatus = Static<typeof IngressStatus>;

export const HoldReply = Type.Object({ changed: Type.Boolean(), state: Type.Literal('held'), target: Type.String(), deadline: Type.Number(), inFlight: Type.Integer() });
export type HoldReply = Static<typeof HoldReply>;

export const DrainedReply = Type.Object({ drained: Type.Boolean(), held: Type.Boolean(), inFlight: Type.Integer(), heldCount: Type.Integer(), target: Type.String() });
export type DrainedReply = Static<typeof DrainedReply>;

export const TargetReply = Type.Object({ changed: Type.Boolean(), target: Type.String() });
export type TargetReply = Static<typeof TargetReply>;

export const ReleaseReply = Type.Object({ changed: Type.Boolean(), released: Type.Integer(), target: Type.String() });
export type ReleaseReply = Static<typeof ReleaseReply>;

export const UpstreamsReply = Type.Object({ changed: Type.Boolean(), upstreams: Type.Record(Type.String(), Type.String()) });
export type UpstreamsReply = Static<typeof UpstreamsReply>;

export const MirrorReply = Type.Object({ changed: Type.Boolean(), mirror: MirrorStatus });
export type MirrorReply = Static<typeof MirrorReply>;

export const CompareReply = Type.Object({ comparer: Type.Boolean(), pairs: Type.Integer(), report: Type.Unknown(), verdict: Type.Unknown() });
export type CompareReply = Static<typeof CompareReply>;

/** GET /recorded: the comparer's latest live requests (RecordedRequest of compare/types.ts), reads and writes apart; empty without a comparer that records. */
export const RecordedReply = Type.Object({ reads: Type.Array(Type.Unknown()), writes: Type.Array(Type.Unknown()) });
export type RecordedReply = Static<typeof RecordedReply>;

export const TimelineReply = Type.Object({
  bucketMs: Type.Integer(),
  buckets: Type.Array(Type.Object({ t: Type.Number(), count: Type.Integer(), meanMs: Type.Number(), maxMs: Type.Number(), errors: Type.Integer() })),
});
export type TimelineReply = Static<typeof TimelineReply>;

export const ErrorReply = Type.Object({ error: Type.String(), message: Type.String() });
export type ErrorReply = Static<typeof ErrorReply>;
