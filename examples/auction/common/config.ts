/**
 * Service configuration, read once at start-up from (highest first) command
 * line flags, environment variables and an optional JSON file named by
 * AUCTION_CONFIG_FILE, then validated against one schema: unknown keys are
 * rejected and every error is reported together. The fault lab breaks the
 * service the way operators do, through exactly these knobs (a pool too
 * small, a wrong time zone, a wrong charset, a wrong URL).
 */
import * as fs from 'node:fs';
import { parseArgs } from 'node:util';
import Ajv from 'ajv';
import { auctionError } from '../errors';

export interface ServiceConfig {
  port: number;
  databaseUrl: string;
  poolSize: number;
  /** mysql2 `timezone` for DATETIME values: 'Z', 'local' or '+HH:MM'. */
  timezone: string;
  charset: string;
  maxBodyBytes: number;
  queryTimeoutMs: number;
  shutdownTimeoutMs: number;
  logRequests: boolean;
}

const DEFAULTS: Omit<ServiceConfig, 'databaseUrl'> = {
  port: 8080, poolSize: 10, timezone: 'Z', charset: 'utf8mb4', maxBodyBytes: 16_384,
  queryTimeoutMs: 10_000, shutdownTimeoutMs: 15_000, logRequests: false,
};

const ENV: Record<string, keyof ServiceConfig> = {
  PORT: 'port', DATABASE_URL: 'databaseUrl', AUCTION_POOL_SIZE: 'poolSize', AUCTION_DB_TIMEZONE: 'timezone',
  AUCTION_DB_CHARSET: 'charset', AUCTION_MAX_BODY_BYTES: 'maxBodyBytes', AUCTION_QUERY_TIMEOUT_MS: 'queryTimeoutMs',
  AUCTION_SHUTDOWN_TIMEOUT_MS: 'shutdownTimeoutMs', AUCTION_LOG_REQUESTS: 'logRequests',
};

const schema = {
  type: 'object',
  additionalProperties: false,
  required: ['port', 'databaseUrl'],
  properties: {
    port: { type: 'integer', minimum: 0, maximum: 65535 },
    databaseUrl: { type: 'string', pattern: '^mysql://' },
    poolSize: { type: 'integer', minimum: 1, maximum: 500 },
    timezone: { type: 'string', pattern: '^(Z|local|[+-]\\d\\d:\\d\\d)$' },
    charset: { type: 'string', minLength: 1 },
    maxBodyBytes: { type: 'integer', minimum: 64, maximum: 10_485_760 },
    queryTimeoutMs: { type: 'integer', minimum: 1 },
    shutdownTimeoutMs: { type: 'integer', minimum: 0 },
    logRequests: { type: 'boolean' },
  },
} as const;

const validate = new Ajv({ allErrors: true, coerceTypes: true }).compile(schema);

/** Builds the configuration from flags (--port, --db, --config), env and file; throws AUCTION_CONFIG_INVALID listing every problem. */
export function loadConfig(argv: string[] = process.argv.slice(2), env: NodeJS.ProcessEnv = process.env): Readonly<ServiceConfig> {
  const { values } = parseArgs({ args: argv, options: { port: { type: 'string' }, db: { type: 'string' }, config: { type: 'string' } }, strict: true });
  const file = values.config ?? env.AUCTION_CONFIG_FILE;
  let fromFile: Record<string, unknown> = {};
  if (file) {
    try { fromFile = JSON.parse(fs.readFileSync(file, 'utf8')); } catch (err) {
      throw auctionError('AUCTION_CONFIG_INVALID', `config file ${file}: ${(err as Error).message}`);
    }
  }
  const fromEnv: Record<string, unknown> = {};
  for (const [name, key] of Object.entries(ENV)) if (env[name] !== undefined && env[name] !== '') fromEnv[key] = env[name];
  const fromFlags: Record<string, unknown> = {};
  if (values.port !== undefined) fromFlags.port = values.port;
  if (values.db !== undefined) fromFlags.databaseUrl = values.db;
  const merged: Record<string, unknown> = { ...DEFAULTS, ...fromFile, ...fromEnv, ...fromFlags };
  if (!validate(merged)) {
    const problems = (validate.errors ?? []).map((e) => `${e.instancePath || '/'} ${e.message}${e.params && 'additionalProperty' in e.params ? ` '${e.params.additionalProperty}'` : ''}`);
    throw auctionError('AUCTION_CONFIG_INVALID', problems.join('; '));
  }
  return Object.freeze(merged as unknown as ServiceConfig);
}
