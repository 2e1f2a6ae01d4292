/**
 * Bad input at the CLI: each case exits 1 and names the path of what is
 * wrong, all errors in one run. One describe per group of input:
 * `plan validate`, `init` (options, the URL given instead of a reference, a
 * schema that does not apply, files that exist) and `preflight` (one report
 * with every problem of Uold, the conversion, the interceptors, the provider
 * and Temporal, and the fix for each).
 *
 * `imago plan validate` runs in-process (runCli with a capturing Io: no
 * Temporal server is needed) and once as a real process for the exit code;
 * the schema file is applied to a real throwaway MariaDB.
 */
import { strict as assert } from 'node:assert';
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { runCli } from '../../client/cli';
import type { Io } from '../../client/output';
import { mariadbBinary, type MariaDbInstance } from '../../lib/mariadb';
import { startIngress } from '../../interceptors/ingress';
import { mariadbFixture } from '../fixtures/servers';

const ROOT = path.resolve(__dirname, '..', '..');

interface Run { code: number; out: string; err: string }

async function imago(argv: string[]): Promise<Run> {
  let out = '', err = '';
  const io: Io = { out: (t) => { out += t; }, err: (t) => { err += t; }, isTTY: false, env: { PATH: process.env.PATH, HOME: os.tmpdir() } };
  const code = await runCli(argv, io);
  return { code, out, err };
}

function imagoProcess(argv: string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(process.execPath, [path.join(ROOT, 'client/bin/imago.js'), ...argv], { cwd: ROOT, timeout: 60_000 },
      (error, stdout, stderr) => resolve({ code: error ? (typeof error.code === 'number' ? error.code : -1) : 0, out: stdout, err: stderr }));
  });
}

const VALID_SQL = 'CREATE TABLE items (id INT PRIMARY KEY, name VARCHAR(20));\nGRANT SELECT ON items TO app@\'%\';\n';
const VALID_CONVERSION = `export default {
  name: 'bad-input test',
  tables: [{ source: 'items', targets: [{ table: 'items', key: ['id'] }], convert: (row: Record<string, unknown>) => ({ items: [row] }) }],
};
`;

