/**
 * The demo's teardown: everything the demo starts registers how to stop it,
 * and run() stops them in reverse order, once, whatever ended the demo (its
 * end, an error, SIGINT or SIGTERM). Each step is bounded, so one that hangs
 * (a worker waiting for an activity) cannot keep the others from running.
 * The last word is sweep(): every process still carrying the run's marker in
 * its environment is killed, synchronously, right before the process exits.
 */
import { findProcesses, selfAndAncestors } from '../../lib/proc-scan';
import { imagoError } from '../../lib/errors';

interface Step { name: string; stop: () => Promise<void>; timeoutMs: number }

export class Teardown {
  private readonly steps: Step[] = [];
  private running: Promise<void> | null = null;

  /** Registers a stop; steps run last-in, first-out. */
  push(name: string, stop: () => Promise<void>, timeoutMs = 30_000): void {
    if (this.running) throw imagoError('IMAGO_INTERNAL', `teardown already running: cannot add '${name}'`);
    this.steps.push({ name, stop, timeoutMs });
  }

  /** Runs every step once (a second call waits for the first); a failed or timed-out step is reported and skipped. */
  run(log: (msg: string) => void): Promise<void> {
    this.running ??= (async () => {
      for (const step of this.steps.splice(0).reverse()) {
        let timer: NodeJS.Timeout | undefined;
        const bound = new Promise<'timeout'>((resolve) => { timer = setTimeout(() => resolve('timeout'), step.timeoutMs); });
        try {
          const r = await Promise.race([step.stop().then(() => 'done' as const), bound]);
          if (r === 'timeout') log(`clean-up: ${step.name} did not stop within ${step.timeoutMs / 1000} s; going on (what is left is stopped at the end)`);
        } catch (err) {
          log(`clean-up: ${step.name}: ${(err as Error).message}`);
        } finally {
          clearTimeout(timer);
        }
      }
    })();
    return this.running;
  }
}


/**
 * Kills (SIGKILL) every process whose environment matches: what the graceful
 * stops missed. Synchronous on purpose: called right before process.exit, no
 * other code (an activity still running in the worker) can start a process
 * between the sweep and the exit. Returns the pids it killed.
 */
export function sweep(matches: (env: Record<string, string>) => boolean): number[] {
  const skip = selfAndAncestors();
  const pids = findProcesses((env, pid) => !skip.has(pid) && matches(env));
  for (const pid of pids) { try { process.kill(pid, 'SIGKILL'); } catch { /* already gone */ } }
  return pids;
}
