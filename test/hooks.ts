import { stopAllFixtures } from './fixtures/servers';
import { stopAll } from '../lib/proc';

// Root hooks: after the whole run, stop every server a fixture started and
// any child process still registered, so no process of ours outlives the run.
export const mochaHooks = {
  async afterAll(this: Mocha.Context) {
    this.timeout(120_000);
    await stopAllFixtures();
    await stopAll();
  },
};
