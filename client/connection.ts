/**
 * Where the client finds Temporal and the web UI. Each setting comes from the
 * first source that has it: command-line flag > environment (the variables
 * the Temporal CLI reads) > config file (~/.config/imago/config.json or
 * --config) > default. Resolved once, validated once, frozen.
 *
 * The web UI's URL has two more sources after the config file: the URL
 * recorded on the namespace by `imago server setup --ui-url` (looked up when
 * the client connects, see ImagoClient), else the dev server's convention,
 * the UI on the frontend's port + 1000 (`temporal server start-dev`).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Client, Connection, type ConnectionOptions } from '@temporalio/client';
import { imagoError } from '../lib/errors';

/** 'server': recorded on the namespace; 'derived': the dev server's port + 1000 (uiUrl only). */
export type SettingSource = 'flag' | 'env' | 'file' | 'server' | 'derived' | 'default';

/** Flags as the CLI spells them (camelCased); the same keys are accepted in the config file. */
export interface ConnectionFlags {
  address?: string;
  namespace?: string;
  tls?: boolean;
  tlsCert?: string;
  tlsKey?: string;
  tlsCa?: string;
  tlsServerName?: string;
  apiKey?: string;
  uiUrl?: string;
  config?: string;
}

export interface ConnectionSettings {
  address: string;
  namespace: string;
  /** null: plain-text gRPC (the dev server). */
  tls: { certPath?: string; keyPath?: string; caPath?: string; serverName?: string } | null;
  apiKey?: string;
  uiUrl: string;
  /** Where each setting came from, for `imago status --json` and error messages. */
  sources: Record<string, SettingSource>;
  configFile?: string;
}

export const DEFAULT_ADDRESS = '127.0.0.1:7233';
export const DEFAULT_NAMESPACE = 'default';

/** The dev server's web UI: `temporal server start-dev` serves it on the frontend's port + 1000 unless told otherwise. */
export function devServerUiUrl(address: string): string {
  const m = /^(.*):(\d+)$/.exec(address);
  if (!m) return 'http://127.0.0.1:8233';
  const port = Number(m[2]) + 1000;
  return `http://${m[1]}:${port <= 65535 ? port : 8233}`;
}

/** Environment variable per setting (Temporal CLI names; IMAGO_UI_URL is ours). */
const ENV_NAMES: Record<Exclude<keyof ConnectionFlags, 'config'>, string> = {
  address: 'TEMPORAL_ADDRESS',
  namespace: 'TEMPORAL_NAMESPACE',
  tls: 'TEMPORAL_TLS',
  tlsCert: 'TEMPORAL_TLS_CERT',
  tlsKey: 'TEMPORAL_TLS_KEY',
  tlsCa: 'TEMPORAL_TLS_CA',
  tlsServerName: 'TEMPORAL_TLS_SERVER_NAME',
  apiKey: 'TEMPORAL_API_KEY',
  uiUrl: 'IMAGO_UI_URL',
};
const KEYS = Object.keys(ENV_NAMES) as Array<keyof typeof ENV_NAMES>;

export function defaultConfigFile(env: NodeJS.ProcessEnv = process.env): string {
  const base = env.XDG_CONFIG_HOME || path.join(env.HOME || os.homedir(), '.config');
  return path.join(base, 'imago', 'config.json');
}

function readConfigFile(file: string, explicit: boolean): Record<string, unknown> {
  if (!fs.existsSync(file)) {
    if (explicit) throw imagoError('CLIENT_CONFIG_INVALID', `--config ${file}: file not found`);
    return {};
  }
  let parsed: unknown;
  try { parsed = JSON.parse(fs.readFileSync(file, 'utf8')); } catch (err) {
    throw imagoError('CLIENT_CONFIG_INVALID', `${file}: not valid JSON: ${(err as Error).message}`);
  }
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) throw imagoError('CLIENT_CONFIG_INVALID', `${file}: must hold a JSON object`);
  return parsed as Record<string, unknown>;
}

function parseBool(value: string, where: string): boolean {
  if (/^(1|true|yes)$/i.test(value)) return true;
  if (/^(0|false|no)?$/i.test(value)) return false;
  throw imagoError('CLIENT_CONFIG_INVALID', `${where}=${value}: expected true or false`);
}