describe('bad input: imago plan validate', function () {
  this.timeout(120_000);
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'imago-bad-input-'));
  after(() => fs.rmSync(root, { recursive: true, force: true }));
  let n = 0;

  /** A plan folder with a valid schema file and conversion; `change` edits the plan, `files` adds or replaces files. */
  function planFile(change: (p: any) => void = () => undefined, files: Record<string, string> = {}): string {
    const dir = path.join(root, `case-${++n}`);
    fs.mkdirSync(dir);
    const all = { 'schema.sql': VALID_SQL, 'conversion.ts': VALID_CONVERSION, ...files };
    for (const [name, text] of Object.entries(all)) {
      fs.mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
      fs.writeFileSync(path.join(dir, name), text);
    }
    const plan = {
      name: `bad-input-${n}`, system: 'shop', from: { version: '1' }, to: { version: '2' },
      uold: { ingress: [{ controlUrl: 'http://127.0.0.1:1', tokenRef: 'env:TOKEN' }], db: { urlRef: 'env:UOLD_DB', database: 'shop' } },
      unew: { database: 'shop', schemaFile: 'schema.sql', conversion: 'conversion.ts', app: { command: ['true'] } },
    };
    change(plan);
    const file = path.join(dir, 'plan.json');
    fs.writeFileSync(file, JSON.stringify(plan, null, 2));
    return file;
  }

  /** Exit 1 and stderr lists exactly `expected` (regexps, one per error line), in any order. */
  async function expectErrors(file: string, expected: RegExp[]): Promise<Run> {
    const r = await imago(['plan', 'validate', file]);
    assert.equal(r.code, 1, `exit code; stderr:\n${r.err}`);
    const lines = r.err.split('\n').filter((l) => l.startsWith('  /'));
    assert.equal(lines.length, expected.length, `error lines:\n${r.err}`);
    for (const re of expected) assert.ok(lines.some((l) => re.test(l)), `${re} in\n${r.err}`);
    assert.match(r.err, new RegExp(`IMAGO_PLAN_INVALID: ${expected.length} error\\(s\\)`));
    assert.doesNotMatch(r.err, /\n\s+at /, 'no stack trace');
    return r;
  }

  before(() => { mariadbBinary('mariadbd'); /* throws IMAGO_PREREQ_MISSING: run scripts/setup.sh */ });

  it('a valid plan: exit 0, its schema file applied to a scratch MariaDB (nothing left unchecked)', async () => {
    const r = await imago(['plan', 'validate', planFile()]);
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /valid plan 'bad-input-\d+'/);
    assert.doesNotMatch(r.out, /not checked/);
  });

  it('a conversion module that throws when loaded', async () => {
    const file = planFile(undefined, { 'conversion.ts': "throw new Error('conversion config missing');\nexport default {};\n" });
    await expectErrors(file, [new RegExp(`^  /unew/conversion: ${path.dirname(file)}/conversion\\.ts throws when loaded: conversion config missing$`)]);
  });

  it('a conversion module that loads but is not a ConversionModule', async () => {
    const file = planFile(undefined, { 'conversion.ts': "export default { name: 'x', tables: [{ source: 'items', targets: [] }] };\n" });
    await expectErrors(file, [/^ {2}\/unew\/conversion: .*does not export a ConversionModule.*tables\[0\]\.convert must be a function; tables\[0\]\.targets must be a non-empty list$/]);
  });

  it('a conversion path that is a directory', async () => {
    const file = planFile((p) => { p.unew.conversion = 'conv'; }, { 'conv/index.ts': VALID_CONVERSION });
    await expectErrors(file, [new RegExp(`^  /unew/conversion: ${path.dirname(file)}/conv is a directory; name the file itself$`)]);
  });

  it('a schema file with an SQL syntax error, with its line in the file', async () => {
    const file = planFile(undefined, { 'schema.sql': `${VALID_SQL}CREATE TABLE bids (id INT PRIMARY KEY,, amount INT);\n` });
    await expectErrors(file, [new RegExp(`^  /unew/schemaFile: ${path.dirname(file)}/schema\\.sql:3 does not apply to an empty database: You have an error in your SQL syntax.*near ' amount INT\\)'`)]);
  });

  it('a conversion that writes a table the schema file does not create, or by another key', async () => {
    const file = planFile(undefined, {
      'conversion.ts': VALID_CONVERSION.replace("targets: [{ table: 'items', key: ['id'] }]", "targets: [{ table: 'items', key: ['name'] }, { table: 'prices', key: ['id'] }]"),
    });
    await expectErrors(file, [
      /^ {2}\/unew\/conversion: tables\[0\]\.targets\[0\]: key \(name\) is not the primary key of 'items' in the schema file \(id\)$/,
      /^ {2}\/unew\/conversion: tables\[0\]\.targets\[1\]: table 'prices' is not in the schema file$/,
    ]);
  });

  it("switchover.holdTimeoutMs above the interceptor's cap of 600000 ms", async () => {
    await expectErrors(planFile((p) => { p.switchover = { holdTimeoutMs: 3_600_000 }; }), [/^ {2}\/switchover\/holdTimeoutMs: must be <= 600000 \(/]);
  });

  it('schema errors and file errors in one run: every error at once', async () => {
    const file = planFile((p) => {
      p.name = 'Not A Name';
      p.unew.colour = 'blue';
      p.unew.schemaFile = 'missing.sql';
      p.switchover = { holdTimeoutMs: 3_600_000 };
    }, { 'conversion.ts': "throw new Error('boom');\n" });
    const r = await expectErrors(file, [
      /^ {2}\/name: must match pattern/,
      /^ {2}\/unew: unknown key 'colour'$/,
      /^ {2}\/unew\/schemaFile: file not found: .*missing\.sql$/,
      /^ {2}\/switchover\/holdTimeoutMs: must be <= 600000/,
      /^ {2}\/unew\/conversion: .*throws when loaded: boom$/,
    ]);
    const json = JSON.parse((await imago(['plan', 'validate', file, '--json'])).out);
    assert.deepEqual([json.valid, json.code, json.errors.length], [false, 'IMAGO_PLAN_INVALID', 5]);
    assert.equal(r.err.split('\n').filter((l) => l.startsWith('  /')).length, json.errors.length);
  });

  it('--offline: the schema file is not applied, and the output says so', async () => {
    const file = planFile(undefined, { 'schema.sql': 'CREATE TABLE items (id INT PRIMARY KEY,,);\n' });
    const r = await imago(['plan', 'validate', file, '--offline']);
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /not checked: \/unew\/schemaFile: not applied to a scratch MariaDB \(--offline\)/);
    const json = JSON.parse((await imago(['plan', 'validate', file, '--offline', '--json'])).out);
    assert.deepEqual([json.valid, json.notChecked], [true, ['/unew/schemaFile: not applied to a scratch MariaDB (--offline)']]);
  });

  it('an unreadable plan file: exit 1 naming the file', async () => {
    const r = await imago(['plan', 'validate', path.join(root, 'nope.yaml')]);
    assert.equal(r.code, 1);
    assert.match(r.err, /nope\.yaml: IMAGO_PLAN_UNREADABLE: .*ENOENT/);
  });

  it('as a real process: exit code 1, every error on stderr, no stack trace', async () => {
    const file = planFile((p) => { p.switchover = { holdTimeoutMs: 3_600_000 }; p.unew.conversion = '.'; });
    const r = await imagoProcess(['plan', 'validate', file]);
    assert.equal(r.code, 1, r.err);
    assert.match(r.err, /\/switchover\/holdTimeoutMs: must be <= 600000/);
    assert.match(r.err, /\/unew\/conversion: .* is a directory/);
    assert.doesNotMatch(r.err, /\n\s+at /);
    assert.equal(r.out, '');
  });
});

