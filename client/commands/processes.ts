/**
 * `worker` and `ingress`: run the long-lived processes. Their modules are
 * owned by other parts and loaded lazily, so the CLI type-checks and runs
 * its other commands whether or not they are present in the checkout.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { imagoError } from '../../lib/errors';
import { EXIT_CODES, TASK_QUEUE } from '../../workflows/status';
import { positiveInt, settingsOf, type CommandSpec } from './common';

const ROOT = path.resolve(__dirname, '..', '..');

function load(rel: string, exportName: string): (...args: any[]) => unknown {
  const file = path.join(ROOT, rel);
  if (!fs.existsSync(`${file}.ts`) && !fs.existsSync(`${file}.js`)) throw imagoError('CLIENT_COMPONENT_MISSING', `${rel}.ts not found under ${ROOT}`);
  const mod = require(file) as Record<string, unknown>;
  if (typeof mod[exportName] !== 'function') throw imagoError('CLIENT_COMPONENT_MISSING', `${rel}.ts does not export ${exportName}()`);
  return mod[exportName] as (...args: any[]) => unknown;
}

export const workerCommand: CommandSpec = {
  name: 'worker', summary: 'Run an Imago worker (workflow and activities) until interrupted.', connects: true,
  options: { 'task-queue': { type: 'string' }, 'max-activities': { type: 'string' } },
  details: `  --task-queue Q       default "${TASK_QUEUE}"
  --max-activities N   activities run at once (default: the worker's)

Runs runWorker() from worker/run.ts with the resolved connection.`,
  async run(ctx) {
    const settings = settingsOf(ctx);
    const runWorker = load('worker/run', 'runWorker');
    // Refuse rather than silently connect in plain text: worker/run.ts takes no TLS or API key (yet).
    if (settings.tls || settings.apiKey) throw imagoError('CLIENT_CONFIG_INVALID', 'imago worker: TLS and API keys are not supported by worker/run.ts yet; connect it to a plain-text frontend');
    await runWorker({
      address: settings.address, namespace: settings.namespace, signal: ctx.io.signal,
      taskQueue: (ctx.values['task-queue'] as string | undefined) ?? TASK_QUEUE, maxConcurrentActivities: positiveInt(ctx, 'max-activities'),
    });
    return EXIT_CODES.completed;
  },
};

export const ingressCommand: CommandSpec = {
  name: 'ingress', summary: 'Run an ingress interceptor until interrupted (nginx data plane, control API).', passThrough: true,
  details: `  imago ingress --listen 127.0.0.1:8080 --upstream uold=http://127.0.0.1:9001 --control 127.0.0.1:8081 --token-file F
Options: --listen --upstream --control --health --token-file --state-file --upstream-allow CIDR --workers --run-dir --nginx,
and the limits (--max-body-bytes, --hold-timeout-ms, ...). Runs runIngressCli() from interceptors/ingress/main.ts;
exit 0 when stopped (SIGINT/SIGTERM), 1 on usage or bad input. See docs/ingress.md.`,
  async run(ctx) {
    const runIngressCli = load('interceptors/ingress/main', 'runIngressCli') as (argv: string[], io: typeof ctx.io) => Promise<number>;
    return runIngressCli(ctx.rest, ctx.io);
  },
};
