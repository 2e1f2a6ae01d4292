/**
 * Bad input at the CLI: each case exits 1 and names the path of what is
 * wrong, all errors in one run. One describe per group of input.
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
import { mariadbBinary } from '../../lib/mariadb';

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
