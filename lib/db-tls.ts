/**
 * TLS of the database connections Imago makes: Uold's replication account,
 * Unew's admin account (and, with the local provider, the application's).
 *
 * A database URL carries its TLS, in the form MySQL's own clients read:
 * `mysql://u:p@host:3306/db?ssl-mode=VERIFY_IDENTITY&ssl-ca=REF` with
 * `ssl-cert`, `ssl-key` for a client certificate and `VERIFY_CA` to check the
 * signature only. A value is a file path, or one of the plan's references
 * (`file:/path`, `env:NAME`), resolved when a connection is opened, on the
 * worker: the URL never holds key material. So every function that takes a
 * database URL (the transfer, its binlog reader, flush, verify, the cut-over)
 * gets its TLS with it; `mysqlOptionsOf(url)` turns it into the `uri` and
 * `ssl` options that mysql2 and the binlog reader (@vlasky/zongji, which
 * hands them to mysql2) both take. With TLS set, the server's certificate is
 * always verified (there is no mode that skips it): a connection fails rather
 * than carry the password and every row in clear, or to an impostor.
 *
 * Why a connection failed is explained by `explainDbError()`, which names the
 * link and tells the TLS causes apart (the server requires TLS and the plan
 * has none; its certificate does not verify; the handshake failed).
 */
import * as net from 'node:net';
import * as tls from 'node:tls';
import type * as mysql from 'mysql2/promise';
import * as fs from 'node:fs';
import { imagoError, type ImagoError } from './errors';
import { redactUrl, resolveSecret } from './secrets';

/** The plan's TLS settings of one database (plan/schema.ts dbTlsSchema): references, never the PEM itself. */
export interface DbTlsRefs {
  caRef?: string;
  certRef?: string;
  keyRef?: string;
  verifyIdentity?: boolean;
}

/** Resolved TLS material (PEM text). Lives in the worker's memory only: never in a URL, a log or workflow history. */
export interface DbTls {
  ca?: string;
  cert?: string;
  key?: string;
  /** The certificate must name the URL's host (DNS name or IP address in its subject alternative names). */
  verifyIdentity: boolean;
}

/** How Imago reaches one database. */
export interface DbEndpoint {
  /** mysql://user:password@host:port/[database][?ssl-mode=…] — a secret; its TLS as withDbTls() writes it. */
  url: string;
  /** The link, for messages: "Uold's database (replication account, uold.db)". */
  link: string;
  /** Where the TLS settings come from in the plan, for fixes: '/uold/db/tls'. */
  tlsPath?: string;
}

const SSL_MODES = ['VERIFY_IDENTITY', 'VERIFY_CA'] as const;

/**
 * The URL with the plan's TLS settings of that database as parameters (the
 * references as they are: resolved at connect time). No settings: the URL
 * unchanged, plain text.
 */
export function withDbTls(url: string, refs: DbTlsRefs | undefined): string {
  if (!refs) return url;
  const u = new URL(url);
  u.searchParams.set('ssl-mode', (refs.verifyIdentity ?? true) ? 'VERIFY_IDENTITY' : 'VERIFY_CA');
  for (const [param, ref] of [['ssl-ca', refs.caRef], ['ssl-cert', refs.certRef], ['ssl-key', refs.keyRef]] as const) if (ref) u.searchParams.set(param, ref);
  return u.toString();
}

/** The URL without its TLS parameters (for mysql2, which would read them as options of its own). */
export function bareUrl(url: string): string {
  const u = new URL(url);
  for (const k of [...u.searchParams.keys()].filter((k) => k.startsWith('ssl-'))) u.searchParams.delete(k);
  return u.toString();
}

/**
 * The TLS a URL asks for, its material read: `file:`/`env:` references
 * through the secrets resolver, bare values as file paths. Undefined without
 * ssl-mode (or ssl-mode=DISABLED). `at` names the setting in errors.
 */
