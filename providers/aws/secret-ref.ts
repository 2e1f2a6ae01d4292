/**
 * Resolves a secret reference from the plan (`env:NAME` or `file:/path`) on
 * the worker. The value is used inside the activity and never returned, so
 * it cannot reach workflow history.
 */
import * as fs from 'node:fs/promises';
import { imagoError } from '../../lib/errors';

export async function resolveSecretRef(ref: string): Promise<string> {
  if (ref.startsWith('env:')) {
    const v = process.env[ref.slice(4)];
    if (v) return v;
  } else if (ref.startsWith('file:')) {
    const v = await fs.readFile(ref.slice(5), 'utf8').catch(() => undefined);
    if (v?.trim()) return v.trim();
  }
  throw imagoError('IMAGO_SECRET_UNRESOLVED', `reference ${ref} (from unew.aws.database) did not resolve to a value`);
}
