/**
 * The checks of a conversion's inverse (its `reverse`), pure: no server.
 *  - coverage: every Unew table the forward conversion writes has exactly
 *    one reverse entry, and each reverse entry writes only Uold tables the
 *    forward conversion reads;
 *  - round trip: for a sample of Uold's rows, reverse(convert(row)) is the
 *    row again — the same old table, the same key, every column equal.
 * `imago plan validate` makes the first, `imago preflight` and the
 * workflow's preflight both; a rollback replicates Unew's writes into Uold
 * through the reverse, so a reverse that is not the inverse would alter
 * Uold's data.
 */
import { imagoError } from '../lib/errors';
import type { ConversionModule, Row, TableConversion } from './conversion';
import { convertChecked, keyOf, keyText, mapTable } from './mapper';

/** Why the module's reverse does not cover what the forward conversion writes ([] when it does). */
export function reverseCoverageProblems(conv: ConversionModule): string[] {
  const out: string[] = [];
  const written = new Map<string, string>(); // Unew table -> the old table writing it (first)
  for (const t of conv.tables) for (const x of t.targets) if (!written.has(x.table)) written.set(x.table, t.source);
  const sources = new Set(conv.tables.map((t) => t.source));
  if (!conv.reverse) return [`the conversion '${conv.name}' declares no reverse: each Unew table it writes (${[...written.keys()].join(', ')}) needs one`];
  const seen = new Map<string, number>();
  conv.reverse.forEach((r, i) => {
    const at = `reverse[${i}]`;
    if (!r || typeof r.source !== 'string' || typeof r.convert !== 'function' || !Array.isArray(r.targets)) { out.push(`${at} needs source, targets and convert()`); return; }
    if (!written.has(r.source)) out.push(`${at}: source '${r.source}' is not a Unew table the conversion writes (${[...written.keys()].join(', ')})`);
    if (seen.has(r.source)) out.push(`${at}: table '${r.source}' already has a reverse (reverse[${seen.get(r.source)}])`);
    seen.set(r.source, i);
    for (const t of r.targets) if (!sources.has(t.table)) out.push(`${at}: target '${t.table}' is not a Uold table the conversion reads`);
  });
  for (const [table, from] of written) if (!seen.has(table)) out.push(`Unew table '${table}' (written from '${from}') has no reverse`);
  return out;
}

/** Throws ROLLBACK_REVERSE_MISSING with every coverage problem. */
export function expectReverseCoverage(conv: ConversionModule): void {
  const p = reverseCoverageProblems(conv);
  if (p.length) throw imagoError('ROLLBACK_REVERSE_MISSING', p.join('; '));
}

/** The first row of a sample whose round trip differs, with what came back. */
export interface RoundTripDiff {
  table: string;
  key: unknown[];
  row: Row;
  /** The rows reverse(convert(row)) produced for `table` (none: the row is lost on the way back). */
  back: Row[];
  /** The first column that differs (or why no row compares). */
  column: string | null;
  detail: string;
}

export interface RoundTripResult { table: string; checked: number; diff: RoundTripDiff | null }

/** A value in the form the comparison uses: dates as ISO text, decimals and numbers as their exact text, buffers as hex. */
export function comparable(v: unknown): string {
  if (v === null || v === undefined) return 'null';
  if (v instanceof Date) return `d:${v.toISOString()}`;
  if (Buffer.isBuffer(v)) return `b:${v.toString('hex')}`;
  if (typeof v === 'number' || typeof v === 'bigint') return `n:${normNumber(String(v))}`;
  if (typeof v === 'string' && /^-?\d+(\.\d+)?$/.test(v)) return `n:${normNumber(v)}`;
  return `s:${typeof v === 'object' ? JSON.stringify(v) : String(v)}`;
}

/** '12.30' and 12.3 are the same number; '007' and 7 too. Exact: digits are compared as text, never through a float. */
function normNumber(s: string): string {
  const neg = s.startsWith('-');
  let [int, frac = ''] = (neg ? s.slice(1) : s).split('.');
  int = int.replace(/^0+(?=\d)/, '');
  frac = frac.replace(/0+$/, '');
  const body = frac ? `${int}.${frac}` : int;
  return neg && body !== '0' ? `-${body}` : body;
}

/**
 * reverse(convert(row)) for each row of `sample` (rows of old table `t.source`,
 * primary key `sourceKey`), compared with the row. Stops at the first row
 * that differs. Rows the reverse produces for other old tables are not
 * compared here (their own table's sample checks them).
 */
export function checkRoundTrip(conv: ConversionModule, t: TableConversion, sourceKey: string[], sample: Row[]): RoundTripResult {
  const forward = mapTable(t, sourceKey);
  const reverse = new Map((conv.reverse ?? []).map((r) => [r.source, r]));
  const oldKeyOf = new Map<string, string[]>();
  for (const r of conv.reverse ?? []) for (const x of r.targets) oldKeyOf.set(r.source + '\u0000' + x.table, x.key);
  let checked = 0;
  for (const row of sample) {
    const key = keyOf(row, sourceKey);
    const diff = (back: Row[], column: string | null, detail: string): RoundTripResult => ({ table: t.source, checked, diff: { table: t.source, key, row, back, column, detail } });
    const back: Row[] = [];
    let converted: Map<string, Row[]>;
    try { converted = convertChecked(forward, row); } catch (err) { return diff([], null, `convert threw: ${(err as Error).message}`); }
    for (const [newTable, rows] of converted) {
      const rev = reverse.get(newTable);
      if (!rev) return diff([], null, `Unew table '${newTable}' has no reverse`);
      const k = oldKeyOf.get(newTable + '\u0000' + t.source);
      for (const n of rows) {
        let out: Record<string, Row[]>;
        try { out = rev.convert(n); } catch (err) { return diff([], null, `the reverse of '${newTable}' threw: ${(err as Error).message}`); }
        for (const r of out?.[t.source] ?? []) if (!k || keyText(keyOf(r, k)) === keyText(key)) back.push(r);
      }
    }
    if (!back.length) return diff(back, null, `reverse(convert(row)) gives no '${t.source}' row with key ${keyText(key)}: the row would be lost on the way back`);
    for (const b of back) {
      for (const col of Object.keys(row)) {
        if (!(col in b)) return diff(back, col, `column '${col}' is missing from the row given back (expected ${JSON.stringify(show(row[col]))})`);
        if (comparable(b[col]) !== comparable(row[col])) return diff(back, col, `column '${col}' comes back as ${JSON.stringify(show(b[col]))}, was ${JSON.stringify(show(row[col]))}`);
      }
      const extra = Object.keys(b).filter((c) => !(c in row));
      if (extra.length) return diff(back, extra[0], `the row given back has column(s) ${extra.join(', ')} that '${t.source}' does not have`);
    }
    checked++;
  }
  return { table: t.source, checked, diff: null };
}

function show(v: unknown): unknown {
  return v instanceof Date ? v.toISOString() : Buffer.isBuffer(v) ? v.toString('hex') : typeof v === 'bigint' ? v.toString() : v;
}

/** The registry error for a failed round trip, naming the table and the first differing row. */
export function roundTripError(d: RoundTripDiff) {
  return imagoError('ROLLBACK_REVERSE_NOT_INVERSE', `table '${d.table}', key ${keyText(d.key)}: ${d.detail}; row ${JSON.stringify(Object.fromEntries(Object.entries(d.row).map(([k, v]) => [k, show(v)])))}`);
}
