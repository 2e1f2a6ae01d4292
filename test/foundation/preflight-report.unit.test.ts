/** The preflight's report (activities/preflight/report.ts) and its text form (client/commands/preflight.ts): pure. */
import { strict as assert } from 'node:assert';
import { ReportBuilder, preflightError } from '../../activities/preflight';
import { checkFromError } from '../../activities/preflight/report';
import { commandCheck, diskCheck } from '../../activities/preflight/provider';
import { formatPreflight } from '../../client/commands/preflight';
import { palette } from '../../client/output';
import { imagoError, isImagoError } from '../../lib/errors';

describe('preflight report', () => {
  it('a failure keeps a registry code, never a driver\'s own; the error names every failure with the first one\'s code', () => {
    const driver = Object.assign(new Error("Access denied for user 'x'@'h'"), { code: 'ER_ACCESS_DENIED_ERROR' });
    assert.equal(checkFromError('reachable', driver).code, undefined);
    assert.equal(checkFromError('x', imagoError('INGRESS_UNAUTHORIZED', 'GET /status')).code, 'INGRESS_UNAUTHORIZED');
    const r = new ReportBuilder();
    r.ok('uold', 'reachable', 'fine');
    r.add('tables', { name: 'nokey', status: 'fail', code: 'TRANSFER_NO_PRIMARY_KEY', detail: 'no key' });
    r.add('interceptors', checkFromError('interceptor', driver));
    r.add('samples', { name: 'empty', status: 'warn', detail: 'empty' });
    const report = r.report();
    assert.equal(report.ok, false);
    const err = preflightError(report);
    assert.ok(isImagoError(err, 'TRANSFER_NO_PRIMARY_KEY'));
    assert.match(err.detail, /^2 preflight check\(s\) failed: \[tables\] nokey: no key; \[interceptors\] interceptor: Access denied/);
    const only = new ReportBuilder();
    only.add('provider', checkFromError('x', new Error('plain')));
    assert.ok(isImagoError(preflightError(only.report()), 'IMAGO_PREFLIGHT_FAILED'));
  });

  it('warnings alone leave it ok; the text lists groups in order, failures with their code and fix', () => {
    const r = new ReportBuilder();
    r.add('temporal', { name: 'worker', status: 'warn', detail: 'no worker polls', fix: 'imago worker' });
    r.add('uold', { name: 'binlog_format', status: 'ok', detail: 'ROW' });
    r.skip('samples: no scratch database');
    const report = r.report();
    assert.equal(report.ok, true);
    const text = formatPreflight(report, 'plan.yaml', palette({ isTTY: false, env: {} }));
    assert.match(text, /^preflight plan\.yaml: ready, 1 warning\(s\), 1 ok \(\d+\.\d s\)\n\nuold\n {2}ok {4}binlog_format {2}ROW\n\ntemporal\n {2}warn {2}worker {9}no worker polls\n {8}fix:\n {10}imago worker\n\nnot checked\n {2}- samples: no scratch database\n$/);
  });

  it("local provider: the app's command on PATH or relative to the plan's folder; a folder not there yet", () => {
    assert.equal(commandCheck('sh', '/tmp').status, 'ok');
    const missing = commandCheck('./start.sh', '/nonexistent-plan-dir');
    assert.deepEqual([missing.status, missing.code], ['fail', 'IMAGO_PLAN_INVALID']);
    assert.match(missing.detail, /^\/unew\/app\/command\/0: \/nonexistent-plan-dir\/start\.sh is not an executable file/);
    assert.match(commandCheck('no-such-program-xyz', '/tmp').detail, /'no-such-program-xyz' is not on PATH/);
    assert.equal(diskCheck('/tmp/imago-not-yet/universes').status, 'ok', 'a folder to be created is checked where it will be');
  });
});