export function tlsOfUrl(url: string, at = 'database URL'): DbTls | undefined {
  const u = new URL(url);
  const mode = u.searchParams.get('ssl-mode');
  if (mode === null || mode === 'DISABLED') return undefined;
  if (!(SSL_MODES as readonly string[]).includes(mode)) throw imagoError('IMAGO_OPTIONS_INVALID', `${at}: ssl-mode=${mode}: expected VERIFY_IDENTITY or VERIFY_CA (a certificate that is not verified proves nothing)`);
  const pem = (param: string): string | undefined => {
    const v = u.searchParams.get(param);
    if (v === null) return undefined;
    let text: string;
    if (/^(env|file):/.test(v)) text = resolveSecret(v, `${at} ${param}`);
    else {
      try { text = fs.readFileSync(v, 'utf8'); } catch (err) { throw imagoError('IMAGO_SECRET_UNRESOLVED', `${at} ${param}: ${v}: ${(err as Error).message}`); }
    }
    if (!/-----BEGIN [A-Z0-9 ]+-----/.test(text)) throw imagoError('IMAGO_SECRET_UNRESOLVED', `${at} ${param}: ${v} does not hold PEM text (-----BEGIN ...-----)`);
    return text;
  };
  return { ca: pem('ssl-ca'), cert: pem('ssl-cert'), key: pem('ssl-key'), verifyIdentity: mode === 'VERIFY_IDENTITY' };
}

/** mysql2's `uri` and `ssl` for a URL that may carry its TLS (the binlog reader takes the same). */
export function mysqlOptionsOf(url: string): { uri: string; ssl?: mysql.SslOptions } {
  const ssl = sslOptions(tlsOfUrl(url));
  return { uri: bareUrl(url), ...(ssl ? { ssl } : {}) };
}

/** mysql2's `ssl` option (also the binlog reader's): undefined for plain text. */
export function sslOptions(t: DbTls | undefined): mysql.SslOptions | undefined {
  if (!t) return undefined;
  return {
    ...(t.ca ? { ca: t.ca } : {}),
    ...(t.cert ? { cert: t.cert, key: t.key } : {}),
    // Always verified: a plan cannot ask for an unauthenticated server.
    rejectUnauthorized: true,
    verifyIdentity: t.verifyIdentity,
    minVersion: 'TLSv1.2',
  };
}

/** host and port of a mysql:// URL. */
export function hostPortOf(url: string): { host: string; port: number } {
  const u = new URL(url);
  return { host: u.hostname.replace(/^\[|\]$/g, ''), port: Number(u.port || 3306) };
}

/** What a server shows before any credential is sent: whether it offers TLS, and the certificate it presents. */
export interface ServerTlsFacts {
  offersTls: boolean;
  /** The server's certificate as presented (not verified), when it offers TLS. */
  certificate?: { subject: string; issuer: string; names: string[]; validTo: string };
}

const CLIENT_PROTOCOL_41 = 0x200;
const CLIENT_SSL = 0x800;
const CLIENT_SECURE_CONNECTION = 0x8000;

/**
 * Reads a MySQL/MariaDB server's greeting and, when it offers TLS, makes a
 * TLS handshake without verifying it, only to read the certificate it shows.
 * No credential is sent: the connection ends after the handshake. For
 * diagnosis only (preflight, error messages), never to carry data.
 */
export function inspectServerTls(host: string, port: number, timeoutMs = 5_000): Promise<ServerTlsFacts> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host, port });
    let settled = false;
    const done = (err: Error | null, facts?: ServerTlsFacts): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      if (err) reject(err); else resolve(facts!);
    };
    // eslint-disable-next-line no-restricted-syntax -- the probe's failures only decide which explanation explainDbError gives
    const timer = setTimeout(() => done(new Error(`no greeting from ${host}:${port} within ${timeoutMs} ms`)), timeoutMs);
    socket.on('error', (e) => done(e));
    let buf = Buffer.alloc(0);
    const onData = (chunk: Buffer): void => {
      buf = Buffer.concat([buf, chunk]);
      if (buf.length < 4) return;
      const len = buf.readUIntLE(0, 3);
      if (buf.length < 4 + len) return;
      socket.off('data', onData);
      const payload = buf.subarray(4, 4 + len);
      // eslint-disable-next-line no-restricted-syntax -- the probe's failures only decide which explanation explainDbError gives
      if (payload[0] === 0xff) { done(new Error(`the server refused the connection: ${payload.subarray(9).toString('utf8')}`)); return; }
      // Protocol 10 greeting: version, server version (NUL-terminated), thread id (4), scramble (8), filler (1), capabilities (2, low).
      const nul = payload.indexOf(0, 1);
      const capsAt = nul + 1 + 4 + 8 + 1;
      // eslint-disable-next-line no-restricted-syntax -- the probe's failures only decide which explanation explainDbError gives
      if (payload[0] !== 10 || nul < 0 || payload.length < capsAt + 2) { done(new Error('not a MySQL/MariaDB greeting')); return; }
      const offersTls = (payload.readUInt16LE(capsAt) & CLIENT_SSL) !== 0;
      if (!offersTls) { done(null, { offersTls }); return; }
      // SSLRequest: capabilities, max packet size, character set (utf8mb4), 23 reserved bytes; sequence 1.
      const req = Buffer.alloc(4 + 32);
      req.writeUIntLE(32, 0, 3);
      req[3] = 1;
      req.writeUInt32LE(CLIENT_PROTOCOL_41 | CLIENT_SSL | CLIENT_SECURE_CONNECTION, 4);
      req.writeUInt32LE(16 * 1024 * 1024, 8);
      req[12] = 45;
      socket.write(req);
      const secure = tls.connect({ socket, rejectUnauthorized: false, ...(net.isIP(host) ? {} : { servername: host }) }, () => {
        const c = secure.getPeerCertificate();
        const names = (c.subjectaltname ?? '').split(/,\s*/).filter(Boolean).map((n) => n.replace(/^(DNS|IP Address):/, ''));
        const dn = (o: Record<string, unknown> | undefined) => Object.entries(o ?? {}).map(([k, v]) => `${k}=${String(v)}`).join(', ');
        secure.destroy();
        done(null, { offersTls, certificate: { subject: dn(c.subject as unknown as Record<string, unknown>), issuer: dn(c.issuer as unknown as Record<string, unknown>), names, validTo: c.valid_to } });
      });
      secure.on('error', (e) => done(e));
    };
    socket.on('data', onData);
  });
}

