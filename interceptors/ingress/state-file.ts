/**
 * The interceptor's state across restarts of the whole process: its
 * upstreams, and the target it must serve if it starts again now — the one
 * its hard timeout would choose (switcher.restoredTarget): an uncommitted
 * hold goes back to its origin, a committed one forward. The file changes
 * only when that target or the upstreams change (a commit, a release after an
 * uncommitted switch, a registration), and is written before the transition
 * is applied, so an interceptor that restarts after a switch never comes
 * back serving the old target. Mirroring, holds and counters are not kept.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import Ajv from 'ajv';
import { Type, type Static } from 'typebox';
import { imagoError } from '../../lib/errors';
import type { SwitchRecord } from './record';
import { restoredTarget } from './switcher';

export const PersistedState = Type.Object({
  version: Type.Literal(1),
  upstreams: Type.Record(Type.String(), Type.String()),
  /** The target to serve after a restart. */
  target: Type.String(),
  savedAt: Type.Number(),
}, { additionalProperties: false });
export type PersistedState = Static<typeof PersistedState>;

const check = new Ajv({ allErrors: true }).compile<PersistedState>(PersistedState as object);

export function persistedOf(rec: SwitchRecord, now = Date.now()): PersistedState {
  return { version: 1, upstreams: Object.fromEntries(rec.upstreams.map((u) => [u.name, u.url])), target: restoredTarget(rec), savedAt: now };
}

/** The saved state, or undefined when there is none yet. A damaged file is an error: guessing could serve the wrong version. */
export function readState(file: string): PersistedState | undefined {
  let text: string;
  try { text = fs.readFileSync(file, 'utf8'); } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw imagoError('INGRESS_STATE_INVALID', `${file}: ${(e as Error).message}`, e);
  }
  let value: unknown;
  try { value = JSON.parse(text); } catch (e) { throw imagoError('INGRESS_STATE_INVALID', `${file}: not JSON (${(e as Error).message})`, e); }
  if (!check(value)) throw imagoError('INGRESS_STATE_INVALID', `${file}: ${(check.errors ?? []).map((e) => `${e.instancePath || '(root)'} ${e.message}`).join('; ')}`);
  if (!(value.target in value.upstreams)) throw imagoError('INGRESS_STATE_INVALID', `${file}: target '${value.target}' is not among its upstreams`);
  return value;
}

/** Replaces the file atomically and durably (write, fsync, rename, fsync the directory). */
export function writeState(file: string, state: PersistedState): void {
  const tmp = `${file}.tmp-${process.pid}`;
  const fd = fs.openSync(tmp, 'w', 0o600);
  try {
    fs.writeSync(fd, `${JSON.stringify(state, null, 2)}\n`);
    fs.fsyncSync(fd);
  } finally { fs.closeSync(fd); }
  fs.renameSync(tmp, file);
  const dir = fs.openSync(path.dirname(file), 'r');
  try { fs.fsyncSync(dir); } finally { fs.closeSync(dir); }
}
