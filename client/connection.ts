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
import * as net from 'node:net';
import * as path from 'node:path';
import * as tls from 'node:tls';
import { Client, Connection, type ConnectionOptions, type TLSConfig } from '@temporalio/client';
import type { NativeConnectionOptions } from '@temporalio/worker';
import { imagoError, type ImagoError } from '../lib/errors';

/** 'server': recorded on the namespace; 'derived': the dev server's port + 1000 (uiUrl only). */
export type SettingSource = 'flag' | 'env' | 'file' | 'server' | 'derived' | 'default';

/**
 * Flags as the CLI spells them (camelCased); the same keys are accepted in the
 * config file. The `*Data` keys hold PEM text instead of a file's path (the
 * Temporal CLI's TEMPORAL_TLS_*_DATA variables, for containers whose secrets
 * come as environment variables); the CLI has no flag for them, since a
 * command line is readable by every user of the host.
 */
export interface ConnectionFlags {
  address?: string;
  namespace?: string;
  tls?: boolean;
  tlsCert?: string;
  tlsKey?: string;
  tlsCa?: string;
  tlsCertData?: string;
  tlsKeyData?: string;
  tlsCaData?: string;
  tlsServerName?: string;
  apiKey?: string;
  uiUrl?: string;
  config?: string;
}

/** How the connection is secured: files by path, or their PEM text (`*Data`); at most one of each pair. */
export interface TemporalTls {
  certPath?: string;
  keyPath?: string;
  caPath?: string;
  certData?: string;
  keyData?: string;
  caData?: string;
  serverName?: string;
}

/**
 * The one model of a connection to Temporal, shared by the CLI, the library
 * (ImagoClient) and the worker (worker/run.ts, `imago worker`): whatever the
 * CLI can reach, the worker reaches with the same settings.
 */
export interface ConnectionSettings {
  address: string;
  namespace: string;
  /** null: plain-text gRPC (the dev server). */
  tls: TemporalTls | null;
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
  tlsCertData: 'TEMPORAL_TLS_CERT_DATA',
  tlsKeyData: 'TEMPORAL_TLS_KEY_DATA',
  tlsCaData: 'TEMPORAL_TLS_CA_DATA',
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
  const hasCert = v.tlsCert !== undefined || v.tlsCertData !== undefined;
  const hasKey = v.tlsKey !== undefined || v.tlsKeyData !== undefined;
  if (hasCert !== hasKey) errors.push('tlsCert and tlsKey: give both or neither (TEMPORAL_TLS_CERT, TEMPORAL_TLS_KEY, or their _DATA forms)');
  for (const [p, d] of [['tlsCert', 'tlsCertData'], ['tlsKey', 'tlsKeyData'], ['tlsCa', 'tlsCaData']] as const) {
    if (v[p] !== undefined && v[d] !== undefined) errors.push(`${p} (${sources[p]}) and ${d} (${sources[d]}): give the file or its content, not both`);
    const file = v[p];
    if (file !== undefined && !fs.existsSync(file)) errors.push(`${p} (${sources[p]}): file not found: ${file}`);
    const data = v[d];
    if (data !== undefined && !/-----BEGIN [A-Z ]+-----/.test(data)) errors.push(`${d} (${sources[d]}): expected PEM text (-----BEGIN ...-----)`);
  }
  if (errors.length) throw imagoError('CLIENT_CONFIG_INVALID', errors.join('; '));
  // As in the Temporal CLI: client certificates, a CA or an API key switch TLS on unless it is explicitly off.
  const wantTls = v.tls ?? (hasCert || v.tlsCa !== undefined || v.tlsCaData !== undefined || v.apiKey !== undefined);
  const tls: TemporalTls | null = wantTls ? Object.fromEntries(Object.entries({
    certPath: v.tlsCert, keyPath: v.tlsKey, caPath: v.tlsCa, certData: v.tlsCertData, keyData: v.tlsKeyData, caData: v.tlsCaData, serverName: v.tlsServerName,
  }).filter(([, x]) => x !== undefined)) : null;
  return Object.freeze({ address, namespace, tls, apiKey: v.apiKey, uiUrl, sources, configFile: fs.existsSync(configFile) ? configFile : undefined });
}

