/**
 * Writes the TypeScript conversion module `imago init` generates: one typed
 * row shape per Uold table, and one TableConversion per table — a plain copy
 * where the table is an identity, else an explicit column mapping in which
 * every column that needs a decision carries a TODO. A column Unew cannot
 * fill is `todo('…')`, which throws when a row reaches it, so
 * `imago preflight` (which converts real rows) names what is left. Types come
 * from 'imago/conversion' only (`import type`: nothing to load at run time).
 */
import type { ColumnInfo } from './catalog';
import { describeColumn, type SchemaMatch, type TableMatch } from './match';

export interface ConversionSourceInput {
  /** The module's name, e.g. 'auction v1 -> v2'. */
  name: string;
  /** Where the catalogs came from, for the header. */
  from: string;
  match: SchemaMatch;
}

const IDENT = /^[A-Za-z_$][A-Za-z0-9_$]*$/;
const quote = (s: string) => `'${s.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
/** An object key: bare when it is an identifier. */
const key = (name: string) => (IDENT.test(name) ? name : quote(name));
/** Reading a column of `row`. */
const get = (name: string) => (IDENT.test(name) ? `row.${name}` : `row[${quote(name)}]`);
/** The row type's name for an old table: UoldUsers, UoldBuyNow. */
export function rowTypeName(table: string): string {
  const words = table.split(/[^A-Za-z0-9]+/).filter(Boolean).map((w) => w[0].toUpperCase() + w.slice(1));
  return `Uold${words.join('') || 'Table'}`;
}

/** The TODO notes of a table, for its comment and the summary. */
export function todoNotes(m: TableMatch, unfed: string[]): string[] {
  const notes: string[] = [];
  const t = m.source.name;
  if (!m.target) {
    notes.push(`Unew has no table '${t}': name its target table(s)${unfed.length ? ` (new tables no old table feeds: ${unfed.join(', ')})` : ''} and map its columns, or move '${t}' to ignoreTables`);
    return notes;
  }
  if (m.how === 'by-columns') notes.push(`target '${m.target.name}' guessed from shared columns (${m.overlap?.shared} of ${m.overlap?.of}): confirm it`);
  if (m.keyChanged) notes.push(`the key changes from (${m.source.key.join(', ') || 'none'}) to (${m.target.key.join(', ') || 'none'}): every converted row must carry the new key's columns`);
  for (const c of m.columns) {
    if (c.kind === 'todo') notes.push(`${m.target.name}.${c.column.name} ${describeColumn(c.column)}: not in Uold and Unew cannot fill it; compute it${c.hint ? ` (${c.hint})` : ''}`);
    if (c.kind === 'type-changed') notes.push(`${m.target.name}.${c.column.name}: ${describeColumn(c.from)} in Uold, ${describeColumn(c.column)} here; convert the value if copying it is not enough`);
  }
  const newNames = m.columns.map((c) => c.column.name);
  for (const d of m.dropped) {
    const near = newNames.filter((n) => n !== d.name && (n.startsWith(`${d.name}_`) || n.endsWith(`_${d.name}`) || d.name.startsWith(`${n}_`)));
    notes.push(`Uold's ${t}.${d.name} (${describeColumn(d)}) reaches no new column${near.length ? `: the source of ${near.join(', ')}?` : ''}`);
  }
  return notes;
}

function rowType(m: TableMatch): string[] {
  const width = Math.max(...m.source.columns.map((c) => key(c.name).length)) + 11;
  return [
    `/** A row of Uold's ${m.source.name}, as convert() receives it (numbers, strings, Dates, Buffers or null: convert explicitly). */`,
    `type ${rowTypeName(m.source.name)} = {`,
    ...m.source.columns.map((c) => `  ${`${key(c.name)}: unknown;`.padEnd(width)}// ${describeColumn(c)}${m.source.key.includes(c.name) ? ', key' : ''}`),
    '};',
  ];
}

