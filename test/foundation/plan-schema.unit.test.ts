/**
 * The plan's one schema (plan/schema.ts, TypeBox): the generated JSON for
 * editors, what the loader accepts and fills, every error at once, the
 * typed planDir, and the provider sections. No server, no user code.
 */
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { isImagoError } from '../../lib/errors';
import { compileChecker, formatAjvErrors } from '../../plan/checker';
import { checkPlan, loadPlanFile, validateLoadedPlan, validatePlan } from '../../plan/load';
import { PROVIDER_NAMES } from '../../plan/providers';
import { loadedPlanSchema, planJsonSchemaText, planSchema } from '../../plan/schema';
import { Default, Defaulted, Section, Type } from '../../plan/schema-kit';
import type { UpgradePlan } from '../../plan/types';
import { localSectionOf } from '../../providers/local/plan-section';
import { MAX_HOLD_TIMEOUT_MS } from '../../interceptors/ingress/switcher';
import { PLAN_JSON_SCHEMA_FILE } from '../../scripts/plan-schema';
import { EXAMPLE, EXAMPLE_DIR, exampleFile } from './example-plan';


function errorsOf(input: unknown, baseDir = EXAMPLE_DIR): string[] {
  const { plan, errors } = checkPlan(input, baseDir);
  assert.equal(plan, undefined, 'no plan when there are errors');
  return errors;
}

// The type derived from the schema, checked by the compiler (npm run typecheck):
// keys with a default are always there; keys added after plans already ran stay optional.
type Same<A, B> = (<T>() => T extends A ? 1 : 2) extends (<T>() => T extends B ? 1 : 2) ? true : false;
const derivedTypes: [
  Same<UpgradePlan['planDir'], string>,
  Same<UpgradePlan['version'], 1>,
  Same<UpgradePlan['transfer']['chunkSize'], number>,
  Same<UpgradePlan['unew']['provider'], 'local' | 'aws'>,
  Same<UpgradePlan['unew']['local'], { baseDir?: string } | undefined>,
  Same<UpgradePlan['unew']['aws'], Record<string, unknown> | undefined>,
  Same<NonNullable<UpgradePlan['unew']['grants']>['enabled'], boolean>,
  Same<UpgradePlan['verify']['niceRatio'], number | undefined>,
  Same<UpgradePlan['mirror']['methods'], Array<'GET' | 'HEAD' | 'OPTIONS'>>,
  Same<UpgradePlan['compare']['noise']['minSamples'], number>,
  Same<UpgradePlan['unew']['app']['env'], Record<string, string>>,
] = [true, true, true, true, true, true, true, true, true, true, true];

describe('plan schema: one declaration, its JSON and its type', () => {
  it('the derived type is checked by the compiler', () => assert.ok(derivedTypes.every(Boolean)));

  it('plan/plan.schema.json is the schema generated from plan/schema.ts (regenerate: npm run plan:schema)', () => {
    assert.ok(fs.readFileSync(PLAN_JSON_SCHEMA_FILE, 'utf8') === planJsonSchemaText(), 'plan/plan.schema.json is stale: run npm run plan:schema and commit it');
  });

  it('the generated JSON: unknown keys rejected in every object, defaulted keys not required, the hold timeout capped', () => {
    const json = JSON.parse(planJsonSchemaText());
    const objects: Array<[string, any]> = [];
    const walk = (s: any, at: string) => {
      if (!s || typeof s !== 'object') return;
      if (s.type === 'object' && s.properties) objects.push([at, s]);
      for (const [k, v] of Object.entries(s)) walk(v, `${at}/${k}`);
    };
    walk(json, '');
    assert.ok(objects.length > 20, `${objects.length} object schemas`);
    for (const [at, o] of objects) {
      assert.equal(o.additionalProperties, false, `${at} rejects unknown keys`);
      for (const key of o.required ?? []) assert.equal(o.properties[key].default, undefined, `${at}: required key '${key}' has no default`);
    }
    assert.deepEqual(json.required, ['name', 'system', 'from', 'to', 'uold', 'unew']);
    assert.equal(json.properties.switchover.properties.holdTimeoutMs.maximum, MAX_HOLD_TIMEOUT_MS);
    assert.equal(json.properties.planDir, undefined, 'planDir is not a key of the file');
    assert.deepEqual(json.properties.unew.properties.provider.enum, PROVIDER_NAMES);
    assert.equal(json.$schema, 'http://json-schema.org/draft-07/schema#');
  });

  it('the kit: Default and Defaulted leave a key out of required and carry the default; Section rejects unknown keys', () => {
    const s = JSON.parse(JSON.stringify(Section({ a: Default(Type.Integer(), 3), b: Type.String(), c: Defaulted(Section({ d: Default(Type.Boolean(), true) })) })));
    assert.deepEqual(s.required, ['b']);
    assert.equal(s.properties.a.default, 3);
    assert.deepEqual(s.properties.c.default, {});
    assert.equal(s.additionalProperties, false);
    const check = compileChecker(Section({ a: Default(Type.Integer(), 3), b: Type.String(), c: Defaulted(Section({ d: Default(Type.Boolean(), true) })) }), 'x');
    const ok = check({ b: 'y' });
    assert.deepEqual(ok.value, { a: 3, b: 'y', c: { d: true } });
    assert.ok(Object.isFrozen(ok.value) && Object.isFrozen(ok.value!.c));
    assert.deepEqual(check({ a: 'no', z: 1 }).errors.sort(), ["x/a: must be integer", "x: missing required key 'b'", "x: unknown key 'z'"].sort());
  });
});