/** Errors of a server that refused the account, which a server requiring TLS also answers to a plain-text connection (MariaDB says "Access denied"). */
function refusedAccount(err: unknown): boolean {
  const code = (err as { code?: string })?.code;
  return code === 'ER_ACCESS_DENIED_ERROR' || code === 'ER_SECURE_TRANSPORT_REQUIRED' || code === 'ER_ACCESS_DENIED_NO_PASSWORD_ERROR'
    || /insecure transport|secure transport/i.test((err as Error)?.message ?? '');
}

/** OpenSSL's verification failures (Node codes), and a certificate that does not name the host. */
const UNVERIFIED = /^(UNABLE_TO_|SELF_SIGNED|DEPTH_ZERO|CERT_|ERR_TLS_CERT_ALTNAME_INVALID|HOSTNAME_MISMATCH)/;

function certText(f: ServerTlsFacts | undefined): string {
  const c = f?.certificate;
  return c ? `it presents a certificate for ${c.subject}${c.names.length ? ` (names: ${c.names.join(', ')})` : ''}, issued by ${c.issuer}, valid to ${c.validTo}` : '';
}

/**
 * Explains a failed connection to a database when the cause is TLS, naming
 * the link: DB_TLS_REQUIRED (the server refuses the account in plain text and
 * offers TLS, and the plan has none), DB_TLS_UNVERIFIED (its certificate does
 * not verify), DB_TLS_FAILED (another handshake failure). Undefined when the
 * cause is not TLS (the caller keeps its own error). `probe` says whether the
 * server may be asked again (its greeting, and for a refused account the same
 * account over TLS, to tell "requires TLS" from a wrong password).
 */
