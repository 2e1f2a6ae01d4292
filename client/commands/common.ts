/**
 * What every command shares: its spec (options, positionals, help), the
 * global options (connection, --json, --help), and a connected ImagoClient
 * that is closed when the command ends.
 */
import type { ParseArgsConfig } from 'node:util';
import { imagoError } from '../../lib/errors';
import { ImagoClient } from '../api';
import { resolveSettings, type ConnectionFlags, type ConnectionSettings } from '../connection';
import type { Io } from '../output';

export type OptionSpec = NonNullable<ParseArgsConfig['options']>;
export type Values = Record<string, string | boolean | undefined>;

export interface Context {
  io: Io;
  values: Values;
  /** Positionals by the names in the spec. */
  args: Record<string, string>;
  /** Everything after the command words, untouched (for pass-through commands). */
  rest: string[];
  json: boolean;
}

export interface CommandSpec {
  name: string;
  summary: string;
  /** Positional names; a trailing '?' makes one optional. */
  positionals?: string[];
  options?: OptionSpec;
  /** Extra help text after the options. */
  details?: string;
  /** Needs the Temporal connection options in its help. */
  connects?: boolean;
  /** Takes its arguments raw (the command parses them itself). */
  passThrough?: boolean;
  run(ctx: Context): Promise<number>;
}

export const CONNECTION_OPTIONS: OptionSpec = {
  address: { type: 'string' },
  namespace: { type: 'string' },
  tls: { type: 'boolean' },
  'tls-cert': { type: 'string' },
  'tls-key': { type: 'string' },
  'tls-ca': { type: 'string' },
  'tls-server-name': { type: 'string' },
  'api-key': { type: 'string' },
  'ui-url': { type: 'string' },
  config: { type: 'string' },
};

export const CONNECTION_HELP = `Connection (flag > environment > config file > default):
  --address HOST:PORT      TEMPORAL_ADDRESS            (default 127.0.0.1:7233)
  --namespace NS           TEMPORAL_NAMESPACE          (default "default")
  --tls                    TEMPORAL_TLS                (on when a cert, CA or API key is given)
  --tls-cert FILE          TEMPORAL_TLS_CERT
  --tls-key FILE           TEMPORAL_TLS_KEY
  --tls-ca FILE            TEMPORAL_TLS_CA
  --tls-server-name NAME   TEMPORAL_TLS_SERVER_NAME
  --api-key KEY            TEMPORAL_API_KEY
  --ui-url URL             IMAGO_UI_URL                (default: recorded by 'imago server setup', else host:port+1000)
  --config FILE            config file                 (default ~/.config/imago/config.json)`;

export function connectionFlags(v: Values): ConnectionFlags {
  const s = (k: string) => v[k] as string | undefined;
  return {
    address: s('address'), namespace: s('namespace'), tls: v.tls as boolean | undefined,
    tlsCert: s('tls-cert'), tlsKey: s('tls-key'), tlsCa: s('tls-ca'), tlsServerName: s('tls-server-name'),
    apiKey: s('api-key'), uiUrl: s('ui-url'), config: s('config'),
  };
}

export function settingsOf(ctx: Context): ConnectionSettings { return resolveSettings(connectionFlags(ctx.values), ctx.io.env); }

/** Runs fn with a connected client, closing the connection afterwards. */
export async function withClient<T>(ctx: Context, fn: (c: ImagoClient) => Promise<T>): Promise<T> {
  const client = await ImagoClient.connect(connectionFlags(ctx.values), ctx.io.env);
  try { return await fn(client); } finally { await client.close(); }
}

export function requiredString(ctx: Context, name: string, what: string): string {
  const v = ctx.values[name];
  if (typeof v !== 'string' || !v.trim()) throw imagoError('CLIENT_USAGE', `--${name} is required: ${what}`);
  return v;
}

/** A number from 0 to 100 (a rest ratio), or undefined when the flag is absent. */
export function ratio(ctx: Context, name: string): number | undefined {
  const v = ctx.values[name];
  if (v === undefined) return undefined;
  const n = Number(v);
  if (v === '' || !Number.isFinite(n) || n < 0 || n > 100) throw imagoError('CLIENT_USAGE', `--${name} ${String(v)}: expected a number from 0 to 100`);
  return n;
}

export function positiveInt(ctx: Context, name: string): number | undefined {
  const v = ctx.values[name];
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw imagoError('CLIENT_USAGE', `--${name} ${String(v)}: expected a positive integer`);
  return n;
}