describe('plan loader: defaults, paths, planDir', () => {
  it('loads the example: defaults filled, paths absolute, planDir typed and set, the whole plan frozen', () => {
    const plan: UpgradePlan = loadPlanFile(EXAMPLE);
    assert.equal(plan.planDir, EXAMPLE_DIR);
    assert.equal(plan.unew.schemaFile, path.join(EXAMPLE_DIR, 'schema', 'v2.sql'));
    assert.equal(plan.unew.conversion, path.join(EXAMPLE_DIR, 'conversion.ts'));
    assert.deepEqual([plan.unew.provider, plan.unew.local, plan.unew.grants?.enabled, plan.unew.grants?.tables], ['local', {}, true, {}]);
    assert.deepEqual([plan.compare.minSamplesPerEndpoint, plan.compare.noise.minSamples, plan.compare.limits.queueSize], [5, 5, 2000]);
    assert.equal(plan.verify.niceRatio, 1);
    assert.deepEqual(plan.unew.app.env, {});
    for (const o of [plan, plan.unew, plan.unew.app, plan.compare.noise, plan.uold.ingress[0], plan.tests[0].command]) assert.ok(Object.isFrozen(o));
  });

  it('the loaded plan is what its schema (loadedPlanSchema, the source of UpgradePlan) describes', () => {
    const { value, errors } = compileChecker(loadedPlanSchema)(loadPlanFile(EXAMPLE));
    assert.deepEqual(errors, []);
    assert.deepEqual(value, loadPlanFile(EXAMPLE), 'nothing added or changed: every default was already there');
  });

  it('a plan file cannot set planDir: the loader does', () => {
    const p = exampleFile();
    p.planDir = '/etc';
    assert.deepEqual(errorsOf(p), ["/: unknown key 'planDir'"]);
  });

  it('the worker re-validates a loaded plan against the same rules, from its planDir', () => {
    const plan = loadPlanFile(EXAMPLE);
    assert.deepEqual(validateLoadedPlan(plan), plan);
    const moved = { ...plan, planDir: os.tmpdir(), unew: { ...plan.unew, schemaFile: 'schema/v2.sql' } };
    assert.throws(() => validateLoadedPlan(moved), (e: unknown) => isImagoError(e, 'IMAGO_PLAN_INVALID') && e.message.includes(`/unew/schemaFile: file not found: ${path.join(os.tmpdir(), 'schema', 'v2.sql')}`));
  });

  it('does not touch its input', () => {
    const p = exampleFile();
    const before = JSON.stringify(p);
    validatePlan(p, EXAMPLE_DIR);
    assert.equal(JSON.stringify(p), before);
  });
});

