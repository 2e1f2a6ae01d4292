import type * as mysql from 'mysql2/promise';
import { imagoError } from '../lib/errors';
import { qualified, type BinlogCoordinate } from '../lib/sql';
import { binlogChecks, grantChecks, readUoldServer, throwOnFailure } from '../lib/uold-requirements';

/**
 * The inspector asks Uold (and Unew's catalog) read-only questions. Nothing
 * here writes; `expect*` methods throw a registry error naming what is wrong.
 */
export class Inspector {
  constructor(private readonly db: mysql.Pool | mysql.Connection, private readonly database: string) {}

  // Rows of information_schema and SHOW statements: their columns are read by name, each converted where used.
  private async rows(sql: string, params: unknown[] = []): Promise<mysql.RowDataPacket[]> {
    const [rows] = await this.db.query<mysql.RowDataPacket[]>(sql, params);
    return rows;
  }

  /** Uold's binary log, by the rules every preflight shares (lib/uold-requirements.ts). */
  async expectRowBinlog(): Promise<void> {
    throwOnFailure(binlogChecks((await readUoldServer(this.db)).variables));
  }

  /** REPLICATION SLAVE, REPLICATION CLIENT (MariaDB: BINLOG MONITOR) and SELECT on the database, by the same rules. */
  async expectReplicationPrivileges(_user: string): Promise<void> {
    const facts = await readUoldServer(this.db);
    throwOnFailure(grantChecks(facts.grants, this.database, facts.account));
  }

  async tables(): Promise<string[]> {
    const rows = await this.rows("SELECT TABLE_NAME AS t FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_TYPE = 'BASE TABLE' ORDER BY TABLE_NAME", [this.database]);
    return rows.map((r) => r.t);
  }

  /** Primary-key columns in key order; [] when the table has none. */
  async primaryKey(table: string): Promise<string[]> {
    const rows = await this.rows("SELECT COLUMN_NAME AS c FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND INDEX_NAME = 'PRIMARY' ORDER BY SEQ_IN_INDEX", [this.database, table]);
    return rows.map((r) => r.c);
  }

  async columns(table: string): Promise<string[]> {
    const rows = await this.rows('SELECT COLUMN_NAME AS c FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION', [this.database, table]);
    return rows.map((r) => r.c);
  }

  async countRows(table: string): Promise<number> {
    const [r] = await this.rows(`SELECT COUNT(*) AS n FROM ${qualified(this.database, table)}`);
    return Number(r.n);
  }

  /** Rows and average bytes per row as InnoDB estimates them (to order and weigh tables; 0 when unknown). */
  async tableEstimates(): Promise<Map<string, { rows: number; rowBytes: number }>> {
    const rows = await this.rows('SELECT TABLE_NAME AS t, TABLE_ROWS AS n, AVG_ROW_LENGTH AS b FROM information_schema.TABLES WHERE TABLE_SCHEMA = ?', [this.database]);
    return new Map(rows.map((r) => [r.t, { rows: Number(r.n ?? 0), rowBytes: Number(r.b ?? 0) }]));
  }

  async gtidBinlogPos(): Promise<string> {
    const [r] = await this.rows('SELECT @@gtid_binlog_pos AS p');
    return String(r.p ?? '');
  }

  /** Uold's binlog coordinate now (the end of its last committed transaction). */
  async binlogCoordinate(): Promise<BinlogCoordinate> {
    const [r] = await this.rows('SHOW MASTER STATUS');
    if (!r?.File) throw imagoError('IMAGO_PREFLIGHT_BINLOG', 'SHOW MASTER STATUS returns no binlog file (log_bin is OFF?)');
    return { file: String(r.File), pos: Number(r.Position) };
  }

  async threadsRunning(): Promise<number> {
    const [r] = await this.rows("SHOW GLOBAL STATUS LIKE 'Threads_running'");
    return Number(r?.Value ?? 0);
  }

  /** Identifies the source for the saved state: server id and database. */
  async sourceId(): Promise<string> {
    const [r] = await this.rows('SELECT @@server_id AS id');
    return `server ${r.id}/${this.database}`;
  }
}
