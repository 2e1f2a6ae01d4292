/**
 * The conversion interface: how a system tells Imago to turn its old rows
 * (Uold's schema) into new rows (Unew's schema). The data transfer consumes it
 * for any system; examples/auction/conversion is one implementation. A
 * system's own module imports these types as 'imago/conversion' (the
 * package's `exports`; `imago init` writes such a module).
 *
 * The unit of conversion is one old row, keyed by its old primary key, so an
 * insert, an update and a delete seen in Uold's binlog can each be mapped:
 *  - insert/copy: upsert convert(row) into the targets;
 *  - update: upsert convert(after); delete the target keys of convert(before)
 *    that convert(after) no longer produces (this handles primary-key changes);
 *  - delete: delete the target keys of convert(before).
 * Limits (see docs/conversion.md): a new row is a function of one old row (no
 * many-to-one joins); values derived from many old rows (a count, a maximum)
 * are declared as `refresh` statements that Unew recomputes from its own
 * converted rows: set-based once after the bulk copy, per key for each batch
 * of the change stream.
 */
export type Row = Record<string, unknown>;

export interface TargetTable {
  /** Table in Unew's schema. */
  table: string;
  /** Its primary-key columns; every converted row must carry them. */
  key: string[];
}

export interface RefreshSpec {
  /** Table in Unew whose derived columns must be recomputed. */
  table: string;
  /** The keys of `table` (values for `params`) that an old row affects. */
  keysOf(oldRow: Row): unknown[][];
  /**
   * The change stream's form: SQL run in Unew, in the same transaction as
   * the batch, once per affected key, with those values as `?` parameters.
   * Must be idempotent.
   */
  sql: string;
  /**
   * The bulk copy's form: the same recomputation for a set of rows of
   * `table`, run once per batch of its rows after the whole copy. Every `?`
   * is bound to the list of those rows' primary-key values, as an IN-list:
   * `... WHERE id IN (?)` (a composite key as tuples: `WHERE (a, b) IN (?)`).
   * Must be idempotent and give the same values as `sql` run per key.
   */
  setSql: string;
}

export interface TableConversion {
  /** Table in Uold's schema. Its primary key is read from Uold's catalog. */
  source: string;
  targets: TargetTable[];
  /**
   * Returns the new rows for one old row, by target table. Pure and
   * deterministic: the same old row always gives the same new rows (the copy
   * and the change stream may both convert it, in any order).
   */
  convert(oldRow: Row): Record<string, Row[]>;
  /** Derived values in Unew that this table's rows feed (e.g. items.max_bid from bids). */
  refresh?: RefreshSpec[];
  /**
   * Columns of a target that this conversion does not own (e.g. maintained
   * by `refresh`): an upsert must not overwrite them on an existing row.
   */
  preserveColumns?: Record<string, string[]>;
}

export interface ConversionModule {
  /** A name and version for reports, e.g. 'auction v1->v2'. */
  name: string;
  tables: TableConversion[];
  /** Old tables deliberately not carried over (anything else unlisted is an error at preflight). */
  ignoreTables?: string[];
  /**
   * The inverse conversion, for a rollback after the switchover (see
   * docs/rollback.md): one entry per Unew table this module writes, whose
   * `source` is that Unew table and whose targets are Uold tables. Same rules
   * as forward: pure, one new row -> old rows by key, values derived from
   * many rows by `refresh` (run in Uold). forward then reverse must give back
   * the old row (checked on a sample of Uold's rows by `imago preflight`).
   */
  reverse?: TableConversion[];
}

/**
 * The reverse direction as a module of its own (new tables -> old tables),
 * so the transfer's machinery (mapper, applier, follower) runs it unchanged.
 * Empty `tables` when the module declares no reverse.
 */
export function reverseModule(conv: ConversionModule): ConversionModule {
  return { name: `${conv.name} (reverse)`, tables: conv.reverse ?? [] };
}

/** A conversion that copies every listed table as it is (the identity), e.g. for benchmarks. */
export function identityConversion(tables: Array<{ table: string; key: string[] }>): ConversionModule {
  return {
    name: 'identity',
    tables: tables.map(({ table, key }) => ({
      source: table,
      targets: [{ table, key }],
      convert: (row: Row) => ({ [table]: [row] }),
    })),
  };
}
