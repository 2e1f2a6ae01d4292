import { strict as assert } from 'node:assert';
import { evaluateGate } from '../../workflows/upgrade-state';
import type { TestResult } from '../../workflows/status';

const test = (name: string, passed: boolean, output = ''): TestResult => ({ name, passed, durationMs: 1, exitCode: passed ? 0 : 1, output });

describe('the switchover gate (evaluateGate)', () => {
  it('passes only when every test passed, the compare verdict passed and verification found no difference', () => {
    const ok = evaluateGate([test('a', true)], { pass: true, reasons: [], failures: [], samples: 10, report: null, unewFresh: true, freshness: '' }, { differences: 0, checked: 5, examples: [], position: '0-1-1' });
    assert.equal(ok.pass, true);
    assert.deepEqual(ok.reasons, []);
    assert.deepEqual(ok.tests, { passed: 1, failed: 0 });
  });

  it('names every failing rule at once', () => {
    const g = evaluateGate([test('contract', false, 'boom')], { pass: false, reasons: ['GET /x: 3 of 10 differ'], failures: [{ rule: 'regression', endpoint: 'GET /x', reason: 'GET /x: 3 of 10 differ' }], samples: 10, report: null, unewFresh: true, freshness: '' }, { differences: 2, checked: 5, examples: [], position: '0-1-1' });
    assert.equal(g.pass, false);
    assert.equal(g.reasons.length, 3);
    assert.match(g.reasons[0], /test 'contract' failed/);
    assert.match(g.reasons[1], /^compare: GET \/x/);
    assert.match(g.reasons[2], /verification: 2 rows differ/);
  });
});
