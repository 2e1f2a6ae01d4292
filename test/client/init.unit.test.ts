/**
 * `imago init`'s pure parts: pairing two catalogs, the conversion module it
 * writes (loaded as the worker loads it, and run on rows), the plan it writes
 * (valid, every key of the schema there under its comment), and the plan
 * test's environment (only PATH, UNEW_URL and what the plan declares).
 */
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as YAML from 'yaml';
import type { ColumnInfo, TableInfo } from '../../client/init/catalog';
import { conversionSource } from '../../client/init/conversion-source';
import { planName, relativeOrAbsolute } from '../../client/init/generate';
import { matchSchemas } from '../../client/init/match';
import { planSource } from '../../client/init/plan-source';
import { parseArgv } from '../../client/commands/init';
import { testEnv } from '../../activities/testing';
import { checkPlan } from '../../plan/load';
import { planSchema } from '../../plan/schema';
import { conversionShapeProblems } from '../../plan/deep-check';
import type { ConversionModule } from '../../transfer/conversion';

const col = (name: string, type = 'int(11)', more: Partial<ColumnInfo> = {}): ColumnInfo =>
  ({ name, type, nullable: false, hasDefault: false, generated: false, autoIncrement: false, ...more });
const table = (name: string, columns: ColumnInfo[], key = ['id']): TableInfo => ({ name, columns, key });

const OLD: TableInfo[] = [
  table('regions', [col('id'), col('name', 'varchar(64)')]),
  table('users', [col('id'), col('name', 'varchar(101)'), col('balance', 'decimal(12,2)', { hasDefault: true }), col('rating', 'int(11)')]),
  table('buy_now', [col('id'), col('buyer_id'), col('item_id'), col('qty')]),
  table('logs', [col('id'), col('line', 'text')]),
];
const NEW: TableInfo[] = [
  table('regions', [col('id', 'int'), col('name', 'varchar(64)'), col('note', 'varchar(100)', { nullable: true, hasDefault: true }), col('upper_name', 'varchar(64)', { generated: true, nullable: true })]),
  table('users', [col('id'), col('first_name', 'varchar(50)'), col('balance_cents', 'bigint(20)', { hasDefault: true }), col('rating', 'bigint(20)')]),
  table('purchases', [col('id'), col('buyer_id'), col('item_id'), col('qty')]),
  table('sequence', [col('id'), col('next_id')]),
];

describe('imago init: pairing Uold with the new schema', () => {
  const m = matchSchemas(OLD, NEW);
  const by = (t: string) => m.tables.find((x) => x.source.name === t)!;

  it('same name, same columns and key, new columns Unew fills (nullable, generated): an identity', () => {
    const r = by('regions');
    assert.deepEqual([r.how, r.identity, r.target?.name], ['same-name', true, 'regions']);
    assert.deepEqual(r.columns.map((c) => `${c.column.name}:${c.kind}`), ['id:same', 'name:same', 'note:filled'], 'int(11) = int; generated columns are never written');
  });

  it('a new NOT NULL column without default is a TODO, with the old column it may come from; a changed type and dropped columns are named', () => {
    const u = by('users');
    assert.equal(u.identity, false);
    assert.deepEqual(u.columns.map((c) => `${c.column.name}:${c.kind}`), ['id:same', 'first_name:todo', 'balance_cents:filled', 'rating:type-changed']);
    assert.deepEqual(u.columns[1], { kind: 'todo', column: NEW[1].columns[1], hint: 'from users.name (varchar(101))?' });
    assert.deepEqual(u.dropped.map((c) => c.name), ['name', 'balance']);
  });

  it('a renamed table is guessed from its columns (marked for review); a table with no counterpart has no target; unfed new tables listed', () => {
    assert.deepEqual([by('buy_now').how, by('buy_now').target?.name, by('buy_now').identity, by('buy_now').overlap], ['by-columns', 'purchases', true, { shared: 4, of: 4 }]);
    assert.deepEqual([by('logs').how, by('logs').target], ['none', undefined]);
    assert.deepEqual(m.unfed.map((t) => t.name), ['sequence']);
  });
});

