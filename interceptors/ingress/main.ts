/**
 * CLI: the interceptor as a long-lived process (`imago ingress ...`, or this
 * file run directly).
 *
 *   imago ingress --listen 127.0.0.1:8080 --upstream uold=http://127.0.0.1:9001 \
 *     --control 127.0.0.1:8081 --token-file F [--health 0.0.0.0:8082] [--upstream-allow 10.0.0.0/8]
 *     [--control-cert F --control-key F [--control-client-ca F]]
 *
 * The token comes from --token-file or the IMAGO_INGRESS_TOKEN environment
 * variable (never from the command line, which other users can read). The
 * control API is plain HTTP only on loopback: elsewhere it needs a
 * certificate (HTTPS; with --control-client-ca, callers need one too), or
 * --control-allow-plain-http, which is logged as a warning. The
 * state file (default: the token file's path + ".state") keeps the target
 * across restarts. SIGTERM/SIGINT: graceful stop. Exit codes: 0 stopped, 1
 * usage or bad input (the message only, no stack trace).
 */
import * as fs from 'node:fs';
import { parseArgs } from 'node:util';
import { imagoError, isImagoError } from '../../lib/errors';
import { startIngress } from './ingress';
import type { ComparerFactory, IngressLimits, IngressOptionsInput } from './options';

export const LIMIT_FLAGS: Record<string, keyof IngressLimits> = {
  'max-header-bytes': 'maxHeaderBytes', 'max-body-bytes': 'maxBodyBytes', 'header-timeout-ms': 'headerTimeoutMs',
  'body-timeout-ms': 'bodyTimeoutMs', 'hold-queue-size': 'holdQueueSize', 'hold-timeout-ms': 'defaultHoldTimeoutMs',
  'shadow-queue-size': 'shadowQueueSize', 'max-capture-bytes': 'maxCaptureBytes', 'max-sockets': 'maxSocketsPerUpstream',
  'served-log-size': 'servedLogSize', 'upstream-idle-timeout-ms': 'upstreamIdleTimeoutMs', 'retry-body-bytes': 'retryBodyBytes',
  'client-idle-timeout-ms': 'clientIdleTimeoutMs', 'orphan-grace-ms': 'orphanGraceMs', 'shutdown-delay-ms': 'shutdownDelayMs',
};

export const USAGE = `usage: imago ingress --upstream NAME=http://HOST:PORT (--token-file F | IMAGO_INGRESS_TOKEN=...) [options]
  --listen HOST:PORT        data port (default 127.0.0.1:8080)
  --control HOST:PORT       control API (default 127.0.0.1:8081); plain HTTP only on loopback
  --control-cert F          serve the control API over HTTPS with this certificate (PEM) ...
  --control-key F           ... and its key
  --control-client-ca F     require a client certificate signed by this CA of every control caller (mTLS)
  --control-allow-plain-http  serve plain HTTP on a non-loopback --control anyway (logged as a warning)
  --health HOST:PORT        health endpoint for load balancers (off unless given)
  --token-file F            the control token (at least 16 characters)
  --state-file F            target and upstreams across restarts (default: F.state next to the token file)
  --upstream-allow CIDR     addresses POST /upstreams may register (repeatable; default: the start upstream's)
  --workers N               data-plane worker processes (default: the number of cores, at least 2)
  --run-dir D               the data plane's private directory (default: a new temporary one)
  --nginx PATH              the nginx binary (default /usr/sbin/nginx)
  limits: ${Object.keys(LIMIT_FLAGS).map((f) => `--${f}`).join(' ')}
See docs/ingress.md.`;

export interface CliIo {
  out(text: string): void;
  err(text: string): void;
  /** Aborted on SIGINT/SIGTERM: the interceptor stops gracefully. */
  signal?: AbortSignal;
}

function hostPort(v: string): { host: string; port: number } | undefined {
  const m = /^\[?([^\]]+)\]?:(\d+)$/.exec(v);
  return m ? { host: m[1], port: Number(m[2]) } : undefined;
}

/** The compare engine, when compare/index.ts exists in this checkout. */
function compareEngineFactory(): ComparerFactory | undefined {
  try {
    const mod = require('../../compare');
    return typeof mod.createCompareEngine === 'function' ? (cfg) => mod.createCompareEngine(cfg) : undefined;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'MODULE_NOT_FOUND') return undefined;
    throw e;
  }
}

