import { strict as assert } from 'node:assert';
import { evaluateGate, failureLines, needsSamplesOnly, unewFailed } from '../../workflows/upgrade-state';
import type { TestResult } from '../../workflows/status';

const test = (name: string, passed: boolean, output = ''): TestResult => ({ name, passed, durationMs: 1, exitCode: passed ? 0 : 1, output });

describe('the switchover gate (evaluateGate)', () => {
  it('passes only when every test passed, the compare verdict passed and verification found no difference', () => {
    const ok = evaluateGate([test('a', true)], { pass: true, reasons: [], failures: [], samples: 10, report: null, unewFresh: true, freshness: '' }, { differences: 0, checked: 5, examples: [], position: '0-1-1' });
    assert.equal(ok.pass, true);
    assert.deepEqual(ok.reasons, []);
    assert.deepEqual(ok.tests, { passed: 1, failed: 0 });
  });

  it('names every failing rule at once, each compare reason with its rule', () => {
    const failures = [
      { rule: 'regression' as const, endpoint: 'GET /x', reason: 'GET /x: 3 of 10 differ' },
      { rule: 'latency' as const, endpoint: 'GET /y', reason: 'GET /y: p99 900 ms vs 100 ms' },
    ];
    const g = evaluateGate([test('contract', false, 'boom')], {
      pass: false, reasons: [...failures.map((f) => f.reason), 'Unew was not kept up to date during testing (lag)'], failures, samples: 10, report: null, unewFresh: false, freshness: 'lag',
    }, { differences: 2, checked: 5, examples: [], position: '0-1-1' });
    assert.equal(g.pass, false);
    assert.equal(g.reasons.length, 5);
    assert.match(g.reasons[0], /^test 'contract' failed \(exit 1\): boom$/);
    assert.match(g.reasons[1], /^compare regression: GET \/x/);
    assert.match(g.reasons[2], /^compare latency: GET \/y/);
    assert.match(g.reasons[3], /^compare: Unew was not kept up to date/);
    assert.match(g.reasons[4], /verification: 2 rows differ/);
  });

  it("a failed test's reason names its first failing lines (an error, ECONNREFUSED), not its last lines", () => {
    const output = [
      '> contract@1 test', 'running 12 checks', 'GET /items ok', 'Error: connect ECONNREFUSED 127.0.0.1:4010',
      '    at TCPConnectWrap.afterConnect', 'AssertionError: expected 200, got 500', 'cleanup done', 'summary: 10 passed', 'bye',
    ].join('\n');
    const g = evaluateGate([test('contract', false, output)], null, null);
    assert.equal(g.reasons[0], "test 'contract' failed (exit 1): Error: connect ECONNREFUSED 127.0.0.1:4010 | AssertionError: expected 200, got 500");
    assert.deepEqual(failureLines('one\ntwo\nthree\nfour\n'), ['two', 'three', 'four'], 'no failing line: the last ones');
    assert.equal(evaluateGate([test('t', false, '')], null, null).reasons[0], "test 't' failed (exit 1), no output");
    assert.ok(failureLines(`Error: ${'x'.repeat(500)}`)[0].length <= 160, 'a long line is cut');
  });

  it('tells a verdict that wants more pairs from a failure of Unew by the typed rule, not the text', () => {
    const f = (rule: 'min-samples' | 'no-traffic' | 'regression' | 'server-error' | 'latency', reason = 'over 225 samples') => ({ rule, endpoint: null, reason });
    assert.equal(needsSamplesOnly([f('min-samples'), f('no-traffic')]), true);
    assert.equal(needsSamplesOnly([f('min-samples'), f('regression')]), false);
    assert.equal(unewFailed([f('min-samples'), f('regression')]), true, 'a regression reason that mentions samples is still a regression');
    assert.equal(unewFailed([f('server-error')]), true);
    assert.equal(unewFailed([f('min-samples'), f('latency')]), false, 'latency is judged at the end of the window');
    assert.equal(unewFailed([]), false);
  });
});
