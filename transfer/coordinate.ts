/**
 * Binlog coordinates as one ordered number. A coordinate (file, offset)
 * names a point in Uold's binary log; files are numbered (binlog.000042), so
 * (file index, offset) orders every point of the log. Packed as
 * index × 2^32 + offset into an unsigned 64-bit integer (BigInt here,
 * BIGINT UNSIGNED in Unew), it compares with one `>`.
 *
 * Used to order a chunk's snapshot against the change stream without asking
 * the server: a transaction is in a snapshot exactly when its end
 * coordinate is at or before the snapshot's coordinate.
 */
import type { BinlogCoordinate } from '../lib/sql';
import { imagoError } from '../lib/errors';

const OFFSET_BITS = 32n;
const MAX_OFFSET = (1n << OFFSET_BITS) - 1n;

/** The numeric suffix of a binlog file name ('binlog.000042' → 42). */
export function binlogFileIndex(file: string): number {
  const m = /\.(\d+)$/.exec(file);
  if (!m) throw imagoError('IMAGO_INTERNAL', `not a binlog file name: '${file}'`);
  return Number(m[1]);
}

export function packCoordinate(c: BinlogCoordinate): bigint {
  const offset = BigInt(c.pos);
  if (offset < 0n || offset > MAX_OFFSET) throw imagoError('IMAGO_INTERNAL', `binlog offset out of range: ${c.file}:${c.pos}`);
  return (BigInt(binlogFileIndex(c.file)) << OFFSET_BITS) | offset;
}

export function unpackCoordinate(v: bigint, prefix = 'binlog'): BinlogCoordinate {
  return { file: `${prefix}.${String(v >> OFFSET_BITS).padStart(6, '0')}`, pos: Number(v & MAX_OFFSET) };
}

/** 'binlog.000042:1234' for messages. */
export function coordinateText(c: BinlogCoordinate): string {
  return `${c.file}:${c.pos}`;
}
