/**
 * CLI: the interceptor as a long-lived process.
 *
 *   npx tsx interceptors/ingress/main.ts --listen 127.0.0.1:8080 \
 *     --upstream uold=http://127.0.0.1:9001 --control 127.0.0.1:8081 --token-file F
 *
 * The token comes from --token-file or the IMAGO_INGRESS_TOKEN environment
 * variable (never from the command line, which other users can read).
 * SIGTERM/SIGINT: graceful stop (held requests released, in-flight finished).
 */
import * as fs from 'node:fs';
import { parseArgs } from 'node:util';
import { imagoError, isImagoError } from '../../lib/errors';
import { startIngress } from './ingress';
import type { ComparerFactory, IngressLimits } from './options';

const LIMIT_FLAGS: Record<string, keyof IngressLimits> = {
  'max-header-bytes': 'maxHeaderBytes', 'max-body-bytes': 'maxBodyBytes', 'header-timeout-ms': 'headerTimeoutMs',
  'body-timeout-ms': 'bodyTimeoutMs', 'hold-queue-size': 'holdQueueSize', 'hold-timeout-ms': 'defaultHoldTimeoutMs',
  'shadow-queue-size': 'shadowQueueSize', 'max-capture-bytes': 'maxCaptureBytes', 'max-sockets': 'maxSocketsPerUpstream',
  'served-log-size': 'servedLogSize', 'upstream-idle-timeout-ms': 'upstreamIdleTimeoutMs', 'retry-body-bytes': 'retryBodyBytes',
};

function hostPort(v: string, flag: string): { host: string; port: number } {
  const m = /^(.+):(\d+)$/.exec(v);
  if (!m) throw imagoError('IMAGO_OPTIONS_INVALID', `--${flag} must be host:port, got '${v}'`);
  return { host: m[1], port: Number(m[2]) };
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

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      listen: { type: 'string', default: '127.0.0.1:8080' },
      upstream: { type: 'string' },
      control: { type: 'string', default: '127.0.0.1:8081' },
      'token-file': { type: 'string' },
      ...Object.fromEntries(Object.keys(LIMIT_FLAGS).map((k) => [k, { type: 'string' as const }])),
    },
    strict: true,
  });
  const up = /^([^=]+)=(.+)$/.exec(values.upstream ?? '');
  if (!up) throw imagoError('IMAGO_OPTIONS_INVALID', `--upstream must be name=http://host:port, got '${values.upstream ?? ''}'`);
  const token = values['token-file'] ? fs.readFileSync(values['token-file'], 'utf8').trim() : process.env.IMAGO_INGRESS_TOKEN ?? '';
  if (!token) throw imagoError('IMAGO_OPTIONS_INVALID', 'no control token: pass --token-file F or set IMAGO_INGRESS_TOKEN');
  const limits: Partial<IngressLimits> = {};
  for (const [flag, key] of Object.entries(LIMIT_FLAGS)) {
    const v = (values as Record<string, string | undefined>)[flag];
    if (v !== undefined) limits[key] = Number(v);
  }
  const comparerFactory = compareEngineFactory();
  const ingress = await startIngress({
    listen: hostPort(values.listen!, 'listen'), control: hostPort(values.control!, 'control'),
    upstream: { name: up[1], url: up[2] }, token, limits, comparerFactory,
  });
  console.log(JSON.stringify({ ingress: ingress.url, control: ingress.controlUrl, upstream: up[1], comparer: comparerFactory ? 'compare engine' : 'none' }));
  const stop = (sig: string): void => {
    console.log(`${sig}: stopping gracefully`);
    ingress.close().then(() => process.exit(0), (e) => { console.error(e); process.exit(1); });
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
}

main().catch((e) => {
  console.error(isImagoError(e) ? e.message : e);
  process.exit(2);
});