describe('imago init: the conversion module it writes', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'imago-init-unit-'));
  after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const source = conversionSource({ name: 'shop 1 -> 2', from: 'test catalogs', match: matchSchemas(OLD, NEW) });
  const file = path.join(dir, 'conversion.ts');
  fs.writeFileSync(file, source);
  const conv = (require(file) as { default: ConversionModule }).default;
  const entry = (s: string) => conv.tables.find((t) => t.source === s)!;

  it('imports only types from imago/conversion, and loads as the worker loads it: a ConversionModule', () => {
    assert.match(source, /^import type \{ ConversionModule \} from 'imago\/conversion';$/m);
    assert.equal(source.match(/^import /gm)!.length, 1);
    assert.deepEqual(conversionShapeProblems(conv), []);
    assert.deepEqual(conv.tables.map((t) => t.source), ['regions', 'users', 'buy_now', 'logs']);
    assert.deepEqual(conv.ignoreTables, []);
  });

  it('an identity copies the row as it is; a stub maps same-named columns and throws at its first TODO, naming the column', () => {
    assert.deepEqual(entry('regions').convert({ id: 1, name: 'North' }), { regions: [{ id: 1, name: 'North' }] });
    assert.deepEqual(entry('buy_now').targets, [{ table: 'purchases', key: ['id'] }]);
    assert.throws(() => entry('users').convert({ id: 1, name: 'Ada Lovelace', balance: '1.00', rating: 3 }), /TODO in the conversion: users\.first_name \(varchar\(50\) NOT NULL\)/);
    assert.throws(() => entry('logs').convert({ id: 1, line: 'x' }), /logs: Unew has no table 'logs'/);
  });

  it('every decision is a TODO comment: the TODO column, the changed type, the dropped columns, the guessed target', () => {
    const todos = source.split('\n').map((l) => l.trim()).filter((l) => l.startsWith('// TODO '));
    assert.deepEqual(todos, [
      '// TODO users.first_name varchar(50) NOT NULL: not in Uold and Unew cannot fill it; compute it (from users.name (varchar(101))?)',
      '// TODO users.rating: int(11) NOT NULL in Uold, bigint(20) NOT NULL here; convert the value if copying it is not enough',
      "// TODO Uold's users.name (varchar(101) NOT NULL) reaches no new column: the source of first_name?",
      "// TODO Uold's users.balance (decimal(12,2) NOT NULL DEFAULT) reaches no new column: the source of balance_cents?",
      "// TODO target 'purchases' guessed from shared columns (4 of 4): confirm it",
      "// TODO Unew has no table 'logs': name its target table(s) (new tables no old table feeds: sequence) and map its columns, or move 'logs' to ignoreTables",
    ]);
    assert.match(source, /rating: +row\.rating, \/\/ TODO int\(11\) NOT NULL → bigint\(20\) NOT NULL/);
    assert.match(source, /\/\/ balance_cents: left out, Unew fills it \(bigint\(20\) NOT NULL DEFAULT\)/);
  });
});