/** A Uold for `imago init` and `imago preflight`: shop with items and users, a replication user; the caller adds what is wrong. */
async function shopUold(extraArgs: string[] = []): Promise<MariaDbInstance> {
  const db = await mariadbFixture({ extraArgs });
  await db.createDatabase('shop');
  await db.query('CREATE TABLE shop.items (id INT PRIMARY KEY, name VARCHAR(20) NOT NULL)');
  await db.query('CREATE TABLE shop.users (id INT PRIMARY KEY, name VARCHAR(50) NOT NULL)');
  await db.query("INSERT INTO shop.items VALUES (1, 'lamp'), (2, 'desk'); INSERT INTO shop.users VALUES (1, 'Ada Lovelace')");
  await db.createUser('repl', 'repl-pw-1234', ['REPLICATION SLAVE, REPLICATION CLIENT ON *.*', 'SELECT ON shop.*']);
  return db;
}

/** Sets environment variables for the in-process CLI (secrets resolve from process.env) until the returned function runs. */
function withEnv(vars: Record<string, string>): () => void {
  const before = Object.fromEntries(Object.keys(vars).map((k) => [k, process.env[k]]));
  Object.assign(process.env, vars);
  return () => { for (const [k, v] of Object.entries(before)) { if (v === undefined) delete process.env[k]; else process.env[k] = v; } };
}

describe('bad input: imago init', function () {
  this.timeout(180_000);
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'imago-bad-init-'));
  let restore = () => undefined as void;
  let db: MariaDbInstance;
  before(async () => {
    db = await shopUold();
    restore = withEnv({ BAD_INIT_UOLD: db.urlFor('repl', 'repl-pw-1234', 'shop') });
    fs.writeFileSync(path.join(root, 'good.sql'), 'CREATE TABLE items (id INT PRIMARY KEY, name VARCHAR(20) NOT NULL);\nCREATE TABLE users (id INT PRIMARY KEY, name VARCHAR(50) NOT NULL);\n');
  });
  after(() => { restore(); fs.rmSync(root, { recursive: true, force: true }); });
  const args = (out: string, over: Record<string, string> = {}) => Object.entries({ 'uold-url': 'env:BAD_INIT_UOLD', database: 'shop', 'new-schema': path.join(root, 'good.sql'), out, ...over }).flatMap(([k, v]) => [`--${k}`, v]);

  it('every missing required option named at once; exit 1', async () => {
    const r = await imago(['init', '--database', 'shop']);
    assert.equal(r.code, 1);
    assert.match(r.err, /CLIENT_USAGE: .*imago init needs --uold-url \(.*\), --new-schema \(.*\), --out \(.*\)\./);
    assert.doesNotMatch(r.err, /--database \(/);
  });

  it('the URL itself instead of a reference: refused, and its password is not echoed', async () => {
    const out = path.join(root, 'literal');
    const r = await imago(['init', ...args(out, { 'uold-url': 'mysql://repl:hunter2secret@127.0.0.1:3306/shop' })]);
    assert.equal(r.code, 1);
    assert.match(r.err, /CLIENT_USAGE: .*--uold-url 'mysql:\/\/repl:\*\*\*@127\.0\.0\.1:3306\/shop': give a reference, env:NAME or file:\/path/);
    assert.doesNotMatch(r.err, /hunter2secret/);
    assert.equal(fs.existsSync(out), false, 'nothing written');
  });

  it('a new schema with an SQL syntax error: the file and its line; nothing written', async () => {
    const bad = path.join(root, 'bad.sql');
    fs.writeFileSync(bad, 'CREATE TABLE items (id INT PRIMARY KEY);\n\nCREATE TABLE users (id INT PRIMARY KEY,, name TEXT);\n');
    const out = path.join(root, 'syntax');
    const r = await imago(['init', ...args(out, { 'new-schema': bad })]);
    assert.equal(r.code, 1);
    assert.match(r.err, new RegExp(`IMAGO_SCHEMA_FILE_INVALID: .*${bad.replace(/\./g, '\\.')}:3: You have an error in your SQL syntax`));
    assert.equal(fs.existsSync(out), false);
  });

  it('an out folder holding a plan: refused, naming it, the file untouched; --force overwrites', async () => {
    const out = path.join(root, 'existing');
    fs.mkdirSync(out);
    fs.writeFileSync(path.join(out, 'plan.yaml'), 'mine\n');
    const r = await imago(['init', ...args(out)]);
    assert.equal(r.code, 1);
    assert.match(r.err, new RegExp(`CLIENT_INIT_REFUSED: .*${out}/plan\\.yaml`));
    assert.equal(fs.readFileSync(path.join(out, 'plan.yaml'), 'utf8'), 'mine\n');
    const forced = await imago(['init', ...args(out), '--force']);
    assert.equal(forced.code, 0, forced.err);
    assert.match(fs.readFileSync(path.join(out, 'plan.yaml'), 'utf8'), /^ {4}database: shop$/m);
  });

  it('Uold unreachable with these credentials: exit 1, the password not echoed', async () => {
    const undo = withEnv({ BAD_INIT_WRONG: db.urlFor('repl', 'wrong-pw-5678', 'shop') });
    try {
      const r = await imago(['init', ...args(path.join(root, 'unreachable'), { 'uold-url': 'env:BAD_INIT_WRONG' })]);
      assert.equal(r.code, 1);
      assert.match(r.err, /IMAGO_PREFLIGHT_UNREACHABLE: .*repl:\*\*\*@127\.0\.0\.1.*Access denied/);
      assert.doesNotMatch(r.err, /wrong-pw-5678/);
    } finally { undo(); }
  });
});

