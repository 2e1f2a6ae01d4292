import * as fs from 'node:fs';
import { readEnviron } from '../../lib/proc-scan';

/**
 * Processes of a universe outlive the worker that started them (a worker may
 * be killed and restarted mid-upgrade), so the local provider finds them again
 * by pid — and checks that the pid still belongs to this universe (its
 * environment carries IMAGO_UNIVERSE=<id>, or its command line names the
 * universe's folder) before it adopts or kills it, since pids get reused.
 */
export function isOurs(pid: number | undefined, marker: string): boolean {
  if (!pid) return false;
  try {
    if (fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(marker)) return true;
  } catch {
    return false;
  }
  return readEnviron(pid)?.IMAGO_UNIVERSE === marker;
}

export function alive(pid: number): boolean {
  try { process.kill(pid, 0); } catch { return false; }
  try { return !fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.startsWith('Z'); } catch { return false; }
}

/** SIGTERM, wait up to graceMs, then SIGKILL; resolves when the process is gone. */
export async function terminate(pid: number, graceMs = 10_000): Promise<void> {
  if (!alive(pid)) return;
  try { process.kill(pid, 'SIGTERM'); } catch { return; }
  const deadline = Date.now() + graceMs;
  while (alive(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  if (alive(pid)) {
    try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
    while (alive(pid)) await new Promise((r) => setTimeout(r, 20));
  }
}
