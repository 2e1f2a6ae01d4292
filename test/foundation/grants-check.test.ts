/**
 * The grants check of the testing phase against a real MariaDB: the account
 * the application connects as, after the schema step, against unew.grants.
 */
import { strict as assert } from 'node:assert';
import * as path from 'node:path';
import { createGrantsActivities, GRANTS_TEST_NAME } from '../../activities/grants';
import { loadPlanFile, validatePlan } from '../../plan/load';
import type { UpgradePlan } from '../../plan/types';
import type { UnewHandle } from '../../providers/provider';
import { mariadbFixture } from '../fixtures/servers';

const EXAMPLE = path.join(__dirname, '..', '..', 'examples', 'auction', 'plan.yaml');

describe('testing: the grants check on a real MariaDB', () => {
  const { checkGrants } = createGrantsActivities();
  const DB = 'grants_shop';
  let handle: UnewHandle;
  let db: Awaited<ReturnType<typeof mariadbFixture>>;
  const plan = (grants?: Record<string, unknown>): UpgradePlan => {
    const p: any = structuredClone(loadPlanFile(EXAMPLE));
    delete p.planDir;
    if (grants) p.unew.grants = grants;
    return validatePlan(p, path.dirname(EXAMPLE));
  };
  const users = ['shopapp', 'shop_app', 'shopxapp'];

  before(async () => {
    db = await mariadbFixture();
    await db.query(`DROP DATABASE IF EXISTS ${DB}`);
    await db.createDatabase(DB);
    for (const t of ['orders', 'items', '_imago_transfer_state']) await db.query(`CREATE TABLE ${DB}.${t} (id INT PRIMARY KEY)`);
    process.env.IMAGO_TEST_GRANTS_ADMIN = db.rootUrl;
    handle = { upgradeId: 'grants', provider: 'local', appUrls: [], db: { adminUrlRef: 'env:IMAGO_TEST_GRANTS_ADMIN', endpoint: `127.0.0.1:${db.port}`, database: DB, appUser: 'shopapp' }, state: {} };
  });
  beforeEach(async () => {
    for (const u of users) await db.createUser(u, 'pw', [`SELECT, INSERT, UPDATE ON \`${DB}\`.*`]); // the example plan's unew.grants
  });
  after(async () => {
    for (const u of users) for (const h of ['127.0.0.1', 'localhost', '%']) await db.query(`DROP USER IF EXISTS '${u}'@'${h}'`);
    await db.query(`DROP DATABASE IF EXISTS ${DB}`);
  });

  it('passes for exactly the planned privileges (Imago\'s own tables are not the app\'s)', async () => {
    const r = await checkGrants(handle, plan());
    assert.equal(r.name, GRANTS_TEST_NAME);
    assert.equal(r.passed, true, r.output);
    assert.match(r.output, /on 2 tables/);
  });

  it('names a missing privilege by host, table and privilege', async () => {
    for (const h of ['127.0.0.1', 'localhost', '%']) {
      await db.query(`REVOKE INSERT ON \`${DB}\`.* FROM 'shopapp'@'${h}'`);
      await db.query(`GRANT INSERT ON \`${DB}\`.items TO 'shopapp'@'${h}'`);
    }
    const r = await checkGrants(handle, plan());
    assert.equal(r.passed, false);
    assert.equal(r.exitCode, 1);
    assert.match(r.output, /'shopapp'@'%': missing: INSERT ON `grants_shop`.`orders`/);
    assert.doesNotMatch(r.output, /`items`/);
    assert.match(r.output, /docs\/grants-check\.md/);
  });

  it('flags excessive privileges: on *.*, with grant option, beyond the plan', async () => {
    await db.query(`GRANT ALL PRIVILEGES ON *.* TO 'shopapp'@'localhost' WITH GRANT OPTION`);
    await db.query(`GRANT DROP ON \`${DB}\`.* TO 'shopapp'@'%'`);
    const r = await checkGrants(handle, plan());
    assert.equal(r.passed, false);
    assert.match(r.output, /'shopapp'@'localhost': excessive: SUPER ON \*\.\*/);
    assert.match(r.output, /WITH GRANT OPTION/);
    assert.match(r.output, /'shopapp'@'%': excessive: DROP ON `grants_shop`\.\*/);
  });

  it('per-table needs from the plan; a table the plan names but Unew lacks is reported', async () => {
    for (const h of ['127.0.0.1', 'localhost', '%']) await db.query(`REVOKE INSERT ON \`${DB}\`.* FROM 'shopapp'@'${h}'`);
    for (const h of ['127.0.0.1', 'localhost', '%']) await db.query(`GRANT INSERT ON \`${DB}\`.orders TO 'shopapp'@'${h}'`);
    const ok = await checkGrants(handle, plan({ privileges: ['SELECT', 'INSERT', 'UPDATE'], tables: { items: ['SELECT', 'UPDATE'] } }));
    assert.equal(ok.passed, true, ok.output);
    const typo = await checkGrants(handle, plan({ privileges: ['SELECT', 'INSERT', 'UPDATE'], tables: { items: ['SELECT', 'UPDATE'], order: ['SELECT'] } }));
    assert.equal(typo.passed, false);
    assert.match(typo.output, /unew\.grants\.tables names 'order'/);
  });

  it('matches the account name exactly (LIKE wildcards escaped) and says when the account has nothing', async () => {
    // Unescaped, 'shop_app' would be a pattern that also matches 'shopxapp' and its extra grant.
    await db.query(`GRANT DROP ON \`${DB}\`.* TO 'shopxapp'@'%'`);
    const r = await checkGrants({ ...handle, db: { ...handle.db, appUser: 'shop_app' } }, plan());
    assert.equal(r.passed, true, r.output);
    const none = await checkGrants({ ...handle, db: { ...handle.db, appUser: 'nobody' } }, plan());
    assert.equal(none.passed, false);
    assert.match(none.output, /has no privileges at all/);
  });

  it('a privilege the plan does not list is excessive, even on the app\'s own database', async () => {
    for (const h of ['127.0.0.1', 'localhost', '%']) await db.query(`GRANT DELETE ON \`${DB}\`.* TO 'shopapp'@'${h}'`);
    const r = await checkGrants(handle, plan());
    assert.equal(r.passed, false);
    assert.match(r.output, /excessive: DELETE ON `grants_shop`\.\*/);
    assert.equal((await checkGrants(handle, plan({ privileges: ['SELECT', 'INSERT', 'UPDATE', 'DELETE'] }))).passed, true);
  });

  it('rejects unknown or empty privileges in the plan with their path', () => {
    assert.throws(() => plan({ privileges: ['SELECT', 'READ'] }), /\/unew\/grants\/privileges\/1/);
    assert.throws(() => plan({ privileges: [] }), /\/unew\/grants\/privileges/);
  });
});
