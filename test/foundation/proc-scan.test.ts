import { strict as assert } from 'node:assert';
import { spawn, type ChildProcess } from 'node:child_process';
import { findProcesses, processesWithEnv, readEnviron } from '../../lib/proc-scan';

const MARK = 'IMAGO_PROC_SCAN_TEST';

/** Polls check() every 50 ms until it holds, or gives up after timeoutMs. */
async function until(check: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
}

describe('foundation: /proc environ scan (lib/proc-scan)', () => {
  const marker = `${process.pid}-${Date.now()}-${Math.random().toString(36).slice(2)}`;
  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();

  before(() => {
    child = spawn(process.execPath, ['-e', 'setTimeout(()=>{},30000)'], { env: { ...process.env, [MARK]: marker }, stdio: 'ignore' });
    exited = new Promise((resolve) => child!.once('exit', () => resolve()));
  });

  after(async () => {
    if (child && child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await exited;
    }
  });

  it('finds exactly the marked child, and reads its marker', async () => {
    const pid = child!.pid!;
    assert.ok(pid > 0);
    const mine = () => findProcesses((env) => env[MARK] === marker);
    await until(() => mine().length > 0);
    assert.deepEqual(mine(), [pid]);
    assert.deepEqual(processesWithEnv(MARK, marker), [pid]);
    assert.ok(processesWithEnv(MARK).includes(pid));
    assert.equal(readEnviron(pid)?.[MARK], marker);
  });

  it('no longer finds the child once it is killed', async () => {
    const pid = child!.pid!;
    child!.kill('SIGKILL');
    await until(() => processesWithEnv(MARK, marker).length === 0);
    assert.deepEqual(processesWithEnv(MARK, marker), []);
    await exited;
    // Reaped: its pid is gone (null) or, if already reused, no longer carries the marker.
    assert.notEqual(readEnviron(pid)?.[MARK], marker);
  });

  it('gives null for a pid that does not exist', () => {
    assert.equal(readEnviron(2 ** 22 + 1), null); // above the kernel's PID_MAX_LIMIT
  });

  it('reads names as plain keys, not through Object.prototype', () => {
    const env = readEnviron(process.pid);
    assert.ok(env);
    assert.equal('constructor' in env, false);
  });
});
