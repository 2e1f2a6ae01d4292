import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ESLint } from 'eslint';

const ROOT = path.join(__dirname, '..', '..');

// The error registries' tests are in the fast tier: errors.unit.test.ts.
describe('foundation: the workflow lint rule', () => {
  describe('determinism lint in workflows/', function () {
    this.timeout(60_000);
    const eslint = new ESLint({ cwd: ROOT });
    const lint = async (code: string) => {
      const file = path.join(ROOT, 'workflows', `__lint_probe_${process.pid}.ts`);
      fs.writeFileSync(file, code);
      try { return (await eslint.lintFiles([file]))[0].messages; } finally { fs.rmSync(file, { force: true }); }
    };

    it('rejects a workflow file that imports fs', async () => {
      const msgs = await lint("import * as fs from 'fs';\nexport function wf(): string { return fs.readFileSync('x', 'utf8'); }\n");
      assert.ok(msgs.some((m) => m.ruleId === 'no-restricted-imports' && /deterministic/.test(m.message)), JSON.stringify(msgs));
    });

    it('rejects node: built-ins, I/O libraries and floating promises', async () => {
      const msgs = await lint([
        "import { randomUUID } from 'node:crypto';",
        "import * as mysql from 'mysql2/promise';",
        "import { sleep } from '@temporalio/workflow';",
        'export async function wf(): Promise<string> { sleep(10); void mysql; return randomUUID(); }',
      ].join('\n'));
      const rules = msgs.map((m) => m.ruleId);
      assert.equal(rules.filter((r) => r === 'no-restricted-imports').length, 2, JSON.stringify(msgs));
      assert.ok(rules.includes('@typescript-eslint/no-floating-promises'), JSON.stringify(msgs));
    });

    it('accepts the real workflow files', async () => {
      const results = await eslint.lintFiles([path.join(ROOT, 'workflows')]);
      assert.deepEqual(results.flatMap((r) => r.messages.map((m) => `${r.filePath}:${m.line} ${m.message}`)), []);
    });
  });
});
