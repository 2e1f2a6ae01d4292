import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import * as fs from 'node:fs';
import { imagoError } from './errors';

/**
 * A child process we own: its output goes to a log file, and stop() ends it
 * (SIGTERM, then SIGKILL after a grace period). Every ManagedProcess is kept
 * in a registry so a test run or the demo can stop all of them on exit and
 * leave nothing behind.
 */
export class ManagedProcess {
  readonly child: ChildProcess;
  private exited: Promise<number | null>;
  exitCode: number | null = null;
  exitedAlready = false;

  constructor(readonly name: string, cmd: string, args: string[], readonly logFile: string, opts: SpawnOptions = {}) {
    const out = fs.openSync(logFile, 'a');
    this.child = spawn(cmd, args, { stdio: ['ignore', out, out], ...opts });
    fs.closeSync(out);
    this.exited = new Promise((resolve) => {
      this.child.once('exit', (code, signal) => {
        this.exitedAlready = true;
        this.exitCode = code ?? (signal ? 128 : null);
        live.delete(this);
        resolve(this.exitCode);
      });
      this.child.once('error', (err) => {
        this.exitedAlready = true;
        live.delete(this);
        fs.appendFileSync(logFile, `\nspawn error: ${err.message}\n`);
        resolve(-1);
      });
    });
    live.add(this);
  }

  get pid(): number | undefined { return this.child.pid; }

  /** The last lines of the log, for error messages. */
  tail(lines = 20): string {
    try {
      return fs.readFileSync(this.logFile, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
    } catch { return ''; }
  }

  waitExit(): Promise<number | null> { return this.exited; }

  async stop(graceMs = 10_000): Promise<void> {
    if (this.exitedAlready) return;
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => { if (!this.exitedAlready) this.child.kill('SIGKILL'); }, graceMs);
    await this.exited;
    clearTimeout(timer);
  }

  kill9(): Promise<number | null> {
    if (!this.exitedAlready) this.child.kill('SIGKILL');
    return this.exited;
  }
}

const live = new Set<ManagedProcess>();

export function liveProcesses(): ManagedProcess[] { return [...live]; }

/** Stops every process still registered (in reverse start order). */
export async function stopAll(): Promise<void> {
  for (const p of [...live].reverse()) await p.stop(5_000);
}

/** Runs a command to completion and returns its output; throws with the output on a non-zero exit. */
export function run(cmd: string, args: string[], opts: SpawnOptions & { input?: string } = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'], ...opts });
    let out = '';
    child.stdout?.on('data', (d) => { out += d; });
    child.stderr?.on('data', (d) => { out += d; });
    child.on('error', reject);
    child.on('exit', (code) => code === 0 ? resolve(out) : reject(imagoError('IMAGO_COMMAND_FAILED', `${cmd} ${args.join(' ')} exited ${code}:\n${out}`)));
    if (opts.input !== undefined) child.stdin?.end(opts.input); else child.stdin?.end();
  });
}
