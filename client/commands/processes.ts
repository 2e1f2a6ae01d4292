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
  options: { 'task-queue': { type: 'string' }, 'max-activities': { type: 'string' }, 'workflow-bundle': { type: 'string' } },
  details: `  --task-queue Q         default IMAGO_TASK_QUEUE, else "${TASK_QUEUE}"
  --max-activities N     activities run at once (default IMAGO_WORKER_MAX_ACTIVITIES, else 20)
  --workflow-bundle F    a workflow bundle built beforehand (default IMAGO_WORKFLOW_BUNDLE): starts in a second

Runs runWorker() from worker/run.ts with the connection resolved as for every command
(TLS, client certificates, CA, server name and API key included).`,
  async run(ctx) {
    const settings = settingsOf(ctx);
    const runWorker = load('worker/run', 'runWorker');
    const env = ctx.io.env;
    const maxActivities = positiveInt(ctx, 'max-activities') ?? positiveIntOf(env.IMAGO_WORKER_MAX_ACTIVITIES, 'IMAGO_WORKER_MAX_ACTIVITIES');
    await runWorker({
      connection: settings, signal: ctx.io.signal,
      taskQueue: (ctx.values['task-queue'] as string | undefined) ?? (env.IMAGO_TASK_QUEUE || TASK_QUEUE),
      ...(maxActivities !== undefined ? { maxConcurrentActivities: maxActivities } : {}),
      workflowBundlePath: (ctx.values['workflow-bundle'] as string | undefined) ?? (env.IMAGO_WORKFLOW_BUNDLE || undefined),
    });
    return EXIT_CODES.completed;
  },
};

function positiveIntOf(v: string | undefined, where: string): number | undefined {
  if (v === undefined || v === '') return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw imagoError('CLIENT_USAGE', `${where}=${v}: expected a positive integer`);
  return n;
}

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
