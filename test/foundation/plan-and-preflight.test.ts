import { strict as assert } from 'node:assert';
import * as path from 'node:path';
import { loadPlanFile, validatePlan } from '../../plan/load';
import { ReportBuilder, type PreflightReport } from '../../activities/preflight';
import { checkUoldServer } from '../../activities/preflight/uold';
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

  it("preflight of Uold: passes for a replication user; names what is missing with the SQL that fixes it, and the fix works", async () => {
    const db = await mariadbFixture();
    await db.createDatabase('shop');
    await db.query('CREATE TABLE shop.t (id INT PRIMARY KEY)');
    await db.createUser('repl', 'pw', ['REPLICATION SLAVE, REPLICATION CLIENT ON *.*', 'SELECT ON shop.*']);
    const uold = async (url: string): Promise<PreflightReport> => {
      const r = new ReportBuilder();
      await (await checkUoldServer(r, url, 'shop'))?.end();
      return r.report();
    };
    const check = (rep: PreflightReport, name: string) => rep.checks.find((c) => c.name === name)!;
    const ok = await uold(db.urlFor('repl', 'pw', 'shop'));
    assert.equal(ok.ok, true, JSON.stringify(ok.checks, null, 1));
    assert.equal(check(ok, 'binlog_format').detail, 'ROW');
    assert.match(check(ok, 'replication privileges').detail, /'repl'@'127.0.0.1' has REPLICATION SLAVE, REPLICATION CLIENT on \*\.\* and SELECT on shop/);
    assert.ok(!JSON.stringify(ok).includes(':pw@'), 'no password in the report');
    assert.doesNotMatch(JSON.stringify(ok), /\*[0-9A-F]{40}/, 'no password hash in the report');

    await db.createUser('reader', 'pw', ['SELECT ON shop.*']);
    const weak = check(await uold(db.urlFor('reader', 'pw', 'shop')), 'replication privileges');
    assert.deepEqual([weak.status, weak.code], ['fail', 'IMAGO_PREFLIGHT_PRIVILEGES']);
    assert.match(weak.detail, /lacks REPLICATION SLAVE, REPLICATION CLIENT ON \*\.\*/);
    assert.equal(weak.fix, "GRANT REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO 'reader'@'127.0.0.1';");
    await db.query(weak.fix!);
    assert.equal(check(await uold(db.urlFor('reader', 'pw', 'shop')), 'replication privileges').status, 'ok', 'the printed fix is enough');

    await db.createUser('admin', 'pw', ['ALL PRIVILEGES ON *.*']);
    const wide = check(await uold(db.urlFor('admin', 'pw', 'shop')), 'least privilege');
    assert.equal(wide.status, 'warn');
    assert.match(wide.fix!, /^REVOKE ALL PRIVILEGES ON \*\.\* FROM 'admin'@'127.0.0.1';\nGRANT REPLICATION SLAVE, REPLICATION CLIENT ON \*\.\* TO 'admin'@'127.0.0.1';$/);

    const unreachable = check(await uold(db.urlFor('repl', 'wrong', 'shop')), 'reachable');
    assert.equal(unreachable.code, 'IMAGO_PREFLIGHT_UNREACHABLE');
    assert.ok(!unreachable.detail.includes('wrong'), unreachable.detail);

    await db.query("SET GLOBAL binlog_format = 'MIXED'");
    const mixed = check(await uold(db.urlFor('repl', 'pw', 'shop')), 'binlog_format');
    assert.deepEqual([mixed.status, mixed.code], ['fail', 'IMAGO_PREFLIGHT_BINLOG']);
    assert.match(mixed.detail, /binlog_format is MIXED, not ROW/);
    assert.match(mixed.fix!, /^SET GLOBAL binlog_format = 'ROW';/);
    await db.query("SET GLOBAL binlog_format = 'ROW'");
  });
});