/** Parses the command line into startIngress options (throws IMAGO_OPTIONS_INVALID). */
export function parseIngressArgs(argv: string[], env: NodeJS.ProcessEnv = process.env): IngressOptionsInput & { tokenSource: string } {
  let values: Record<string, string | string[] | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        listen: { type: 'string', default: '127.0.0.1:8080' },
        upstream: { type: 'string' },
        control: { type: 'string', default: '127.0.0.1:8081' },
        health: { type: 'string' },
        'control-cert': { type: 'string' },
        'control-key': { type: 'string' },
        'control-client-ca': { type: 'string' },
        'control-allow-plain-http': { type: 'boolean' },
        'token-file': { type: 'string' },
        'state-file': { type: 'string' },
        'upstream-allow': { type: 'string', multiple: true },
        workers: { type: 'string' },
        'run-dir': { type: 'string' },
        nginx: { type: 'string' },
        ...Object.fromEntries(Object.keys(LIMIT_FLAGS).map((k) => [k, { type: 'string' as const }])),
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (e) {
    throw imagoError('IMAGO_OPTIONS_INVALID', `imago ingress: ${(e as Error).message}`);
  }
  const str = (k: string): string | undefined => values[k] as string | undefined;
  const errors: string[] = [];
  const up = /^([^=]+)=(.+)$/.exec(str('upstream') ?? '');
  if (!up) errors.push(`--upstream must be name=http://host:port, got '${str('upstream') ?? ''}'`);
  const tokenFile = str('token-file');
  let token = '';
  if (tokenFile) {
    try { token = fs.readFileSync(tokenFile, 'utf8').trim(); } catch (e) { errors.push(`--token-file ${tokenFile}: ${(e as Error).message}`); }
  } else token = env.IMAGO_INGRESS_TOKEN ?? '';
  if (!token && !errors.some((e) => e.startsWith('--token-file'))) errors.push('no control token: pass --token-file F or set IMAGO_INGRESS_TOKEN');
  const limits: Partial<IngressLimits> = {};
  for (const [flag, key] of Object.entries(LIMIT_FLAGS)) {
    const v = str(flag);
    if (v === undefined) continue;
    if (!/^\d+$/.test(v)) errors.push(`--${flag} must be a whole number, got '${v}'`); else limits[key] = Number(v);
  }
  const workers = str('workers');
  if (workers !== undefined && !/^\d+$/.test(workers)) errors.push(`--workers must be a whole number, got '${workers}'`);
  const hp = (flag: string): { host: string; port: number } | undefined => {
    const v = str(flag);
    if (v === undefined) return undefined;
    const r = hostPort(v);
    if (!r) errors.push(`--${flag} must be host:port, got '${v}'`);
    return r;
  };
  const listen = hp('listen');
  const control = hp('control');
  const health = hp('health');
  const [cert, key, clientCa] = [str('control-cert'), str('control-key'), str('control-client-ca')];
  if ((cert === undefined) !== (key === undefined)) errors.push('--control-cert and --control-key: give both or neither');
  if (clientCa !== undefined && cert === undefined) errors.push('--control-client-ca needs --control-cert and --control-key: client certificates are checked over HTTPS only');
  if (values['control-allow-plain-http'] && cert !== undefined) errors.push('--control-allow-plain-http with --control-cert: the control API is HTTPS; drop one');
  if (errors.length) throw imagoError('IMAGO_OPTIONS_INVALID', `imago ingress: ${errors.join('; ')}`);
  const stateFile = str('state-file') ?? (tokenFile ? `${tokenFile}.state` : undefined);
  return {
    listen, control, ...(health ? { health } : {}),
    ...(cert && key ? { controlTls: { certFile: cert, keyFile: key, ...(clientCa ? { clientCaFile: clientCa } : {}) } } : {}),
    ...(values['control-allow-plain-http'] ? { allowPlainControl: true } : {}),
    upstream: { name: up![1], url: up![2] }, token, limits,
    ...(workers !== undefined ? { workers: Number(workers) } : {}),
    ...(values['upstream-allow'] ? { upstreamAllowlist: (values['upstream-allow'] as string[]).flatMap((v) => v.split(',')).map((v) => v.trim()).filter(Boolean) } : {}),
    ...(stateFile ? { stateFile } : {}),
    ...(str('run-dir') ? { runDir: str('run-dir') } : {}),
    ...(str('nginx') ? { nginx: { binary: str('nginx') } } : {}),
    tokenSource: tokenFile ? `file ${tokenFile}` : 'IMAGO_INGRESS_TOKEN',
  };
}

/** Runs the interceptor until `io.signal` aborts; resolves with the exit code. */
export async function runIngressCli(argv: string[], io: CliIo): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) { io.out(`${USAGE}\n`); return 0; }
  let ingress;
  try {
    const { tokenSource: _tokenSource, ...opts } = parseIngressArgs(argv);
    const comparerFactory = compareEngineFactory();
    ingress = await startIngress({ ...opts, comparerFactory, log: (l) => io.err(`imago ingress: ${l}\n`) });
    io.out(`${JSON.stringify({
      ingress: ingress.url, control: ingress.controlUrl, health: ingress.healthUrl ?? null, upstream: opts.upstream.name,
      workers: ingress.options.workers, stateFile: ingress.options.stateFile ?? null, comparer: comparerFactory ? 'compare engine' : 'none',
    })}\n`);
    if (!ingress.options.stateFile) io.err('imago ingress: no --state-file (and no --token-file): the target is not kept across restarts\n');
  } catch (e) {
    io.err(`imago ingress: ${isImagoError(e) ? e.message : (e as Error)?.message ?? String(e)}\n`);
    return 1;
  }
  const signal = io.signal;
  await new Promise<void>((resolve) => {
    if (!signal) return; // runs until the process is stopped
    if (signal.aborted) resolve(); else signal.addEventListener('abort', () => resolve(), { once: true });
  });
  io.out(`${typeof signal?.reason === 'string' ? signal.reason : 'signal'}: stopping gracefully\n`);
  await ingress.close();
  return 0;
}

if (require.main === module) {
  const stop = new AbortController();
  for (const sig of ['SIGTERM', 'SIGINT'] as const) process.once(sig, () => stop.abort(sig));
  const io: CliIo = { out: (t) => process.stdout.write(t), err: (t) => process.stderr.write(t), signal: stop.signal };
  runIngressCli(process.argv.slice(2), io).then((code) => process.exit(code), (e) => { console.error(e); process.exit(1); });
}
