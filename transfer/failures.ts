/**
 * Every failure of the transfer leaves it as a registry error that says which
 * side failed and why: Uold or Unew unreachable (a state to wait out or
 * retry: the transfer resumes from the state kept in Unew), a statement one
 * of them refused, or a converted row Unew's schema does not accept.
 */
import { imagoError, isImagoError, type ImagoError } from '../lib/errors';
import { isConnectionError } from '../lib/sql';

export type Side = 'source' | 'target';

/** Unew refusing a converted row: the conversion does not fit the new schema (retrying cannot help). */
const DATA_ERRORS = new Set([
  'ER_DATA_TOO_LONG', 'ER_TRUNCATED_WRONG_VALUE', 'ER_TRUNCATED_WRONG_VALUE_FOR_FIELD', 'ER_BAD_NULL_ERROR',
  'ER_NO_DEFAULT_FOR_FIELD', 'ER_WARN_DATA_OUT_OF_RANGE', 'ER_BAD_FIELD_ERROR', 'ER_NO_SUCH_TABLE',
  'ER_DUP_ENTRY', 'ER_NO_REFERENCED_ROW_2', 'ER_ROW_IS_REFERENCED_2', 'ER_CHECK_CONSTRAINT_VIOLATED',
  'WARN_DATA_TRUNCATED', 'ER_WRONG_VALUE_COUNT_ON_ROW',
]);

/** The registry error for a failure on one side; registry errors pass through unchanged. */
export function transferError(err: unknown, side: Side, what: string): ImagoError {
  if (isImagoError(err)) return err;
  const e = err as { code?: string; message?: string } | null;
  const msg = `${what}: ${e?.message ?? String(err)}`;
  if (isConnectionError(err)) return imagoError(side === 'source' ? 'TRANSFER_SOURCE_UNREACHABLE' : 'TRANSFER_TARGET_UNREACHABLE', msg, err);
  if (side === 'target' && e?.code && DATA_ERRORS.has(e.code)) return imagoError('TRANSFER_SCHEMA_MISMATCH', msg, err);
  return imagoError(side === 'source' ? 'TRANSFER_SOURCE_READ_FAILED' : 'TRANSFER_TARGET_WRITE_FAILED', msg, err);
}

/** Runs `fn` and turns whatever it throws into the registry error of `side`. */
export async function on<T>(side: Side, what: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw transferError(err, side, what);
  }
}