export async function explainDbError(db: DbEndpoint, err: unknown, probe = true): Promise<ImagoError | undefined> {
  let dbTls: DbTls | undefined;
  try { dbTls = tlsOfUrl(db.url, db.link); } catch { return undefined; }
  const e = err as { code?: string; message?: string } | null;
  const code = String(e?.code ?? '');
  const message = String(e?.message ?? err);
  const where = `${db.link} at ${redactUrl(bareUrl(db.url)).replace(/\/[^/]*$/, '')}`;
  const { host, port } = hostPortOf(db.url);
  const facts = probe ? await inspectServerTls(host, port).catch(() => undefined) : undefined;
  if (!dbTls) {
    if (!refusedAccount(err) || !facts?.offersTls) return undefined;
    // The same account over TLS (not verified: only to learn whether the server wants TLS). Only
    // challenge-response plugins may answer: none that would send the password itself to an unverified peer.
    if (probe && !(await acceptsOverTls(bareUrl(db.url)))) return undefined;
    return imagoError('DB_TLS_REQUIRED', `${where}: the server refuses the account without TLS and accepts it over TLS (require_secure_transport=ON, or the account's REQUIRE SSL); ${certText(facts)}; the plan has no TLS for it: set ${db.tlsPath ?? 'tls'} (caRef: the CA that signed that certificate)`, err);
  }
  if (UNVERIFIED.test(code) || /certificate|Hostname\/IP does not match/i.test(message) && !/alert/i.test(message)) {
    const given = dbTls.ca ? 'the CA of caRef' : "Node's public CAs (no caRef)";
    return imagoError('DB_TLS_UNVERIFIED', `${where}: ${message}: ${certText(facts) || 'its certificate'} does not verify against ${given}${dbTls.verifyIdentity ? ` for the name '${host}'` : ''}; fix ${db.tlsPath ?? 'tls'}`, err);
  }
  if (code === 'HANDSHAKE_NO_SSL_SUPPORT' || /does not support secure connection/i.test(message)) {
    return imagoError('DB_TLS_FAILED', `${where}: the server does not offer TLS, and the plan asks for it (${db.tlsPath ?? 'tls'}): enable TLS on the server (ssl_cert, ssl_key), or remove the setting`, err);
  }
  if (/^(HANDSHAKE_SSL_ERROR|ERR_SSL_|ERR_OSSL_)|EPROTO/.test(code) || /alert|ssl|tls/i.test(message)) {
    return imagoError('DB_TLS_FAILED', `${where}: the TLS handshake failed: ${message}${dbTls.cert ? ' (the server may refuse the client certificate of certRef)' : ''}`, err);
  }
  if (refusedAccount(err) && !dbTls.cert && facts?.offersTls) {
    // Over TLS and still refused: the account may require a client certificate (REQUIRE X509) the plan does not give.
    return imagoError('DB_TLS_FAILED', `${where}: the server refused the account over TLS (${message}): a wrong password, or the account requires a client certificate (REQUIRE X509), which ${db.tlsPath ?? 'tls'} does not give (certRef, keyRef)`, err);
  }
  return undefined;
}

async function acceptsOverTls(url: string): Promise<boolean> {
  const mysql2 = await import('mysql2/promise');
  // eslint-disable-next-line no-restricted-syntax -- never called: mysql2 asks for it only on an auth switch the probe does not make
  const refuse = () => () => { throw new Error('not used by the TLS probe'); };
  const c = await mysql2.createConnection({
    uri: url, connectTimeout: 5_000, ssl: { rejectUnauthorized: false },
    authPlugins: { caching_sha2_password: refuse, sha256_password: refuse, mysql_clear_password: refuse },
  }).catch(() => undefined);
  if (!c) return false;
  await c.end().catch(() => undefined);
  return true;
}

/**
 * Opens one connection to `db` with its TLS (mysql2 options besides the URL
 * and `ssl` as given); a failure whose cause is TLS becomes DB_TLS_*, naming
 * the link.
 */
export async function openDb(db: DbEndpoint, options: Omit<mysql.ConnectionOptions, 'uri' | 'ssl'> = {}): Promise<mysql.Connection> {
  const mysql2 = await import('mysql2/promise');
  try {
    return await mysql2.createConnection({ ...options, ...mysqlOptionsOf(db.url) });
  } catch (err) {
    throw (await explainDbError(db, err)) ?? err;
  }
}

/** A pool to `db` with its TLS. Connections open on first use: callers pass errors of that first query to explainDbError. */
export function dbPoolOptions(db: DbEndpoint, options: Omit<mysql.PoolOptions, 'uri' | 'ssl'> = {}): mysql.PoolOptions {
  return { ...options, ...mysqlOptionsOf(db.url) };
}

/**
 * The database URL handed to an application, with its TLS as query
 * parameters in the form MySQL's own clients read (ssl-mode, ssl-ca,
 * ssl-cert, ssl-key: file paths): `?ssl-mode=VERIFY_IDENTITY&ssl-ca=/x/ca.pem`.
 * docs/local-provider.md documents it; examples/auction reads it.
 */
export function withTlsParams(url: string, files: { ca: string; cert?: string; key?: string }, verifyIdentity: boolean): string {
  const u = new URL(url);
  u.searchParams.set('ssl-mode', verifyIdentity ? 'VERIFY_IDENTITY' : 'VERIFY_CA');
  u.searchParams.set('ssl-ca', files.ca);
  if (files.cert && files.key) { u.searchParams.set('ssl-cert', files.cert); u.searchParams.set('ssl-key', files.key); }
  return u.toString();
}
