/**
 * The plan's rollback keys (postSwitchover.rollback, postSwitchover.autoRollback):
 * defaults, the rules across keys, and the writer account's grants as the
 * preflight reads them. No server.
 */
import { strict as assert } from 'node:assert';
import { missingWriterPrivileges } from '../../activities/preflight/rollback';
import { checkPlan } from '../../plan/load';
import { EXAMPLE_DIR, exampleFile } from './example-plan';


describe('plan: rollback after the switchover', () => {
  it('off by default, with its defaults filled', () => {
    const { plan, errors } = checkPlan(exampleFile(), EXAMPLE_DIR);
    assert.deepEqual(errors, []);
    assert.equal(plan!.postSwitchover.rollback?.enabled, false);
    assert.equal(plan!.postSwitchover.rollback?.onRolledBack, 'keep-unew');
    assert.equal(plan!.postSwitchover.autoRollback?.enabled, false);
    assert.equal(plan!.postSwitchover.autoRollback?.maxErrorRate, 0.05);
  });

  it('rollback needs the writer account; automatic rollback needs rollback; both errors at once', () => {
    const p = exampleFile();
    p.postSwitchover.rollback = { enabled: true };
    p.postSwitchover.autoRollback = { enabled: true };
    assert.deepEqual(checkPlan(p, EXAMPLE_DIR).errors, [
      "/postSwitchover/rollback/uoldWriterUrlRef: required when rollback is enabled (an account that may write to Uold's database, used only from the point of no return)",
    ]);
    p.postSwitchover.rollback = { enabled: false, uoldWriterUrlRef: 'env:W' };
    assert.deepEqual(checkPlan(p, EXAMPLE_DIR).errors, ['/postSwitchover/autoRollback/enabled: needs postSwitchover.rollback.enabled']);
    p.postSwitchover.rollback = { enabled: true, uoldWriterUrlRef: 'env:W', bogus: 1 };
    assert.match(checkPlan(p, EXAMPLE_DIR).errors.join('\n'), /\/postSwitchover\/rollback.*bogus/);
  });

  it("the writer account's grants: each missing privilege named; ALL or a global grant suffices", () => {
    assert.deepEqual(missingWriterPrivileges(['GRANT USAGE ON *.* TO `w`@`%`', 'GRANT SELECT, INSERT ON `auction`.* TO `w`@`%`'], 'auction'), ['UPDATE', 'DELETE', 'CREATE', 'DROP']);
    assert.deepEqual(missingWriterPrivileges(['GRANT ALL PRIVILEGES ON `auction`.* TO `w`@`%`'], 'auction'), []);
    assert.deepEqual(missingWriterPrivileges(['GRANT SELECT, INSERT, UPDATE, DELETE, CREATE, DROP ON *.* TO `w`@`%`'], 'auction'), []);
    assert.deepEqual(missingWriterPrivileges(['GRANT ALL PRIVILEGES ON `other`.* TO `w`@`%`'], 'auction'), ['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'CREATE', 'DROP']);
  });
});