describe('bad input: imago preflight', function () {
  this.timeout(240_000);
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'imago-bad-preflight-'));
  const stops: Array<() => Promise<void> | void> = [];
  after(async () => { for (const s of stops.reverse()) await s(); fs.rmSync(root, { recursive: true, force: true }); });

  it('one report with every problem and its fix; the printed fixes applied, the samples name what the conversion gets wrong', async () => {
    // Uold: MIXED binlog, a table without a key, a table the conversion forgets, and a user that can only SELECT.
    const db = await shopUold(['--binlog-format=MIXED']);
    await db.query('CREATE TABLE shop.nokey (a INT, b INT); CREATE TABLE shop.extra (id INT PRIMARY KEY)');
    await db.createUser('weak', 'weak-pw-1234', ['SELECT ON shop.*']);
    const ingress = await startIngress({ upstream: { name: 'uold', url: 'http://127.0.0.1:9' }, token: 'the-right-token-123' });
    stops.push(() => ingress.close());
    stops.push(withEnv({ BAD_PF_UOLD: db.urlFor('weak', 'weak-pw-1234', 'shop'), BAD_PF_TOKEN: 'not-the-token' }));
    fs.writeFileSync(path.join(root, 'schema.sql'), 'CREATE TABLE items (id INT PRIMARY KEY, name VARCHAR(20) NOT NULL);\nCREATE TABLE users (id INT PRIMARY KEY, first_name VARCHAR(50) NOT NULL);\n');
    fs.writeFileSync(path.join(root, 'conversion.ts'), `export default {
  name: 'bad preflight',
  tables: [
    { source: 'items', targets: [{ table: 'items', key: ['id'] }], convert: (r: Record<string, unknown>) => ({ items: [{ ...r, colour: 'red' }] }) },
    { source: 'users', targets: [{ table: 'users', key: ['id'] }], convert: (): never => { throw new Error('TODO in the conversion: users.first_name (varchar(50) NOT NULL)'); } },
    { source: 'nokey', targets: [{ table: 'items', key: ['id'] }], convert: () => ({}) },
  ],
};
`);
    const planFile = path.join(root, 'plan.json');
    fs.writeFileSync(planFile, JSON.stringify({
      name: 'bad-preflight', system: 'shop', from: { version: '1' }, to: { version: '2' },
      uold: { ingress: [{ controlUrl: ingress.controlUrl, tokenRef: 'env:BAD_PF_TOKEN' }], db: { urlRef: 'env:BAD_PF_UOLD', database: 'shop' } },
      unew: { database: 'shop', schemaFile: 'schema.sql', conversion: 'conversion.ts', app: { command: ['./no-such-start.sh'] }, local: { baseDir: path.join(root, 'universes') } },
    }));
    const preflight = async () => {
      const r = await imago(['preflight', planFile, '--address', '127.0.0.1:1', '--json']);
      const report = JSON.parse(r.out) as { ok: boolean; checks: Array<{ group: string; name: string; status: string; code?: string; detail: string; fix?: string }>; notChecked: string[] };
      return { r, report, failed: report.checks.filter((c) => c.status === 'fail').map((c) => `${c.group}/${c.name}: ${c.code}`) };
    };

    const first = await preflight();
    assert.equal(first.r.code, 1);
    assert.deepEqual(first.failed, [
      'uold/binlog_format: IMAGO_PREFLIGHT_BINLOG',
      'uold/replication privileges: IMAGO_PREFLIGHT_PRIVILEGES',
      'tables/extra: TRANSFER_CONVERSION_INCOMPLETE',
      'tables/nokey: TRANSFER_NO_PRIMARY_KEY',
      `interceptors/interceptor ${ingress.controlUrl}: INGRESS_UNAUTHORIZED`,
      'provider/unew.app.command: IMAGO_PLAN_INVALID',
      'temporal/server: CLIENT_UNREACHABLE',
    ]);
    const fixOf = (name: string) => first.report.checks.find((c) => c.name === name)!.fix!;
    assert.equal(fixOf('replication privileges'), "GRANT REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO 'weak'@'127.0.0.1';");
    assert.match(fixOf('nokey'), /^ALTER TABLE `shop`\.`nokey` ADD PRIMARY KEY/);
    assert.match(first.report.notChecked.join('\n'), /samples: Uold's binary log or the replication user's privileges must be fixed first/);
    assert.ok(first.report.checks.some((c) => c.group === 'unew schema' && c.status === 'ok'), 'the schema file was applied to a scratch MariaDB');
    assert.doesNotMatch(first.r.out, /weak-pw-1234|not-the-token/, 'no secret in the report');
    // The text form: each failure with its code, and its fix indented under it.
    const text = await imago(['preflight', planFile, '--address', '127.0.0.1:1', '--offline']);
    assert.equal(text.code, 1);
    assert.match(text.out, /^preflight .*: 7 failed, 0 warning\(s\), \d+ ok/m);
    assert.match(text.out, /^ {2}FAIL {2}replication privileges +IMAGO_PREFLIGHT_PRIVILEGES: 'weak'@'127\.0\.0\.1' lacks REPLICATION SLAVE, REPLICATION CLIENT ON \*\.\*.*\n {8}fix:\n {10}GRANT REPLICATION SLAVE, REPLICATION CLIENT ON \*\.\* TO 'weak'@'127\.0\.0\.1';$/m);

    // The operator applies the printed SQL; the next run gets to the samples.
    await db.query(fixOf('replication privileges'));
    await db.query(fixOf('binlog_format').split('\n')[0]);
    const second = await preflight();
    assert.equal(second.r.code, 1);
    assert.ok(second.report.checks.filter((c) => c.group === 'uold').every((c) => c.status === 'ok'), JSON.stringify(second.report.checks.filter((c) => c.group === 'uold')));
    const sample = (name: string) => second.report.checks.find((c) => c.group === 'samples' && c.name === name)!;
    assert.deepEqual([sample('items').code, sample('users').code, sample('nokey').code], ['TRANSFER_SCHEMA_MISMATCH', 'TRANSFER_CONVERSION_FAILED', 'TRANSFER_NO_PRIMARY_KEY']);
    assert.match(sample('items').detail, /table 'items', key \[1\]: converted row for 'items' has column\(s\) colour that Unew's table lacks/);
    assert.match(sample('users').detail, /table 'users', key \[1\]: convert threw: TODO in the conversion: users\.first_name/);
  });

  it('a plan that is not valid: the plan errors, exit 1, nothing else attempted', async () => {
    const file = path.join(root, 'invalid.json');
    fs.writeFileSync(file, JSON.stringify({ name: 'Not Valid', system: 's' }));
    const r = await imago(['preflight', file, '--offline']);
    assert.equal(r.code, 1);
    assert.match(r.err, /IMAGO_PLAN_INVALID: .*\/name: must match pattern/s);
    assert.equal(r.out, '');
  });
});
