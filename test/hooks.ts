import * as fs from 'node:fs';
import { stopAllFixtures } from './fixtures/servers';
import { stopAll } from '../lib/proc';
import { findProcesses, selfAndAncestors } from '../lib/proc-scan';

// Every process started during this test run inherits this marker (the local
// provider passes it on to Unew's processes too), so the final sweep below can
// find what a crashed or killed component left behind.
// .ci/run sets it for the whole run, so its own leak check finds the same processes.
const RUN = process.env.IMAGO_TEST_RUN || `${process.pid}`;
process.env.IMAGO_TEST_RUN = RUN;


function markedProcesses(): number[] {
  const skip = selfAndAncestors();
  return findProcesses((env, pid) => !skip.has(pid) && env.IMAGO_TEST_RUN === RUN);
}

// Time spent per test file, printed after the run: the suite's budget is kept
// by looking at this list, not by guessing. Time between two marks goes to the
// file of the test about to run or just run, so a file's `before` hooks
// (starting its servers) count for it.
const fileMs = new Map<string, number>();
let lastMark = Date.now();
function noteFile(file: string | undefined): void {
  const now = Date.now();
  if (file) fileMs.set(file, (fileMs.get(file) ?? 0) + now - lastMark);
  lastMark = now;
}

function printFileTimes(): void {
  if (fileMs.size < 2) return;
  const rows = [...fileMs].map(([f, ms]) => ({ f: f.replace(`${process.cwd()}/`, ''), ms })).sort((a, b) => b.ms - a.ms);
  const total = rows.reduce((a, r) => a + r.ms, 0);
  console.log(`\ntime per test file (${(total / 1000).toFixed(0)} s in all, slowest first):`);
  for (const r of rows.slice(0, 25)) console.log(`  ${(r.ms / 1000).toFixed(1).padStart(7)} s  ${r.f}`);
}

// Root hooks: after the whole run, stop every server a fixture started and
// any child process still registered, then sweep what is left, so no process
// of ours outlives the run.
export const mochaHooks = {
  beforeEach(this: Mocha.Context) { noteFile(this.currentTest?.file); },
  afterEach(this: Mocha.Context) { noteFile(this.currentTest?.file); },
  async afterAll(this: Mocha.Context) {
    printFileTimes();
    this.timeout(180_000);
    await stopAllFixtures();
    await stopAll();
    const left = markedProcesses();
    const cmd = (pid: number) => { try { return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ').slice(0, 160); } catch { return '?'; } };
    // tsx's own esbuild service is a child of this process: not a leak.
    const leaks = left.filter((pid) => !/esbuild --service/.test(cmd(pid)));
    if (leaks.length) console.error(`test run: stopping ${leaks.length} process(es) left behind:\n${leaks.map((p) => `  ${p} ${cmd(p)}`).join('\n')}`);
    for (const pid of left) { try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ } }
    // Stopped, but still a defect of some test's teardown: the run fails so it gets fixed.
    if (leaks.length) throw new Error(`${leaks.length} process(es) outlived their tests (listed above): a teardown is missing`);
    // Mocha runs without --exit: a socket, timer or child a test left open keeps this process alive.
    // Rather than hang, the run fails 30 s after the end and names what is still open. (Unref'd, so a
    // clean run exits at once.)
    setTimeout(() => {
      console.error(`test run: still running 30 s after the last test; open handles: ${process.getActiveResourcesInfo().join(', ')}. A test left them open: close them in its teardown.`);
      process.exit(1);
    }, 30_000).unref();
  },
};