function tableEntry(m: TableMatch, unfed: string[]): string[] {
  const s = m.source;
  const type = rowTypeName(s.name);
  const notes = todoNotes(m, unfed);
  const head = m.target
    ? `// ${s.name} → ${m.target.name}${m.identity && !notes.length ? ': same columns and key, rows copied as they are' : m.identity ? ': same columns and key' : ''}`
    : `// ${s.name} → ?`;
  const lines = [head, ...notes.map((n) => `// TODO ${n}`)];
  if (!m.target) {
    return [...lines, '{', `  source: ${quote(s.name)},`, `  targets: [{ table: ${quote(s.name)}, key: [${s.key.map(quote).join(', ')}] }],`,
      `  convert: (_row: ${type}) => todo(${quote(`${s.name}: Unew has no table '${s.name}'; name its target(s)`)}),`, '},'];
  }
  const t = m.target;
  lines.push('{', `  source: ${quote(s.name)},`, `  targets: [{ table: ${quote(t.name)}, key: [${t.key.map(quote).join(', ')}] }],`);
  if (m.identity) {
    lines.push(`  convert: (row: ${type}) => ({ ${key(t.name)}: [{ ...row }] }),`, '},');
    return lines;
  }
  const width = Math.max(...m.columns.map((c) => key(c.column.name).length)) + 2;
  const field = (c: ColumnInfo, value: string, note?: string) => `      ${`${key(c.name)}:`.padEnd(width)} ${value},${note ? ` // ${note}` : ''}`;
  lines.push(`  convert: (row: ${type}) => ({`, `    ${key(t.name)}: [{`);
  for (const c of m.columns) {
    if (c.kind === 'same') lines.push(field(c.column, get(c.column.name)));
    else if (c.kind === 'type-changed') lines.push(field(c.column, get(c.column.name), `TODO ${describeColumn(c.from)} → ${describeColumn(c.column)}`));
    else if (c.kind === 'todo') lines.push(field(c.column, `todo(${quote(`${t.name}.${c.column.name} (${describeColumn(c.column)})`)})`));
    else lines.push(`      // ${key(c.column.name)}: left out, Unew fills it (${describeColumn(c.column)})`);
  }
  lines.push('    }],', '  }),', '},');
  return lines;
}

export function conversionSource(input: ConversionSourceInput): string {
  const { match } = input;
  const unfed = match.unfed.map((t) => t.name);
  const todos = match.tables.reduce((n, m) => n + todoNotes(m, unfed).length, 0);
  const indent = (lines: string[], by: string) => lines.map((l) => (l ? by + l : l));
  const entries = match.tables.flatMap((m) => tableEntry(m, unfed));
  const usesTodo = entries.some((l) => l.includes('todo('));
  const out = [
    '/**',
    ` * Conversion ${input.name}: how each row of Uold becomes rows of Unew (docs/conversion.md).`,
    ` * Written by \`imago init\` from ${input.from}.`,
    ' *',
    ' * Copies are pure and deterministic: the bulk copy and the change stream may both convert a row, in any order.',
    todos
      ? ` * ${todos} TODO(s) below need you. A todo(...) throws when a row reaches it: \`imago preflight\` converts real rows and names each one left.`
      : ' * Every table is copied as it is: nothing to fill in.',
    ' */',
    "import type { ConversionModule } from 'imago/conversion';",
    '',
    ...(usesTodo ? [
      '/** A value still to be written: throws, naming it, until you replace the call. */',
      'function todo(what: string): never {',
      '  throw new Error(`TODO in the conversion: ${what}`);',
      '}',
      '',
    ] : []),
    ...match.tables.flatMap((m) => [...rowType(m), '']),
    'const conversion: ConversionModule = {',
    `  name: ${quote(input.name)},`,
    '  tables: [',
    ...indent(entries, '    '),
    '  ],',
    '  // Old tables deliberately not carried over (any other table without an entry fails the preflight).',
    '  ignoreTables: [],',
    '};',
    ...(unfed.length ? ['', `// Unew's tables no old table feeds: ${unfed.join(', ')}. The new version owns them (e.g. a sequence it starts itself), or they are a target still to name above.`] : []),
    '',
    'export default conversion;',
    '',
  ];
  return out.join('\n');
}
