import { strict as assert } from 'node:assert';
import { NotSwitched, runCutover, emptyReport } from '../../activities/cutover/driver';
import type { CutoverContext, CutoverSteps, StepName } from '../../activities/cutover/steps';
import { imagoError } from '../../lib/errors';

/** Steps that record their calls; `failAt` throws a registry error from that step. */
function fakeSteps(failAt: StepName | null, calls: string[]): CutoverSteps {
  const step = (name: StepName) => async (): Promise<any> => {
    calls.push(name);
    if (name === failAt) throw imagoError('TRANSFER_VERIFY_MISMATCH', `injected at ${name}`);
    return name === 'readFinalPosition' ? '0-1-1' : undefined;
  };
  const names: StepName[] = ['prepare', 'hold', 'waitDrained', 'readFinalPosition', 'flush', 'verifyWindow', 'smokeTest', 'switchInterceptors',
    'recordPointOfNoReturn', 'switchProvider', 'commitInterceptors', 'release'];
  const steps = Object.fromEntries(names.map((n) => [n, step(n)])) as unknown as CutoverSteps;
  steps.restore = async () => { calls.push('restore'); return []; };
  return steps;
}

const ctx = { beat: () => undefined, cancelled: new AbortController().signal } as unknown as CutoverContext;

describe('the cut-over driver: a failure before the point of no return is NotSwitched, with every interceptor restored', () => {
  // The caller finishes forward any error that is not NotSwitched: a failing prepare (e.g. the verification
  // before the hold finding a mismatch) must never be taken for one past the point of no return.
  for (const failAt of ['prepare', 'hold', 'flush', 'verifyWindow', 'switchInterceptors', 'recordPointOfNoReturn'] as const) {
    it(`${failAt} fails: NotSwitched, restored, nothing past it run`, async () => {
      const calls: string[] = [];
      const report = emptyReport(1);
      await assert.rejects(runCutover(fakeSteps(failAt, calls), ctx, report), (e: unknown) => e instanceof NotSwitched && /injected at/.test((e as Error).message));
      assert.equal(calls.at(-1), 'restore', calls.join(' → '));
      for (const later of ['switchProvider', 'commitInterceptors', 'release']) assert.ok(!calls.includes(later), `${later} ran: ${calls.join(' → ')}`);
      assert.equal(report.pointOfNoReturn, false);
    });
  }

  it('past the point of no return a failure is thrown as it is (the caller finishes forward)', async () => {
    const calls: string[] = [];
    await assert.rejects(runCutover(fakeSteps('commitInterceptors', calls), ctx, emptyReport(1)), (e: unknown) => !(e instanceof NotSwitched));
    assert.ok(!calls.includes('restore'), calls.join(' → '));
  });
});
