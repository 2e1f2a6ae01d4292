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
import { createHash } from 'node:crypto';
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

/**
 * The file has two slots of SLOT bytes, each `{seq, sum, state}` (sum: the
 * SHA-256 of the state's JSON) padded with spaces. A write fills the slot
 * that does not hold the latest state, in place, then fdatasync: one flush
 * of a few hundred bytes (about 0.3 ms here, where a rename and two fsyncs
 * take 3-7 ms). A write torn by a crash damages only the slot being written;
 * the other still holds the previous state, which is the right one, since
 * the state is written before the transition it announces is applied.
 */
const SLOT = 16 * 1024;

interface Slot { seq: number; sum: string; state: unknown }

const sumOf = (state: unknown): string => createHash('sha256').update(JSON.stringify(state)).digest('hex');

function slotBytes(seq: number, state: PersistedState): Buffer {
  const text = JSON.stringify({ seq, sum: sumOf(state), state } satisfies Slot);
  if (Buffer.byteLength(text) > SLOT - 1) throw imagoError('INGRESS_STATE_INVALID', `the state is larger than ${SLOT} bytes (too many upstreams)`);
  const buf = Buffer.alloc(SLOT, 0x20);
  buf.write(text, 0, 'utf8');
  buf[SLOT - 1] = 0x0a;
  return buf;
}

/** The valid slots of a file's bytes, newest first. */
function slotsOf(bytes: Buffer): Array<{ seq: number; state: unknown; index: number }> {
  const out: Array<{ seq: number; state: unknown; index: number }> = [];
  for (let i = 0; i < 2; i += 1) {
    const text = bytes.subarray(i * SLOT, (i + 1) * SLOT).toString('utf8').trim();
    if (!text) continue;
    try {
      const s = JSON.parse(text) as Slot;
      if (typeof s.seq === 'number' && s.sum === sumOf(s.state)) out.push({ seq: s.seq, state: s.state, index: i });
    } catch { /* torn or damaged: the other slot counts */ }
  }
  return out.sort((x, y) => y.seq - x.seq);
}

export class StateFile {
  private seq = 0;
  private slot = 0;
  private fd: number | undefined;

  constructor(readonly file: string) {}

  /** The saved state, or undefined when there is none yet. A damaged file is an error: guessing could serve the wrong version. */
  read(): PersistedState | undefined {
    let bytes: Buffer;
    try { bytes = fs.readFileSync(this.file); } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw imagoError('INGRESS_STATE_INVALID', `${this.file}: ${(e as Error).message}`, e);
    }
    const slots = slotsOf(bytes);
    if (!slots.length) throw imagoError('INGRESS_STATE_INVALID', `${this.file}: no intact state in it (not written by this interceptor, or damaged)`);
    const latest = slots[0];
    const value = latest.state;
    if (!check(value)) throw imagoError('INGRESS_STATE_INVALID', `${this.file}: ${(check.errors ?? []).map((e) => `${e.instancePath || '(root)'} ${e.message}`).join('; ')}`);
    if (!(value.target in value.upstreams)) throw imagoError('INGRESS_STATE_INVALID', `${this.file}: target '${value.target}' is not among its upstreams`);
    this.seq = latest.seq;
    this.slot = 1 - latest.index;
    return value;
  }

  /** Writes the state durably before returning (see above). */
  write(state: PersistedState): void {
    if (this.fd === undefined && !fs.existsSync(this.file)) {
      // The first time: a complete file, created atomically and durably.
      const tmp = `${this.file}.tmp-${process.pid}`;
      const fd = fs.openSync(tmp, 'w', 0o600);
      try {
        fs.writeSync(fd, Buffer.concat([slotBytes(this.seq + 1, state), Buffer.alloc(SLOT, 0x20)]));
        fs.fsyncSync(fd);
      } finally { fs.closeSync(fd); }
      fs.renameSync(tmp, this.file);
      const dir = fs.openSync(path.dirname(this.file), 'r');
      try { fs.fsyncSync(dir); } finally { fs.closeSync(dir); }
      this.seq += 1;
      this.slot = 1;
      return;
    }
    this.fd ??= fs.openSync(this.file, 'r+');
    fs.writeSync(this.fd, slotBytes(this.seq + 1, state), 0, SLOT, this.slot * SLOT);
    fs.fdatasyncSync(this.fd);
    this.seq += 1;
    this.slot = 1 - this.slot;
  }

  close(): void {
    if (this.fd !== undefined) fs.closeSync(this.fd);
    this.fd = undefined;
  }
}
