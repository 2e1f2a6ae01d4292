import { strict as assert } from 'node:assert';
import * as path from 'node:path';
import { loadPlanFile, validatePlan } from '../../plan/load';
import { preflightUold } from '../../activities/preflight';
import { mariadbFixture } from '../fixtures/servers';
import { isImagoError } from '../../lib/errors';

const EXAMPLE = path.join(__dirname, '..', '..', 'examples', 'auction', 'plan.yaml');

describe('bootstrapping: plan validation and preflight on a real MariaDB', () => {
  it('loads the example plan with defaults filled and paths made absolute', () => {
    const plan = loadPlanFile(EXAMPLE);
    assert.equal(plan.unew.provider, 'local');
    assert.ok(path.isAbsolute(plan.unew.conversion));
    assert.equal(plan.compare.minSamplesPerEndpoint, 5);
    assert.ok(Object.isFrozen(plan.unew));
  });

  it('reports every error with its path, all at once', () => {
    const plan: any = { name: 'Bad Name', system: 's', from: { version: '1' }, to: {}, uold: { ingress: [{ controlUrl: 'ftp://x', tokenRef: 'hunter2' }], db: { urlRef: 'env:X', database: 'd' } },
      unew: { database: 'd', schemaFile: 'x.sql', conversion: 'c.ts', app: { command: ['x'] }, colour: 'blue' }, switchover: { holdTimeoutMs: 'soon' } };
    try { validatePlan(plan, '/tmp'); assert.fail('should throw'); } catch (err) {
      assert.ok(isImagoError(err, 'IMAGO_PLAN_INVALID'));
      for (const expected of ['/name', '/to: missing required key \'version\'', '/uold/ingress/0/controlUrl', '/uold/ingress/0/tokenRef', "/unew: unknown key 'colour'", '/switchover/holdTimeoutMs']) {
        assert.ok(err.message.includes(expected), `mentions ${expected}:\n${err.message}`);
      }
    }
  });

  it('rejects a hold timeout that drain + flush would always exceed', () => {
    const plan: any = structuredClone(loadPlanFile(EXAMPLE));
    delete plan.planDir;
    plan.switchover = { holdTimeoutMs: 1000, drainTimeoutMs: 600, flushTimeoutMs: 600 };
    assert.throws(() => validatePlan(plan, path.dirname(EXAMPLE)), /\/switchover\/holdTimeoutMs: must exceed/);
  });

  it('preflight passes for a replication user and names what is missing otherwise', async () => {
    const db = await mariadbFixture();
    await db.createDatabase('shop');
    await db.query('CREATE TABLE shop.t (id INT PRIMARY KEY)');
    await db.createUser('repl', 'pw', ['REPLICATION SLAVE, REPLICATION CLIENT ON *.*', 'SELECT ON shop.*']);
    const ok = await preflightUold(db.urlFor('repl', 'pw', 'shop'), 'shop', { diskDir: '/tmp', minFreeBytes: 1 });
    assert.equal(ok.binlogFormat, 'ROW');
    assert.equal(ok.tables, 1);
    assert.ok(!JSON.stringify(ok).includes(':pw@'), 'no password in the report');

    await db.createUser('reader', 'pw', ['SELECT ON shop.*']);
    await assert.rejects(preflightUold(db.urlFor('reader', 'pw', 'shop'), 'shop', { diskDir: '/tmp', minFreeBytes: 1 }),
      (e: unknown) => isImagoError(e, 'IMAGO_PREFLIGHT_PRIVILEGES') && /REPLICATION SLAVE, REPLICATION CLIENT/.test(e.message));
    await assert.rejects(preflightUold(db.urlFor('repl', 'wrong', 'shop'), 'shop', { diskDir: '/tmp', minFreeBytes: 1 }),
      (e: unknown) => isImagoError(e, 'IMAGO_PREFLIGHT_UNREACHABLE') && !e.message.includes('wrong'));
    await db.query("SET GLOBAL binlog_format = 'MIXED'");
    await assert.rejects(preflightUold(db.urlFor('repl', 'pw', 'shop'), 'shop', { diskDir: '/tmp', minFreeBytes: 1 }),
      (e: unknown) => isImagoError(e, 'IMAGO_PREFLIGHT_BINLOG'));
  });
});
