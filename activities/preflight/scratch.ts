/**
 * A scratch Unew: a throwaway MariaDB with the plan's database, the
 * application's account as the local provider creates it ('app' at
 * 127.0.0.1, localhost and '%', with unew.grants.privileges) and the new
 * schema applied as the worker applies it (one multi-statement query). The
 * preflight converts samples of Uold's rows into it; `imago init` reads the
 * new schema's catalog from it. Destroyed after use, data folder included.
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import type * as mysql from 'mysql2/promise';
import { imagoError } from '../../lib/errors';
import { MariaDbInstance } from '../../lib/mariadb';
import { fileLine } from '../../plan/deep-check';

export class ScratchUnew {
  private constructor(readonly db: MariaDbInstance, readonly database: string) {}

  /** Starts the instance, creates the database and the application's account. */
  static async start(database: string, privileges: readonly string[]): Promise<ScratchUnew> {
    const db = new MariaDbInstance();
    try {
      await db.start();
      await db.createDatabase(database);
      // Before the schema, as the local provider does: a schema file may GRANT or REVOKE on the app's account.
      await db.createUser('app', crypto.randomBytes(12).toString('hex'), [`${privileges.join(', ')} ON \`${database}\`.*`]);
      return new ScratchUnew(db, database);
    } catch (err) {
      await db.destroy().catch(() => undefined);
      throw err;
    }
  }

  /** A root connection to the scratch database. Caller ends it. */
  connect(): Promise<mysql.Connection> { return this.db.connect(this.database); }

  /**
   * Applies a schema file; IMAGO_SCHEMA_FILE_INVALID naming the file, the line of a
   * syntax error when it can be found, and MariaDB's message otherwise.
   * Returns the number of tables it created.
   */
  async applySchema(file: string): Promise<number> {
    const sql = fs.readFileSync(file, 'utf8');
    const conn = await this.connect();
    try {
      try { await conn.query(sql); } catch (err) {
        throw imagoError('IMAGO_SCHEMA_FILE_INVALID', `${file}${fileLine(sql, err)}: ${String((err as Error).message).split('\n')[0].slice(0, 500)}`);
      }
      const [rows] = await conn.query("SELECT COUNT(*) AS n FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_TYPE = 'BASE TABLE'", [this.database]) as [Array<{ n: number }>, unknown];
      return Number(rows[0].n);
    } finally {
      await conn.end().catch(() => undefined);
    }
  }

  async destroy(): Promise<void> { await this.db.destroy(); }
}