/**
 * Settings for a plain-text frontend at `address` (a dev server), read from
 * nothing else: for code that starts its own server (tests, the demo).
 */
export function plainSettings(address: string, namespace = DEFAULT_NAMESPACE): ConnectionSettings {
  const sources: Record<string, SettingSource> = { address: 'flag', namespace: 'flag', uiUrl: 'derived' };
  return Object.freeze({ address, namespace, tls: null, uiUrl: devServerUiUrl(address), sources });
}

/** The Temporal web UI page of one workflow. */
export function workflowUrl(settings: Pick<ConnectionSettings, 'uiUrl' | 'namespace'>, workflowId: string): string {
  return `${settings.uiUrl}/namespaces/${encodeURIComponent(settings.namespace)}/workflows/${encodeURIComponent(workflowId)}`;
}

/** The TLS material, read from its files or taken from the settings; undefined for plain text. */
function tlsConfig(s: ConnectionSettings): TLSConfig | undefined {
  if (!s.tls) return undefined;
  const t = s.tls;
  const read = (file: string | undefined, data: string | undefined): Buffer | undefined => (data !== undefined ? Buffer.from(data) : file ? fs.readFileSync(file) : undefined);
  const crt = read(t.certPath, t.certData);
  const key = read(t.keyPath, t.keyData);
  return {
    serverNameOverride: t.serverName,
    serverRootCACertificate: read(t.caPath, t.caData),
    clientCertPair: crt && key ? { crt, key } : undefined,
  };
}

/** For the client library's Connection (the CLI, ImagoClient, the worker's own client). */
export function connectionOptions(s: ConnectionSettings): ConnectionOptions {
  return { address: s.address, connectTimeout: 5_000, apiKey: s.apiKey, tls: tlsConfig(s) };
}

/** For the worker's NativeConnection (its polls go through the SDK's Rust core): the same settings. */
export function nativeConnectionOptions(s: ConnectionSettings): NativeConnectionOptions {
  return { address: s.address, apiKey: s.apiKey, tls: tlsConfig(s) ?? null };
}

/** "Temporal at host:port (namespace x; TLS: client certificate, CA file)": the link, for messages. */
export function describeTemporalLink(s: ConnectionSettings): string {
  const t = s.tls;
  const parts = [`namespace ${s.namespace}`];
  if (!t) parts.push('plain text, no TLS');
  else {
    parts.push(`TLS${t.serverName ? ` as ${t.serverName}` : ''}`);
    parts.push(t.certPath || t.certData ? `client certificate ${t.certPath ?? `(PEM from ${s.sources.tlsCertData ?? 'flag'})`}` : 'no client certificate');
    parts.push(t.caPath || t.caData ? `CA ${t.caPath ?? `(PEM from ${s.sources.tlsCaData ?? 'flag'})`}` : "the system's CAs");
  }
  if (s.apiKey) parts.push('API key');
  return `Temporal at ${s.address} (address from ${s.sources.address ?? 'flag'}; ${parts.join(', ')})`;
}

/**
 * Why a connection to Temporal failed, in words: the transports' own messages
 * ("Received HTTP status code 400", "h2 protocol error", "Failed to connect
 * before the deadline") name no setting. `who` is the side of the link: 'the
 * CLI', 'the worker'. When the error itself does not tell, a TLS handshake of
 * our own with the same settings (no call, no credential beyond the client
 * certificate) tells a certificate that does not verify, or a TLS endpoint
 * reached in plain text, from a server that is down.
 */
export async function temporalConnectError(s: ConnectionSettings, err: unknown, who: string): Promise<ImagoError> {
  const message = String((err as Error)?.message ?? err);
  const why = whyFromText(s, `${message} ${String(((err as { cause?: Error })?.cause)?.message ?? '')}`) ?? await whyFromHandshake(s).catch(() => undefined);
  return imagoError('CLIENT_UNREACHABLE', `${who} → ${describeTemporalLink(s)}: ${why ? `${why} (${message})` : message}`, err);
}

