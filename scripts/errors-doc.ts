/** Writes docs/errors.md from the registry in lib/errors.ts: `npx tsx scripts/errors-doc.ts`. A test keeps them in sync. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ERRORS } from '../lib/errors';

export function renderErrorsDoc(): string {
  const rows = Object.entries(ERRORS).map(([code, e]) => `| \`${code}\` | ${e.message} | ${e.retryable ? 'yes' : 'no'} | ${e.hint.replace(/\|/g, '\\|')} |`);
  return [
    '# Error codes',
    '',
    'Every error Imago raises carries one of these codes (the registry is `lib/errors.ts`; this page is generated from it by `npx tsx scripts/errors-doc.ts`, and a test fails when they differ). A message reads `CODE: what: detail (where). What to do.` Non-retryable codes are validation and consistency failures: Temporal does not retry them.',
    '',
    '| code | what | retried | what to do |',
    '|---|---|---|---|',
    ...rows,
    '',
  ].join('\n');
}

if (require.main === module) fs.writeFileSync(path.join(__dirname, '..', 'docs', 'errors.md'), renderErrorsDoc());
