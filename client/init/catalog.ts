/**
 * A database's tables as `imago init` needs them: columns with their types,
 * whether the database fills them itself (nullable, a default, generated,
 * auto-increment), and the primary key. Read from information_schema only.
 */
import type * as mysql from 'mysql2/promise';

export interface ColumnInfo {
  name: string;
  /** As the catalog prints it, e.g. 'decimal(12,2)', 'int(11) unsigned'. */
  type: string;
  nullable: boolean;
  /** A DEFAULT clause (including DEFAULT NULL). */
  hasDefault: boolean;
  /** VIRTUAL or STORED generated: computed by the database, never written. */
  generated: boolean;
  autoIncrement: boolean;
}

export interface TableInfo {
  name: string;
  columns: ColumnInfo[];
  /** Primary-key columns in key order; [] when none. */
  key: string[];
}

/** Whether Unew fills the column when a converted row leaves it out. */
export function fillsItself(c: ColumnInfo): boolean {
  return c.nullable || c.hasDefault || c.generated || c.autoIncrement;
}

export async function readCatalog(conn: mysql.Connection | mysql.Pool, database: string): Promise<TableInfo[]> {
  const [cols] = await conn.query(
    `SELECT c.TABLE_NAME AS t, c.COLUMN_NAME AS name, c.COLUMN_TYPE AS type, c.IS_NULLABLE AS nullable, c.COLUMN_DEFAULT AS def, c.EXTRA AS extra, c.COLUMN_KEY AS ckey
       FROM information_schema.COLUMNS c JOIN information_schema.TABLES t ON t.TABLE_SCHEMA = c.TABLE_SCHEMA AND t.TABLE_NAME = c.TABLE_NAME
      WHERE c.TABLE_SCHEMA = ? AND t.TABLE_TYPE = 'BASE TABLE' ORDER BY c.TABLE_NAME, c.ORDINAL_POSITION`, [database],
  ) as [Array<{ t: string; name: string; type: string; nullable: string; def: string | null; extra: string }>, unknown];
  const [keys] = await conn.query(
    "SELECT TABLE_NAME AS t, COLUMN_NAME AS c FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = ? AND INDEX_NAME = 'PRIMARY' ORDER BY TABLE_NAME, SEQ_IN_INDEX", [database],
  ) as [Array<{ t: string; c: string }>, unknown];
  const tables = new Map<string, TableInfo>();
  for (const r of cols) {
    const t = tables.get(r.t) ?? tables.set(r.t, { name: r.t, columns: [], key: [] }).get(r.t)!;
    const extra = String(r.extra ?? '').toLowerCase();
    t.columns.push({
      name: r.name, type: String(r.type).toLowerCase(), nullable: r.nullable === 'YES',
      // MariaDB prints the SQL text of a default ('NULL' for DEFAULT NULL); no default at all is SQL NULL.
      hasDefault: r.def !== null, generated: /generated/.test(extra) && !/default_generated/.test(extra), autoIncrement: /auto_increment/.test(extra),
    });
  }
  for (const k of keys) tables.get(k.t)?.key.push(k.c);
  return [...tables.values()];
}