describe('imago init: the plan it writes', () => {
  const values = {
    version: 1, name: 'shop-1-to-2', system: 'shop', from: { version: '1' }, to: { version: '2' },
    uold: { ingress: [{ controlUrl: 'http://10.0.0.5:8081', tokenRef: 'env:IMAGO_INGRESS_TOKEN' }], db: { urlRef: 'env:UOLD', database: 'shop' } },
    unew: { provider: 'local', database: 'shop', schemaFile: 'schema.sql', conversion: 'conversion.ts', app: { command: ['./start.sh', '--port', '{unewUrl}'], healthPath: '/health' } },
  };
  const text = planSource({ header: ['written by a test'], values, notes: { '/unew/app/command': 'TODO: yours.' } });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'imago-init-plan-'));
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('is a valid plan: the values given, every other key at its default', () => {
    fs.writeFileSync(path.join(dir, 'schema.sql'), 'CREATE TABLE t (id INT PRIMARY KEY);');
    fs.writeFileSync(path.join(dir, 'conversion.ts'), 'export default {}');
    const parsed = YAML.parse(text);
    const { plan, errors } = checkPlan(parsed, dir);
    assert.deepEqual(errors, []);
    assert.equal(plan!.uold.db.urlRef, 'env:UOLD');
    assert.deepEqual(plan!.unew.app.command, ['./start.sh', '--port', '{unewUrl}']);
    assert.deepEqual(parsed.unew.local, {}, 'a section whose keys are all commented out is {}');
    assert.equal(parsed.compare.limits.queueSize, 2000);
    assert.deepEqual(parsed.tests, []);
    // Optional sections nobody gave stay commented out: a TLS section present would ask for TLS.
    assert.equal(plan!.uold.db.tls, undefined);
    assert.equal(plan!.unew.tls, undefined);
    assert.match(text, /^ {4}# tls:$/m);
  });

  it('every key of the schema is in the file, each under a comment; optional ones commented out with an example', () => {
    const lines = text.split('\n');
    const walk = (schema: any, at: string, indent: string, from: number): number => {
      let i = from;
      for (const [k, p] of Object.entries<any>(schema.properties ?? {})) {
        if (['/$schema', '/unew/aws'].includes(`${at}/${k}`)) continue;
        const re = new RegExp(`^${indent}(# )?${k.replace('$', '\\$')}:`);
        const found = lines.findIndex((l, j) => j >= i && re.test(l));
        assert.ok(found > 0, `${at}/${k} is in the plan`);
        assert.match(lines[found - 1], /^\s*#/, `${at}/${k} has a comment above it`);
        i = found + 1;
        if (p.type === 'object' && p.properties) i = walk(p, `${at}/${k}`, `${indent}  `, i);
      }
      return i;
    };
    walk(JSON.parse(JSON.stringify(planSchema)), '', '', 0);
    assert.match(text, /^ {4}# baseDir: \/var\/lib\/imago\/universes$/m);
    assert.match(text, /^# - env: The test's environment besides PATH and UNEW_URL/m);
    assert.match(text, /^ {4}# TODO: yours\.\n {4}command: /m);
  });
});

describe('imago init: small helpers', () => {
  it('plan names, argv, paths', () => {
    assert.equal(planName('Shop 1.2 to 2.0!'), 'shop-1-2-to-2-0');
    assert.equal(planName('--x'), 'x');
    assert.deepEqual(parseArgv('["node", "a b.js"]'), ['node', 'a b.js']);
    assert.deepEqual(parseArgv('  node  server.js '), ['node', 'server.js']);
    assert.throws(() => parseArgv('[1]'), /CLIENT_USAGE/);
    assert.equal(relativeOrAbsolute('/srv/plans/shop', '/srv/plans/v2.sql'), '../v2.sql');
    assert.equal(relativeOrAbsolute('/tmp/a/b/c', '/srv/v2.sql'), '/srv/v2.sql');
  });
});

describe('plan tests: their environment', () => {
  const test = { name: 't', command: ['x'], timeoutMs: 1000, env: { API: '{unewUrl}/api', MODE: 'ci' } };

  it('only PATH, UNEW_URL and what the plan declares: none of the worker\'s secrets', () => {
    const env = testEnv(test, 'http://127.0.0.1:9', '/usr/bin:/bin');
    assert.deepEqual(env, { PATH: '/usr/bin:/bin', API: 'http://127.0.0.1:9/api', MODE: 'ci', UNEW_URL: 'http://127.0.0.1:9' });
    const before = { ...process.env };
    process.env.IMAGO_UOLD_REPL_URL = 'mysql://repl:secret@db/app';
    try { assert.ok(!('IMAGO_UOLD_REPL_URL' in testEnv(test, 'http://u'))); } finally { process.env = before; }
  });

  it('a plan without env (one started before it existed) still runs; the declared env cannot replace UNEW_URL', () => {
    assert.deepEqual(testEnv({ name: 't', command: ['x'], timeoutMs: 1000 }, 'http://u', '/bin'), { PATH: '/bin', UNEW_URL: 'http://u' });
    assert.equal(testEnv({ ...test, env: { UNEW_URL: 'http://evil' } }, 'http://u', '/bin').UNEW_URL, 'http://u');
  });
});
