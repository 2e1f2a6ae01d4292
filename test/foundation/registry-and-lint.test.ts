import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ESLint } from 'eslint';

const ROOT = path.join(__dirname, '..', '..');

// The error registries' tests are in the fast tier: errors.unit.test.ts.
describe('foundation: the workflow lint rule', () => {
  describe('determinism lint in workflows/, registry errors in product code', function () {
    this.timeout(60_000);
    const eslint = new ESLint({ cwd: ROOT });
    // Every probe in one lint run: each run builds the type-checked program anew (seconds).
    const PROBES = {
      fs: ['workflows', "import * as fs from 'fs';\nexport function wf(): string { return fs.readFileSync('x', 'utf8'); }\n"],
      io: ['workflows', [
        "import { randomUUID } from 'node:crypto';",
        "import * as mysql from 'mysql2/promise';",
        "import { sleep } from '@temporalio/workflow';",
        'export async function wf(): Promise<string> { sleep(10); void mysql; return randomUUID(); }',
      ].join('\n')],
      error: ['lib', "export function f(): never { throw new Error('plain'); }\n"],
      errorInTest: ['test', "export function f(): never { throw new Error('plain, in a test'); }\n"],
    } as const;
    const msgs: Record<string, Array<{ ruleId: string | null; message: string }>> = {};
    before(async () => {
      const files = Object.entries(PROBES).map(([k, [dir, code]]) => {
        const file = path.join(ROOT, dir, `__lint_probe_${k}_${process.pid}.ts`);
        fs.writeFileSync(file, code);
        return [k, file] as const;
      });
      try {
        const results = await eslint.lintFiles(files.map(([, f]) => f));
        for (const [k, f] of files) msgs[k] = results.find((r) => r.filePath === f)!.messages;
      } finally {
        for (const [, f] of files) fs.rmSync(f, { force: true });
      }
    });

    it('rejects a workflow file that imports fs', () => {
      assert.ok(msgs.fs.some((m) => m.ruleId === 'no-restricted-imports' && /deterministic/.test(m.message)), JSON.stringify(msgs.fs));
    });

    it('rejects node: built-ins, I/O libraries and floating promises', () => {
      const rules = msgs.io.map((m) => m.ruleId);
      assert.equal(rules.filter((r) => r === 'no-restricted-imports').length, 2, JSON.stringify(msgs.io));
      assert.ok(rules.includes('@typescript-eslint/no-floating-promises'), JSON.stringify(msgs.io));
    });

    it('rejects a plain Error in product code (a registry error, imagoError, is what it throws); tests may', () => {
      assert.ok(msgs.error.some((m) => m.ruleId === 'no-restricted-syntax' && /imagoError/.test(m.message)), JSON.stringify(msgs.error));
      assert.deepEqual(msgs.errorInTest.filter((m) => m.ruleId === 'no-restricted-syntax'), []);
    });

    it('accepts the real workflow files', async () => {
      const results = await eslint.lintFiles([path.join(ROOT, 'workflows')]);
      assert.deepEqual(results.flatMap((r) => r.messages.map((m) => `${r.filePath}:${m.line} ${m.message}`)), []);
    });
  });
});
