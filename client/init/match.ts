/**
 * How `imago init` pairs Uold's tables with the new schema's, column by
 * column, to write the conversion: an old table goes to the new table of the
 * same name, else to the unclaimed new table sharing most of its columns (a
 * guess, always marked for review). Each column of the target is copied from
 * the old column of the same name, left to Unew when the new schema fills it
 * (NULL, a default, generated, auto-increment), or is a TODO. A table is an
 * identity when its rows can be copied as they are. Pure: catalogs in, plan out.
 */
import { fillsItself, type ColumnInfo, type TableInfo } from './catalog';

export type ColumnMapping =
  /** Copied from the old column of the same name and type. */
  | { kind: 'same'; column: ColumnInfo }
  /** Copied from the old column of the same name, whose type differs: to review. */
  | { kind: 'type-changed'; column: ColumnInfo; from: ColumnInfo }
  /** Not in Uold; Unew fills it (NULL, default, auto-increment). */
  | { kind: 'filled'; column: ColumnInfo }
  /** Not in Uold, and Unew cannot fill it: the conversion must compute it. */
  | { kind: 'todo'; column: ColumnInfo; hint?: string };

export interface TableMatch {
  source: TableInfo;
  /** The new table its rows go to; undefined when none was found. */
  target?: TableInfo;
  /** same-name, or guessed from shared columns (to review). */
  how: 'same-name' | 'by-columns' | 'none';
  /** Shared column names / the target's columns, for a guessed target. */
  overlap?: { shared: number; of: number };
  /** One per target column that a converted row carries (generated columns are never written). */
  columns: ColumnMapping[];
  /** Old columns that reach no new column of the same name. */
  dropped: ColumnInfo[];
  /** The target's primary key differs from the old one. */
  keyChanged: boolean;
  /** Rows can be copied as they are ({ ...row }): same key, no dropped, changed or uncomputed column. */
  identity: boolean;
}

export interface SchemaMatch {
  tables: TableMatch[];
  /** New tables no old table feeds: the new version's own (e.g. a sequence), or a target still to name. */
  unfed: TableInfo[];
}

/** A guessed target needs at least this share of its columns among the old table's. */
const GUESS_THRESHOLD = 0.5;

export function matchSchemas(old: TableInfo[], neu: TableInfo[]): SchemaMatch {
  const byName = new Map(neu.map((t) => [t.name, t]));
  const claimed = new Set(old.filter((t) => byName.has(t.name)).map((t) => t.name));
  // Guesses, best overlap first, each new table to one old table at most.
  const candidates: Array<{ source: TableInfo; target: TableInfo; shared: number; of: number; score: number }> = [];
  for (const s of old.filter((t) => !byName.has(t.name))) {
    const names = new Set(s.columns.map((c) => c.name));
    for (const t of neu.filter((n) => !claimed.has(n.name))) {
      const written = t.columns.filter((c) => !c.generated);
      const shared = written.filter((c) => names.has(c.name)).length;
      const score = written.length ? shared / written.length : 0;
      // One shared column (typically 'id') says nothing: at least two, and most of the target's.
      if (shared >= 2 && score >= GUESS_THRESHOLD) candidates.push({ source: s, target: t, shared, of: written.length, score });
    }
  }
  candidates.sort((a, b) => b.score - a.score || b.shared - a.shared || a.source.name.localeCompare(b.source.name));
  const guessed = new Map<string, (typeof candidates)[number]>();
  for (const c of candidates) {
    if (guessed.has(c.source.name) || claimed.has(c.target.name)) continue;
    guessed.set(c.source.name, c);
    claimed.add(c.target.name);
  }
  const tables = old.map((s): TableMatch => {
    const same = byName.get(s.name);
    const guess = guessed.get(s.name);
    const target = same ?? guess?.target;
    if (!target) return { source: s, how: 'none', columns: [], dropped: [...s.columns], keyChanged: true, identity: false };
    return { ...matchColumns(s, target), how: same ? 'same-name' : 'by-columns', ...(guess && !same ? { overlap: { shared: guess.shared, of: guess.of } } : {}) };
  });
  return { tables, unfed: neu.filter((t) => !claimed.has(t.name)) };
}

function matchColumns(source: TableInfo, target: TableInfo): Omit<TableMatch, 'how'> {
  const old = new Map(source.columns.map((c) => [c.name, c]));
  const columns: ColumnMapping[] = [];
  for (const c of target.columns) {
    if (c.generated) continue;
    const from = old.get(c.name);
    if (from) columns.push(sameType(from, c) ? { kind: 'same', column: c } : { kind: 'type-changed', column: c, from });
    else if (fillsItself(c)) columns.push({ kind: 'filled', column: c });
    else columns.push({ kind: 'todo', column: c, ...hintFor(c, source, target) });
  }
  const kept = new Set(target.columns.filter((c) => !c.generated).map((c) => c.name));
  const dropped = source.columns.filter((c) => !kept.has(c.name));
  const keyChanged = source.key.join() !== target.key.join();
  const identity = !keyChanged && dropped.length === 0 && columns.every((m) => m.kind === 'same' || m.kind === 'filled');
  return { source, target, columns, dropped, keyChanged, identity };
}

/** Types that are the same once display widths are ignored (int(11) = int); NOT NULL → NULL only relaxes. */
function sameType(a: ColumnInfo, b: ColumnInfo): boolean {
  const norm = (t: string) => t.replace(/^(tinyint|smallint|mediumint|int|bigint)\(\d+\)/, '$1').trim();
  return norm(a.type) === norm(b.type) && (a.nullable === b.nullable || b.nullable);
}

/** An old column this one probably comes from: its name is a prefix or suffix of the new name (balance → balance_cents). */
function hintFor(c: ColumnInfo, source: TableInfo, target: TableInfo): { hint?: string } {
  const kept = new Set(target.columns.map((x) => x.name));
  const near = source.columns.filter((o) => !kept.has(o.name) && (c.name.startsWith(`${o.name}_`) || c.name.endsWith(`_${o.name}`) || o.name.startsWith(`${c.name}_`)));
  return near.length ? { hint: `from ${near.map((o) => `${source.name}.${o.name} (${o.type})`).join(' or ')}?` } : {};
}

/** 'varchar(50) NOT NULL', for comments. */
export function describeColumn(c: ColumnInfo): string {
  return `${c.type}${c.nullable ? '' : ' NOT NULL'}${c.hasDefault ? ' DEFAULT' : ''}${c.autoIncrement ? ' AUTO_INCREMENT' : ''}`;
}
