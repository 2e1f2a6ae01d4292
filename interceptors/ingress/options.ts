/**
 * The interceptor's options: one schema (TypeBox, so the type comes from it),
 * validated once at start-up by ajv (unknown keys rejected, every error
 * reported together), defaults filled in, the result frozen.
 */
import * as os from 'node:os';
import Ajv from 'ajv';
import { Type, type Static } from 'typebox';
import { imagoError } from '../../lib/errors';
import type { Comparer } from '../../compare/types';

const hostPort = (defHost: string) => Type.Object({
  host: Type.Optional(Type.String({ minLength: 1, default: defHost })),
  /** 0: any free port. */
  port: Type.Optional(Type.Integer({ minimum: 0, maximum: 65535, default: 0 })),
}, { additionalProperties: false });

const intMin = (minimum: number, maximum?: number) => Type.Optional(Type.Integer(maximum === undefined ? { minimum } : { minimum, maximum }));

export const UPSTREAM_NAME = '^[a-z][a-z0-9_-]{0,31}$';

export const UpstreamSpecSchema = Type.Object({
  name: Type.String({ pattern: UPSTREAM_NAME }),
  url: Type.String({ pattern: '^http://[^/?#@]+/?$' }),
}, { additionalProperties: false });
export type UpstreamSpec = Static<typeof UpstreamSpecSchema>;

export const LimitsSchema = Type.Object({
  /** Largest request head: two header buffers of half this size each (a single header line must fit in one); larger → 431. */
  maxHeaderBytes: intMin(1024),
  /** Largest request body accepted; larger → 413. */
  maxBodyBytes: intMin(0),
  /** A client must send its whole head within this time; slower → connection closed, counted in `timeouts`. */
  headerTimeoutMs: intMin(100),
  /** Longest pause between two reads of a request body; slower → connection closed, counted in `timeouts`. */
  bodyTimeoutMs: intMin(100),
  /** Requests that may wait during a hold (all workers together); more → 503 with Retry-After. */
  holdQueueSize: intMin(0),
  /** Hard timeout of a hold when POST /hold gives none. */
  defaultHoldTimeoutMs: intMin(1, 600_000),
  /** Shadow requests that may be outstanding at once; more are dropped and counted. */
  shadowQueueSize: intMin(0),
  /** Largest reply body captured for the comparer (primary and shadow); larger pairs are not compared. */
  maxCaptureBytes: intMin(0),
  /** Idle keep-alive connections kept to the upstreams, per worker. */
  maxSocketsPerUpstream: intMin(1),
  /** Served-request records kept for GET /served (a ring shared by the workers). */
  servedLogSize: intMin(16, 50_000_000),
  /** An idle pooled upstream connection is closed after this long, before the upstream closes it (Node's default keep-alive timeout is 5 s). */
  upstreamIdleTimeoutMs: intMin(100, 3_600_000),
  /** Request bodies up to this size are kept in memory, larger ones in a file of the run directory; either way the whole body is read before it is sent, so it can be sent again. */
  retryBodyBytes: intMin(0),
  /** An idle client keep-alive connection is closed after this long: well above any stall of the host. */
  clientIdleTimeoutMs: intMin(1_000),
  /** After a worker died with requests in flight, `drained` stays false this long: the upstream may still be running them. */
  orphanGraceMs: intMin(0, 600_000),
  /** On stop, the health endpoint answers 503 this long while requests are still served, so load balancers move away first. */
  shutdownDelayMs: intMin(0, 600_000),
}, { additionalProperties: false });
export type IngressLimits = Required<Static<typeof LimitsSchema>>;

export const IngressOptionsSchema = Type.Object({
  /** The data port (nginx). */
  listen: Type.Optional(hostPort('127.0.0.1')),
  upstream: UpstreamSpecSchema,
  // Loopback by default: the control API moves live traffic, so it is not
  // exposed unless the operator says so.
  control: Type.Optional(hostPort('127.0.0.1')),
  /**
   * The control API over HTTPS (PEM files): its certificate and key, and the
   * CA whose client certificates it requires (mTLS) when clientCaFile is set.
   */
  controlTls: Type.Optional(Type.Object({
    certFile: Type.String({ minLength: 1 }),
    keyFile: Type.String({ minLength: 1 }),
    clientCaFile: Type.Optional(Type.String({ minLength: 1 })),
  }, { additionalProperties: false })),
  /**
   * Serve the control API in plain HTTP on an address that is not loopback
   * (refused otherwise): its token would cross the network in clear.
   */
  allowPlainControl: Type.Optional(Type.Boolean()),
  /** The health endpoint for load balancers (served by the data plane); off unless given. */
  health: Type.Optional(hostPort('127.0.0.1')),
  token: Type.String({ minLength: 16 }),
  /** Data-plane worker processes (default: the number of cores, at least 2). */
  workers: Type.Optional(Type.Integer({ minimum: 1, maximum: 64 })),
  /**
   * Addresses POST /upstreams may register (IPs or CIDRs, e.g. 10.0.0.0/8,
   * ::1/128); default: the start upstream's addresses. Link-local and cloud
   * metadata addresses are refused whatever this says.
   */
  upstreamAllowlist: Type.Optional(Type.Array(Type.String({ minLength: 1 }), { maxItems: 256 })),
  /** Where the target, upstreams and commitment are kept across restarts (none: not kept). */
  stateFile: Type.Optional(Type.String({ minLength: 1 })),
  /** The data plane's private directory (nginx config, sockets, temp files); default: a new temporary one. */
  runDir: Type.Optional(Type.String({ minLength: 1 })),
  /** The nginx binary and its dynamic modules (ngx_http_lua_module, ndk_http_module). */
  nginx: Type.Optional(Type.Object({
    binary: Type.Optional(Type.String({ minLength: 1 })),
    modulesDir: Type.Optional(Type.String({ minLength: 1 })),
  }, { additionalProperties: false })),
  limits: Type.Optional(LimitsSchema),
}, { additionalProperties: false });

