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

// Root hooks: after the whole run, stop every server a fixture started and
// any child process still registered, then sweep what is left, so no process
// of ours outlives the run.
export const mochaHooks = {
  async afterAll(this: Mocha.Context) {
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
  },
};
