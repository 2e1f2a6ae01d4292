import * as fs from 'node:fs';

/**
 * Processes we start are marked with environment variables (IMAGO_UNIVERSE,
 * IMAGO_TEST_RUN) and found again by reading /proc/<pid>/environ. The safety
 * points, which every caller relies on:
 * - A pid alone proves nothing: pids get reused, so a process is ours only if
 *   its environment still carries our marker (compare the marker, not the pid).
 * - /proc changes under our feet: a process may exit between listing /proc and
 *   reading its environ, and other users' processes are unreadable (EACCES).
 *   Such entries are skipped (null), never thrown.
 * - A zombie or a kernel thread has an empty environ, so it carries no marker
 *   and no predicate that looks for one matches it.
 * Linux only (like the local provider).
 */

/** A process's environment; a null prototype, so names such as `constructor` or `__proto__` are plain keys. */
export type Environ = Record<string, string>;

/**
 * The initial environment of process pid (what it was started with), or null
 * when the process is gone or its environ cannot be read. If a name occurs
 * twice, the first occurrence wins, as with getenv(3).
 */
export function readEnviron(pid: number): Environ | null {
  let raw: string;
  try { raw = fs.readFileSync(`/proc/${pid}/environ`, 'utf8'); } catch { return null; }
  const env: Environ = Object.create(null);
  for (const entry of raw.split('\0')) {
    const eq = entry.indexOf('=');
    if (eq <= 0) continue; // the trailing '' after the last NUL, or a malformed entry
    const name = entry.slice(0, eq);
    if (!(name in env)) env[name] = entry.slice(eq + 1);
  }
  return env;
}

/** The live pids (numeric entries of /proc) whose readable environment satisfies predicate. */
export function findProcesses(predicate: (env: Environ, pid: number) => boolean): number[] {
  const pids: number[] = [];
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    const pid = Number(d);
    const env = readEnviron(pid);
    if (env && predicate(env, pid)) pids.push(pid);
  }
  return pids;
}

/** The pids whose environment sets name (to value, when given). */
export function processesWithEnv(name: string, value?: string): number[] {
  return findProcesses((env) => name in env && (value === undefined || env[name] === value));
}

/** This process and its ancestors (npm, tsx, a shell): they may carry a marker too, and are never a sweep's to kill. */
export function selfAndAncestors(): Set<number> {
  const out = new Set<number>();
  for (let pid = process.pid; pid > 1 && !out.has(pid);) {
    out.add(pid);
    try { pid = Number(fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ')[1]); } catch { break; }
  }
  return out;
}