/** Builds the comparer for POST /mirror's `compare` config (e.g. createCompareEngine). */
export type ComparerFactory = (config: unknown) => Comparer & { report?(): unknown; verdict?(): unknown };

export type IngressOptionsInput = Static<typeof IngressOptionsSchema> & { comparerFactory?: ComparerFactory };

export interface IngressOptions {
  listen: { host: string; port: number };
  upstream: UpstreamSpec;
  control: { host: string; port: number };
  controlTls?: { certFile: string; keyFile: string; clientCaFile?: string };
  allowPlainControl: boolean;
  health?: { host: string; port: number };
  token: string;
  workers: number;
  upstreamAllowlist?: string[];
  stateFile?: string;
  runDir?: string;
  nginx: { binary: string; modulesDir: string };
  limits: IngressLimits;
  /** Not part of the schema (a function): injected by main.ts or a test. */
  comparerFactory?: ComparerFactory;
}

export const DEFAULT_LIMITS: IngressLimits = {
  maxHeaderBytes: 16 * 1024,
  maxBodyBytes: 10 * 1024 * 1024,
  headerTimeoutMs: 10_000,
  bodyTimeoutMs: 30_000,
  holdQueueSize: 10_000,
  defaultHoldTimeoutMs: 5_000,
  shadowQueueSize: 64,
  maxCaptureBytes: 1024 * 1024,
  maxSocketsPerUpstream: 256,
  servedLogSize: 200_000,
  upstreamIdleTimeoutMs: 4_000,
  retryBodyBytes: 64 * 1024,
  clientIdleTimeoutMs: 75_000,
  orphanGraceMs: 5_000,
  shutdownDelayMs: 0,
};

export const DEFAULT_NGINX = { binary: '/usr/sbin/nginx', modulesDir: '/usr/lib/nginx/modules' };

const ajv = new Ajv({ allErrors: true, useDefaults: true });
const check = ajv.compile(IngressOptionsSchema as object);

const errorText = (e: { instancePath: string; message?: string; params?: Record<string, unknown> }): string =>
  `${e.instancePath || '(root)'} ${e.message}${e.params && 'additionalProperty' in e.params ? ` '${e.params.additionalProperty}'` : ''}`;

/** Validates and completes the options; throws IMAGO_OPTIONS_INVALID listing every error. */
export function validateIngressOptions(input: IngressOptionsInput): Readonly<IngressOptions> {
  const { comparerFactory, ...data } = input;
  const copy = structuredClone(data) as Record<string, any>;
  copy.listen ??= {};
  copy.control ??= {};
  if (!check(copy)) throw imagoError('IMAGO_OPTIONS_INVALID', `ingress: ${(check.errors ?? []).map(errorText).join('; ')}`);
  if (comparerFactory !== undefined && typeof comparerFactory !== 'function') {
    throw imagoError('IMAGO_OPTIONS_INVALID', 'ingress: comparerFactory must be a function');
  }
  const limits: IngressLimits = { ...DEFAULT_LIMITS, ...copy.limits };
  if (limits.headerTimeoutMs > limits.bodyTimeoutMs) {
    throw imagoError('IMAGO_OPTIONS_INVALID', `ingress: limits.headerTimeoutMs (${limits.headerTimeoutMs}) must not exceed limits.bodyTimeoutMs (${limits.bodyTimeoutMs})`);
  }
  const valid = copy as Static<typeof IngressOptionsSchema>;
  return Object.freeze({
    listen: valid.listen as IngressOptions['listen'],
    control: valid.control as IngressOptions['control'],
    ...(valid.controlTls ? { controlTls: { ...valid.controlTls } } : {}),
    allowPlainControl: valid.allowPlainControl ?? false,
    health: valid.health as IngressOptions['health'],
    upstream: { name: valid.upstream.name, url: valid.upstream.url.replace(/\/$/, '') },
    token: valid.token,
    workers: valid.workers ?? Math.max(2, os.availableParallelism()),
    upstreamAllowlist: valid.upstreamAllowlist,
    stateFile: valid.stateFile,
    runDir: valid.runDir,
    nginx: { ...DEFAULT_NGINX, ...valid.nginx },
    limits: Object.freeze(limits),
    comparerFactory,
  });
}

const checkUpstream = ajv.compile(UpstreamSpecSchema as object);
/** For POST /upstreams: same rules as the start upstream. Returns the error text or undefined. */
export function upstreamError(body: unknown): string | undefined {
  if (checkUpstream(body)) return undefined;
  return (checkUpstream.errors ?? []).map((e) => `${e.instancePath || '(body)'} ${e.message}`).join('; ');
}