const WHY = {
  unverified: "the server's certificate does not verify: give the CA that signed it (--tls-ca, TEMPORAL_TLS_CA) and, when the address is not a name in the certificate, --tls-server-name",
  noClientCert: 'the TLS endpoint refused the call without a client certificate (a proxy or server that requires mTLS answers HTTP 400 or a certificate alert): give --tls-cert and --tls-key (TEMPORAL_TLS_CERT, TEMPORAL_TLS_KEY)',
  badClientCert: 'the TLS endpoint refused the client certificate: it must be signed by a CA the server trusts, and be valid for client authentication',
  plainToTls: 'the endpoint did not speak plain-text gRPC: if it expects TLS, pass --tls (with --tls-ca for a private CA, and --tls-cert/--tls-key if it requires a client certificate)',
} as const;

function whyFromText(s: ConnectionSettings, text: string): string | undefined {
  const hasCert = !!(s.tls?.certPath || s.tls?.certData);
  if (/UnknownIssuer|unable to (get|verify)|self[- ]signed|certificate (verify|has expired)|CERT_|InvalidCertificate|NotValidForName|Hostname\/IP does not match/i.test(text)) return WHY.unverified;
  if (s.tls && !hasCert && /\b400\b|Bad Request|certificate required|alert.*certificate|handshake/i.test(text)) return WHY.noClientCert;
  if (s.tls && hasCert && /\b400\b|Bad Request|bad certificate|unknown ca|certificate/i.test(text)) return WHY.badClientCert;
  if (!s.tls && /h2 protocol error|GoAway|FRAME_SIZE_ERROR|HTTP\/0\.9|wrong version number|Protocol error|ECONNRESET|socket hang up/i.test(text)) return WHY.plainToTls;
  return undefined;
}

/** A TLS handshake with the settings' material, to learn why a connection failed; undefined when it does not tell. */
function whyFromHandshake(s: ConnectionSettings): Promise<string | undefined> {
  const m = /^(.*):(\d+)$/.exec(s.address);
  if (!m) return Promise.resolve(undefined);
  const host = m[1].replace(/^\[|\]$/g, '');
  const t = tlsConfig(s);
  const name = t?.serverNameOverride ?? (net.isIP(host) ? undefined : host);
  return new Promise((resolve) => {
    const b = (x: Uint8Array | undefined): Buffer | undefined => (x ? Buffer.from(x) : undefined);
    const options: tls.ConnectionOptions = {
      host, port: Number(m[2]), ALPNProtocols: ['h2'], ...(name ? { servername: name } : {}),
      // Plain-text settings: only whether the endpoint speaks TLS at all is asked, nothing is verified or sent.
      ...(t ? { ca: b(t.serverRootCACertificate), cert: b(t.clientCertPair?.crt), key: b(t.clientCertPair?.key), rejectUnauthorized: true } : { rejectUnauthorized: false }),
      ...(t?.serverNameOverride ? { checkServerIdentity: (_h: string, cert: tls.PeerCertificate) => tls.checkServerIdentity(t.serverNameOverride!, cert) } : {}),
    };
    const socket = tls.connect(options, () => { socket.destroy(); resolve(t ? undefined : WHY.plainToTls); });
    const timer = setTimeout(() => { socket.destroy(); resolve(undefined); }, 3_000);
    socket.once('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      resolve(t && (/CERT|SELF_SIGNED|UNABLE_TO_|ALTNAME|HOSTNAME/.test(String(e.code)) || /Hostname\/IP does not match/.test(e.message)) ? WHY.unverified : undefined);
    });
    socket.once('close', () => clearTimeout(timer));
  });
}

/** Opens the connection; the caller closes `connection` when done. */
export async function connect(s: ConnectionSettings, who = 'the CLI'): Promise<{ client: Client; connection: Connection }> {
  let connection: Connection;
  try { connection = await Connection.connect(connectionOptions(s)); } catch (err) {
    throw await temporalConnectError(s, err, who);
  }
  return { client: new Client({ connection, namespace: s.namespace }), connection };
}
