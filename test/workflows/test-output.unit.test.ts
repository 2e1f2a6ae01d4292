/** A plan test's output as the testing activity keeps it: its beginning and its end, so the first error survives a long log. */
import { strict as assert } from 'node:assert';
import * as os from 'node:os';
import { runCommand } from '../../activities/testing';
import { evaluateGate } from '../../workflows/upgrade-state';

describe('plan test output (runCommand)', () => {
  it('keeps the first error of a long output and its end; the gate reason names the error', async () => {
    // A child process (no server): prints the error first, then 20,000 characters of noise, then a last line, and exits 1.
    const script = "console.log('Error: connect ECONNREFUSED 127.0.0.1:9'); for (let i = 0; i < 400; i++) console.log('step ' + i + ' '.repeat(40)); console.log('the last line'); process.exitCode = 1;";
    const r = await runCommand({ name: 'contract', command: [process.execPath, '-e', script], timeoutMs: 20_000, env: {} } as never, 'http://127.0.0.1:1', os.tmpdir());
    assert.equal(r.passed, false);
    assert.equal(r.exitCode, 1);
    assert.ok(r.output.startsWith('Error: connect ECONNREFUSED'), r.output.slice(0, 80));
    assert.match(r.output, /\[imago\] \d+ characters omitted/);
    assert.match(r.output, /the last line\n$/);
    assert.ok(r.output.length < 4_200, `kept ${r.output.length} characters`);
    const gate = evaluateGate([r], null, null);
    assert.equal(gate.reasons[0], "test 'contract' failed (exit 1): Error: connect ECONNREFUSED 127.0.0.1:9");
  });
});
