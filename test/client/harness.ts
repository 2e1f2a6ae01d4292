/**
 * The client tests' harness: a real Worker running the TEST DOUBLE of the
 * upgrade workflow (double/upgrade-double.workflow.ts) against the fixture's
 * Temporal dev server, plan files written to a temp folder, and the CLI run
 * in-process (runCli with a capturing Io) or as a real process (bin/imago.js).
 */
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { DefaultLogger, NativeConnection, Runtime, Worker } from '@temporalio/worker';
import { ImagoClient } from '../../client/api';
import { runCli } from '../../client/cli';
import type { Io } from '../../client/output';
import type { UpgradeStatus } from '../../workflows/status';
import { TASK_QUEUE } from '../../workflows/status';
import { onTeardown, temporalFixture } from '../fixtures/servers';

export const ROOT = path.resolve(__dirname, '..', '..');
export const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'imago-client-test-'));

export interface Harness { address: string; namespace: string; imago: ImagoClient; env: NodeJS.ProcessEnv }

let harness: Promise<Harness> | undefined;

/** One double worker per test run, stopped by the root hook's teardown. */
export function clientHarness(): Promise<Harness> {
  harness ??= (async () => {
    const { address, namespace, client } = await temporalFixture();
    // Keep test output readable; another part's test may have installed the runtime first, which is fine.
    try { Runtime.install({ logger: new DefaultLogger('ERROR') }); } catch { /* already installed */ }
    const connection = await NativeConnection.connect({ address });
    const worker = await Worker.create({
      connection, namespace, taskQueue: TASK_QUEUE,
      workflowsPath: require.resolve('./double/upgrade-double.workflow'),
    });
    const running = worker.run();
    onTeardown(async () => { worker.shutdown(); await running; await connection.close(); fs.rmSync(tmp, { recursive: true, force: true }); });
    // A clean environment: no TEMPORAL_* from the developer's shell, no real config file.
    const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: tmp, XDG_CONFIG_HOME: path.join(tmp, 'config'), TEMPORAL_ADDRESS: address, TEMPORAL_NAMESPACE: namespace, USER: 'tester' };
    return { address, namespace, imago: ImagoClient.fromClient(client), env };
  })();
  return harness;
}

/** A valid plan file; `over` replaces top-level sections. */
export function writePlan(name: string, over: Record<string, unknown> = {}): string {
  const dir = path.join(tmp, name);
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'schema.sql'), 'CREATE TABLE items (id INT PRIMARY KEY);\n');
  fs.writeFileSync(path.join(dir, 'conversion.ts'), "export default { name: 'client-test', tables: [] };\n");
  const plan = {
    name, system: 'auction', from: { version: '1.0' }, to: { version: '2.0' },
    uold: { ingress: [{ controlUrl: 'http://127.0.0.1:1', tokenRef: 'env:TOKEN' }], db: { urlRef: 'env:UOLD_DB', database: 'auction' } },
    unew: { database: 'auction2', schemaFile: 'schema.sql', conversion: 'conversion.ts', app: { command: ['true'] } },
    approval: { policy: 'manual' }, postSwitchover: { finalize: 'manual', windowMs: 60_000 },
    ...over,
  };
  const file = path.join(dir, 'plan.json');
  fs.writeFileSync(file, JSON.stringify(plan, null, 2));
  return file;
}

export interface CliRun { code: number; out: string; err: string }

/** Runs `imago <argv>` in-process, not a TTY unless asked. */
export async function cli(argv: string[], opts: { env?: NodeJS.ProcessEnv; isTTY?: boolean } = {}): Promise<CliRun> {
  const h = await clientHarness();
  let out = '', err = '';
  const io: Io = { out: (t) => { out += t; }, err: (t) => { err += t; }, isTTY: opts.isTTY ?? false, env: { ...h.env, ...opts.env } };
  const code = await runCli(argv, io);
  return { code, out, err };
}

/** Runs bin/imago.js as a real process (stdout is a pipe: not a TTY). */
export async function cliProcess(argv: string[], env: NodeJS.ProcessEnv = {}): Promise<CliRun> {
  const h = await clientHarness();
  return new Promise((resolve) => {
    execFile(process.execPath, [path.join(ROOT, 'client/bin/imago.js'), ...argv], { cwd: ROOT, env: { ...h.env, ...env }, timeout: 60_000 },
      (error, stdout, stderr) => resolve({ code: error ? (typeof error.code === 'number' ? error.code : -1) : 0, out: stdout, err: stderr }));
  });
}

/** Polls the status until pred holds (bounded); returns that status. */
export async function waitForStatus(id: string, pred: (s: UpgradeStatus) => boolean, timeoutMs = 30_000): Promise<UpgradeStatus> {
  const { imago } = await clientHarness();
  const deadline = Date.now() + timeoutMs;
  let last: UpgradeStatus | undefined;
  while (Date.now() < deadline) {
    last = await imago.status(id).catch(() => undefined);
    if (last && pred(last)) return last;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${id}: condition not reached within ${timeoutMs} ms; last phase ${last?.phase}`);
}

/** Visibility is eventually consistent: poll a list until pred holds (bounded). */
export async function waitForList<T>(fn: () => Promise<T>, pred: (v: T) => boolean, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let v = await fn();
  while (!pred(v) && Date.now() < deadline) { await new Promise((r) => setTimeout(r, 200)); v = await fn(); }
  return v;
}
