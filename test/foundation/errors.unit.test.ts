/**
 * The error registries: Imago's (lib/errors.ts) and the sample system's own
 * (examples/auction/errors.ts). docs/errors.md is generated from Imago's;
 * every code in a registry is raised somewhere (no leftovers); the sample's
 * codes are not Imago's.
 */
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { renderErrorsDoc } from '../../scripts/errors-doc';
import { ERRORS, ImagoError, imagoError } from '../../lib/errors';
import { AUCTION_ERRORS, AuctionError, auctionError } from '../../examples/auction/errors';

const ROOT = path.join(__dirname, '..', '..');

/** Every .ts file under `dir` (relative to the root), except tests. */
function sources(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of fs.readdirSync(path.join(ROOT, d), { withFileTypes: true })) {
      const rel = path.join(d, e.name);
      if (e.isDirectory()) { if (e.name !== 'node_modules' && !e.name.startsWith('.') && rel !== 'test') walk(rel); } else if (e.name.endsWith('.ts')) out.push(rel);
    }
  };
  walk(dir);
  return out;
}

/** The registry codes that no file quotes: nothing raises or tests for them. */
function unused(codes: string[], files: string[]): string[] {
  const text = files.map((f) => fs.readFileSync(path.join(ROOT, f), 'utf8')).join('\n');
  return codes.filter((c) => !new RegExp(`['"\`]${c}['"\`]`).test(text));
}

describe('error registries', () => {
  it('docs/errors.md lists exactly the registry (regenerate with npx tsx scripts/errors-doc.ts)', () => {
    assert.equal(fs.readFileSync(path.join(ROOT, 'docs/errors.md'), 'utf8'), renderErrorsDoc());
  });

  it('an error says what, where and what to do, and carries its code and retry class', () => {
    const e = imagoError('IMAGO_PLAN_INVALID', 'plan.yaml:\n  /unew: missing required key \'app\'');
    assert.ok(e instanceof ImagoError);
    assert.equal(e.code, 'IMAGO_PLAN_INVALID');
    assert.equal(e.retryable, false);
    assert.match(e.message, /^IMAGO_PLAN_INVALID: The upgrade plan is invalid: plan\.yaml:.*\/unew: missing required key 'app'.*Fix each error/s);
    for (const [code, spec] of Object.entries({ ...ERRORS, ...AUCTION_ERRORS })) {
      assert.ok(spec.message && spec.hint, `${code} has a message and a hint`);
    }
  });

  it("every code of Imago's registry is raised by product code (none left over)", () => {
    const files = sources('.').filter((f) => f !== path.join('lib', 'errors.ts') && !f.startsWith(path.join('examples', 'auction') + path.sep) && !f.startsWith('test' + path.sep));
    assert.ok(files.length > 100, `${files.length} product files scanned`);
    assert.deepEqual(unused(Object.keys(ERRORS), files), []);
  });

  it("the sample system's codes are its own: apart from Imago's registry, each raised by the sample", () => {
    assert.deepEqual(Object.keys(ERRORS).filter((c) => c.startsWith('AUCTION_')), []);
    assert.ok(Object.keys(AUCTION_ERRORS).every((c) => c.startsWith('AUCTION_')));
    const sample = sources(path.join('examples', 'auction')).filter((f) => !f.endsWith(`${path.sep}errors.ts`));
    assert.deepEqual(unused(Object.keys(AUCTION_ERRORS), sample), []);
    const e = auctionError('AUCTION_CONFIG_INVALID', 'port: must be integer');
    assert.ok(e instanceof AuctionError && !(e instanceof ImagoError));
    assert.equal(e.message, 'AUCTION_CONFIG_INVALID: The auction service configuration is invalid: port: must be integer. Fix each listed setting in the environment (AUCTION_*) or in the file named by AUCTION_CONFIG_FILE.');
  });
});