describe('plan loader: every error at once, with its path', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'imago-plan-unit-'));
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('schema errors, file errors and rules across keys together: missing file, a directory, an unknown key, a bad value, a bad pattern, a hold too short', () => {
    fs.mkdirSync(path.join(dir, 'conversion'), { recursive: true });
    const p = exampleFile();
    p.unew.conversion = 'conversion';
    p.unew.schemaFile = 'nope.sql';
    p.unew.colour = 'blue';
    p.transfer.chunkSize = 0;
    p.compare.textPatterns = ['[a-'];
    p.switchover.holdTimeoutMs = 3000;
    const errors = errorsOf(p, dir);
    assert.deepEqual(errors.sort(), [
      '/compare/textPatterns/0: not a valid regular expression (Invalid regular expression: /[a-/: Unterminated character class)',
      '/switchover/holdTimeoutMs: must exceed drainTimeoutMs + flushTimeoutMs, or every hold would time out',
      "/transfer/chunkSize: must be >= 1 (Rows read from Uold per chunk of the copy (a change while copying: imago throttle --chunk-size).)",
      "/unew: unknown key 'colour'",
      `/unew/conversion: ${path.join(dir, 'conversion')} is a directory; name the file itself`,
      `/unew/schemaFile: file not found: ${path.join(dir, 'nope.sql')}`,
    ].sort());
  });

  it('a schema file that is a directory is an error too; a conversion named without its extension is found', () => {
    fs.mkdirSync(path.join(dir, 'schema.sql'), { recursive: true });
    fs.writeFileSync(path.join(dir, 'conv.ts'), 'export default {};\n');
    const p = exampleFile();
    p.unew.schemaFile = 'schema.sql';
    p.unew.conversion = 'conv';
    assert.deepEqual(errorsOf(p, dir), [`/unew/schemaFile: ${path.join(dir, 'schema.sql')} is a directory; name the file itself`]);
  });

  it(`switchover.holdTimeoutMs above the interceptor's cap (${MAX_HOLD_TIMEOUT_MS} ms) is refused; the cap itself is accepted`, () => {
    const p = exampleFile();
    p.switchover.holdTimeoutMs = 3_600_000;
    const [e, ...rest] = errorsOf(p);
    assert.deepEqual(rest, []);
    assert.match(e, /^\/switchover\/holdTimeoutMs: must be <= 600000 \(.*interceptor accepts/);
    p.switchover.holdTimeoutMs = MAX_HOLD_TIMEOUT_MS;
    assert.equal(validatePlan(p, EXAMPLE_DIR).switchover.holdTimeoutMs, MAX_HOLD_TIMEOUT_MS);
  });

  it('rules across keys: hold vs drain + flush, mirror durations, the chosen provider\'s section, compare patterns', () => {
    const p = exampleFile();
    p.switchover = { holdTimeoutMs: 1000, drainTimeoutMs: 600, flushTimeoutMs: 600 };
    p.mirror.minDurationMs = 90_000;
    p.unew.provider = 'aws';
    p.compare.textPatterns = ['(unclosed'];
    p.compare.ignorePaths = ['$.a[x'];
    const errors = errorsOf(p);
    for (const re of [/^\/switchover\/holdTimeoutMs: must exceed drainTimeoutMs \+ flushTimeoutMs/, /^\/mirror\/minDurationMs: must not exceed maxDurationMs/,
      /^\/unew\/aws: required when provider is 'aws'$/, /^\/compare\/textPatterns\/0: not a valid regular expression/, /^\/compare\/ignorePaths\/0: not a valid JSON path/]) {
      assert.ok(errors.some((e) => re.test(e)), `${re} in\n${errors.join('\n')}`);
    }
    assert.equal(errors.length, 5);
  });

  it('validatePlan throws IMAGO_PLAN_INVALID listing every error under the source name', () => {
    const p = exampleFile();
    p.name = 'Bad Name';
    p.approval.policy = 'sometimes';
    assert.throws(() => validatePlan(p, EXAMPLE_DIR, 'my-plan.yaml'), (e: unknown) => {
      assert.ok(isImagoError(e, 'IMAGO_PLAN_INVALID'));
      assert.match(e.detail, /^my-plan\.yaml:\n {2}/);
      assert.ok(e.detail.includes('/approval/policy: must be one of auto, manual'), e.detail);
      assert.ok(e.detail.includes('/name: must match pattern'), e.detail);
      return true;
    });
  });

  it('formats ajv errors in words: unknown key, missing key, one of, const', () => {
    const lines = formatAjvErrors([
      { instancePath: '/a', keyword: 'additionalProperties', params: { additionalProperty: 'x' }, schemaPath: '' },
      { instancePath: '', keyword: 'required', params: { missingProperty: 'y' }, schemaPath: '' },
      { instancePath: '/e', keyword: 'enum', params: { allowedValues: ['p', 'q'] }, schemaPath: '' },
      { instancePath: '/v', keyword: 'const', params: { allowedValue: 1 }, schemaPath: '' },
    ], 'r');
    assert.deepEqual(lines, ["r/a: unknown key 'x'", "r: missing required key 'y'", 'r/e: must be one of p, q', 'r/v: must be 1']);
  });
});

describe('provider sections', () => {
  it('the local section: filled with {} in a plan, unknown keys refused with their path', () => {
    assert.deepEqual(loadPlanFile(EXAMPLE).unew.local, {});
    const p = exampleFile();
    p.unew.local = { baseDir: '/srv/u', where: 'x' };
    assert.deepEqual(errorsOf(p), ["/unew/local: unknown key 'where'"]);
  });

  it('the local provider reads its section typed, from a whole unew or the section alone', () => {
    assert.deepEqual(localSectionOf({ local: { baseDir: '/srv/u' } }), { baseDir: '/srv/u' });
    assert.deepEqual(localSectionOf({}), {});
    assert.throws(() => localSectionOf({ local: { baseDir: 3 } }), (e: unknown) => isImagoError(e, 'IMAGO_PLAN_INVALID') && /\/unew\/local\/baseDir: must be string/.test(e.message));
  });

  it('the aws section is composed into the plan: its own keys are checked there', () => {
    const p = exampleFile();
    p.unew.provider = 'aws';
    p.unew.aws = { ami: 'ami-XYZ' };
    const errors = errorsOf(p);
    assert.ok(errors.includes('/unew/aws/ami: must match pattern "^ami-[0-9a-f]{8,17}$"'), errors.join('\n'));
    assert.ok(errors.includes("/unew/aws: missing required key 'uoldTargetGroupArn'"), errors.join('\n'));
  });

  it('the file schema and the loaded schema differ only by planDir', () => {
    const file = Object.keys(JSON.parse(JSON.stringify(planSchema)).properties);
    const loaded = Object.keys(JSON.parse(JSON.stringify(loadedPlanSchema)).properties);
    assert.deepEqual(loaded.filter((k) => !file.includes(k)), ['planDir']);
    assert.equal(file.length + 1, loaded.length);
  });
});
