/**
 * The interceptor's options: one JSON schema, validated once at start-up
 * (unknown keys rejected, every error reported together), defaults filled in,
 * the result frozen.
 */
import Ajv from 'ajv';
import { imagoError } from '../../lib/errors';
import type { Comparer } from '../../compare/types';

export interface UpstreamSpec { name: string; url: string }

export interface IngressLimits {
  /** Largest request head (request line + headers) accepted; larger → 431. */
  maxHeaderBytes: number;
  /** Largest request body accepted; larger → 413. */
  maxBodyBytes: number;
  /** A client must send its whole head within this time; slower → 408. */
  headerTimeoutMs: number;
  /** A client must send its whole request (head and body) within this time; slower → 408. */
  bodyTimeoutMs: number;
  /** Requests that may wait during a hold; more → 503 with Retry-After. */
  holdQueueSize: number;
  /** Hard timeout of a hold when POST /hold gives none. */
  defaultHoldTimeoutMs: number;
  /** Shadow requests that may be outstanding at once; more are dropped and counted. */
  shadowQueueSize: number;
  /** Largest reply body captured for the comparer (primary and shadow); larger pairs are not compared. */
  maxCaptureBytes: number;
  /** Connections kept per upstream. */
  maxSocketsPerUpstream: number;
  /** Served-request records kept for GET /served (a ring). */
  servedLogSize: number;
  /**
   * An idle pooled upstream connection is closed after this long, before the
   * upstream closes it (Node's default keepAliveTimeout is 5 s). A shorter
   * `Keep-Alive: timeout=N` hint from the upstream wins (N·1000 − 1000 ms).
   */
  upstreamIdleTimeoutMs: number;
  /** Request bodies up to this size are kept until the reply begins, so a request that failed on a reused connection can be sent again. */
  retryBodyBytes: number;
}

/** Builds the comparer for POST /mirror's `compare` config (e.g. createCompareEngine). */
export type ComparerFactory = (config: unknown) => Comparer & { report?(): unknown; verdict?(): unknown };

export interface IngressOptions {
  listen: { host: string; port: number };
  upstream: UpstreamSpec;
  control: { host: string; port: number };
  token: string;
  limits: IngressLimits;
  /** Not part of the schema (a function): injected by main.ts or a test. */
  comparerFactory?: ComparerFactory;
}

export type IngressOptionsInput = {
  listen?: { host?: string; port?: number };
  upstream: UpstreamSpec;
  control?: { host?: string; port?: number };
  token: string;
  limits?: Partial<IngressLimits>;
  comparerFactory?: ComparerFactory;
};

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
};

const hostPort = (defHost: string) => ({
  type: 'object',
  additionalProperties: false,
  properties: {
    host: { type: 'string', minLength: 1, default: defHost },
    port: { type: 'integer', minimum: 0, maximum: 65535, default: 0 },
  },
  default: {},
});

const intMin = (min: number) => ({ type: 'integer', minimum: min });

export const UPSTREAM_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  required: ['name', 'url'],
  properties: {
    name: { type: 'string', pattern: '^[a-z][a-z0-9_-]{0,31}$' },
    url: { type: 'string', pattern: '^http://[^/?#]+/?$' },
  },
} as const;

const SCHEMA = {
  type: 'object',
  additionalProperties: false,
  required: ['upstream', 'token'],
  properties: {
    listen: hostPort('127.0.0.1'),
    upstream: UPSTREAM_SCHEMA,
    // Loopback by default: the control API moves live traffic, so it is not
    // exposed unless the operator says so.
    control: hostPort('127.0.0.1'),
    token: { type: 'string', minLength: 16 },
    limits: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        maxHeaderBytes: intMin(1024),
        maxBodyBytes: intMin(0),
        headerTimeoutMs: intMin(100),
        bodyTimeoutMs: intMin(100),
        holdQueueSize: intMin(0),
        defaultHoldTimeoutMs: intMin(1),
        shadowQueueSize: intMin(0),
        maxCaptureBytes: intMin(0),
        maxSocketsPerUpstream: intMin(1),
        servedLogSize: intMin(16),
        upstreamIdleTimeoutMs: { type: 'integer', minimum: 100, maximum: 3_600_000 },
        retryBodyBytes: intMin(0),
      },
    },
  },
};

const ajv = new Ajv({ allErrors: true, useDefaults: true });
const check = ajv.compile(SCHEMA);

/** Validates and completes the options; throws IMAGO_OPTIONS_INVALID listing every error. */
export function validateIngressOptions(input: IngressOptionsInput): Readonly<IngressOptions> {
  const { comparerFactory, ...data } = input;
  const copy = structuredClone(data) as any;
  if (!check(copy)) {
    const list = (check.errors ?? []).map((e) => `${e.instancePath || '(root)'} ${e.message}${e.params && 'additionalProperty' in e.params ? ` '${e.params.additionalProperty}'` : ''}`);
    throw imagoError('IMAGO_OPTIONS_INVALID', `ingress: ${list.join('; ')}`);
  }
  if (comparerFactory !== undefined && typeof comparerFactory !== 'function') {
    throw imagoError('IMAGO_OPTIONS_INVALID', 'ingress: comparerFactory must be a function');
  }
  const limits: IngressLimits = { ...DEFAULT_LIMITS, ...copy.limits };
  if (limits.headerTimeoutMs > limits.bodyTimeoutMs) {
    throw imagoError('IMAGO_OPTIONS_INVALID', `ingress: limits.headerTimeoutMs (${limits.headerTimeoutMs}) must not exceed limits.bodyTimeoutMs (${limits.bodyTimeoutMs})`);
  }
  const valid = copy as Omit<IngressOptions, 'limits' | 'comparerFactory'>;
  const upstream = { name: valid.upstream.name, url: valid.upstream.url.replace(/\/$/, '') };
  return Object.freeze({ ...valid, upstream, limits: Object.freeze(limits), comparerFactory });
}

const checkUpstream = ajv.compile(UPSTREAM_SCHEMA);
/** For POST /upstreams: same rules as the startup upstream. Returns the error text or undefined. */
export function upstreamError(body: unknown): string | undefined {
  if (checkUpstream(body)) return undefined;
  return (checkUpstream.errors ?? []).map((e) => `${e.instancePath || '(body)'} ${e.message}`).join('; ');
}