/** Resolves every setting, reporting all problems together. */
export function resolveSettings(flags: ConnectionFlags = {}, env: NodeJS.ProcessEnv = process.env): ConnectionSettings {
  const configFile = flags.config ?? defaultConfigFile(env);
  const file = readConfigFile(configFile, flags.config !== undefined);
  const errors: string[] = [];
  for (const key of Object.keys(file)) {
    if (!(KEYS as string[]).includes(key)) errors.push(`${configFile}: unknown key '${key}' (known: ${KEYS.join(', ')})`);
    else if (key === 'tls' ? typeof file[key] !== 'boolean' : typeof file[key] !== 'string') {
      errors.push(`${configFile}: '${key}' must be a ${key === 'tls' ? 'boolean' : 'string'}`);
    }
  }
  const sources: Record<string, SettingSource> = {};
  const pick = <K extends keyof typeof ENV_NAMES>(key: K): ConnectionFlags[K] | undefined => {
    if (flags[key] !== undefined) { sources[key] = 'flag'; return flags[key]; }
    const fromEnv = env[ENV_NAMES[key]];
    if (fromEnv !== undefined && fromEnv !== '') {
      sources[key] = 'env';
      return (key === 'tls' ? parseBool(fromEnv, ENV_NAMES[key]) : fromEnv) as ConnectionFlags[K];
    }
    if (file[key] !== undefined) { sources[key] = 'file'; return file[key] as ConnectionFlags[K]; }
    return undefined;
  };
  const v = Object.fromEntries(KEYS.map((k) => [k, pick(k)])) as Omit<ConnectionFlags, 'config'>;
  const def = <T>(key: string, value: T | undefined, fallback: T): T => {
    if (value === undefined) sources[key] = 'default';
    return value ?? fallback;
  };
  const address = def('address', v.address, DEFAULT_ADDRESS);
  const namespace = def('namespace', v.namespace, DEFAULT_NAMESPACE);
  if (v.uiUrl === undefined) sources.uiUrl = 'derived';
  const uiUrl = (v.uiUrl ?? devServerUiUrl(address)).replace(/\/+$/, '');
  if (!/^[^\s:/]+:\d{1,5}$/.test(address)) errors.push(`address '${address}' (${sources.address}): expected host:port`);
  if (!/^https?:\/\/\S+$/.test(uiUrl)) errors.push(`uiUrl '${uiUrl}' (${sources.uiUrl}): expected an http(s) URL`);
  if ((v.tlsCert === undefined) !== (v.tlsKey === undefined)) errors.push('tlsCert and tlsKey: give both or neither (TEMPORAL_TLS_CERT, TEMPORAL_TLS_KEY)');
  for (const key of ['tlsCert', 'tlsKey', 'tlsCa'] as const) {
    const p = v[key];
    if (p !== undefined && !fs.existsSync(p)) errors.push(`${key} (${sources[key]}): file not found: ${p}`);
  }
  if (errors.length) throw imagoError('CLIENT_CONFIG_INVALID', errors.join('; '));
  // As in the Temporal CLI: client certificates or an API key switch TLS on unless it is explicitly off.
  const wantTls = v.tls ?? (v.tlsCert !== undefined || v.tlsCa !== undefined || v.apiKey !== undefined);
  const tls = wantTls ? { certPath: v.tlsCert, keyPath: v.tlsKey, caPath: v.tlsCa, serverName: v.tlsServerName } : null;
  return Object.freeze({ address, namespace, tls, apiKey: v.apiKey, uiUrl, sources, configFile: fs.existsSync(configFile) ? configFile : undefined });
}

/** The Temporal web UI page of one workflow. */
export function workflowUrl(settings: Pick<ConnectionSettings, 'uiUrl' | 'namespace'>, workflowId: string): string {
  return `${settings.uiUrl}/namespaces/${encodeURIComponent(settings.namespace)}/workflows/${encodeURIComponent(workflowId)}`;
}

export function connectionOptions(s: ConnectionSettings): ConnectionOptions {
  const read = (p?: string) => (p ? fs.readFileSync(p) : undefined);
  return {
    address: s.address,
    connectTimeout: 5_000,
    apiKey: s.apiKey,
    tls: s.tls ? {
      serverNameOverride: s.tls.serverName,
      serverRootCACertificate: read(s.tls.caPath),
      clientCertPair: s.tls.certPath && s.tls.keyPath ? { crt: read(s.tls.certPath)!, key: read(s.tls.keyPath)! } : undefined,
    } : undefined,
  };
}

/** Opens the connection; the caller closes `connection` when done. */
export async function connect(s: ConnectionSettings): Promise<{ client: Client; connection: Connection }> {
  let connection: Connection;
  try { connection = await Connection.connect(connectionOptions(s)); } catch (err) {
    throw imagoError('CLIENT_UNREACHABLE', `${s.address} (address from ${s.sources.address}): ${(err as Error).message}`, err);
  }
  return { client: new Client({ connection, namespace: s.namespace }), connection };
}
