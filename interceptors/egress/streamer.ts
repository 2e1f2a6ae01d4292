import { EventEmitter } from 'node:events';
import { sslOptions, tlsOfUrl } from '../../lib/db-tls';
import { imagoError, type ImagoError } from '../../lib/errors';
import type { Row } from '../../transfer/conversion';
import { GtidPosition } from '../../transfer/position';

// ESM-only package; its default export is the ZongJi class.
const ZongJi = require('@vlasky/zongji').default;

export interface StreamerOptions {
  /** mysql://user:pw@host:port/ of Uold, with its TLS (lib/db-tls.ts); the user needs only REPLICATION SLAVE, REPLICATION CLIENT, SELECT. */
  url: string;
  database: string;
  /** Tables whose row changes are delivered; every other transaction only advances the position. */
  tables: string[];
  serverId: number;
}

export interface StreamedTxn {
  gtid: string;
  changes: Array<{ table: string; before: Row | null; after: Row | null }>;
  /** Local time the commit event arrived (for lag). */
  receivedAt: number;
}

/**
 * The egress interceptor E: reads Uold's binlog as a replica would (ROW
 * format, GTIDs) and hands over whole committed transactions in commit order.
 * It never writes to Uold. Every transaction advances `position`, including
 * those on other tables or databases and DDL: flush-to-position needs to see
 * Uold's @@gtid_binlog_pos reached even when no row of ours changed.
 */
export class Streamer extends EventEmitter {
  readonly position: GtidPosition;
  error?: ImagoError;
  private zongji: any;
  private current?: StreamedTxn;
  private readonly wanted: Set<string>;

  constructor(private readonly opts: StreamerOptions, from: string) {
    super();
    this.position = GtidPosition.parse(from);
    this.wanted = new Set(opts.tables);
  }

  async start(): Promise<void> {
    const u = new URL(this.opts.url);
    // The binlog connection is as secure as every other one to Uold: the same TLS, from the same URL.
    const ssl = sslOptions(tlsOfUrl(this.opts.url, "Uold's database (binlog reader)"));
    const z = new ZongJi({
      host: u.hostname, port: Number(u.port || 3306),
      user: decodeURIComponent(u.username), password: decodeURIComponent(u.password),
      supportBigNumbers: true, bigNumberStrings: false,
      ...(ssl ? { ssl } : {}),
    });
    this.zongji = z;
    z.on('binlog', (e: any) => this.onEvent(e));
    const ready = new Promise<void>((resolve, reject) => {
      z.once('ready', resolve);
      z.on('error', (err: Error) => {
        this.error ??= imagoError('TRANSFER_STREAM_FAILED', `reading Uold's binlog as server id ${this.opts.serverId}: ${err.message}`, err);
        reject(this.error);
        this.emit('failed', this.error);
      });
    });
    z.start({
      serverId: this.opts.serverId,
      // MariaDB resumes strictly after this position: what is covered was applied.
      gtidSet: this.position.toString(),
      includeEvents: ['tablemap', 'writerows', 'updaterows', 'deleterows', 'mariadbgtid', 'xid', 'query'],
      includeSchema: { [this.opts.database]: [...this.wanted] },
    });
    await ready;
  }

  stop(): void {
    try { this.zongji?.stop(); } catch { /* already stopped */ }
    this.zongji = undefined;
  }

  private onEvent(e: any): void {
    const name: string = e.getEventName();
    if (name === 'mariadbgtid') {
      if (this.current) this.commit(); // defensive: a transaction without its commit event
      this.current = { gtid: e.gtid, changes: [], receivedAt: 0 };
    } else if (name === 'xid' || name === 'query') {
      // XID ends a transactional group; a Query ends a DDL or a non-transactional group.
      if (this.current) this.commit();
    } else if (name === 'writerows' || name === 'updaterows' || name === 'deleterows') {
      const t = e.tableMap?.[e.tableId];
      if (!this.current || !t || t.parentSchema !== this.opts.database || !this.wanted.has(t.tableName)) return;
      for (const r of e.rows as any[]) {
        if (name === 'writerows') this.current.changes.push({ table: t.tableName, before: null, after: r });
        else if (name === 'deleterows') this.current.changes.push({ table: t.tableName, before: r, after: null });
        else this.current.changes.push({ table: t.tableName, before: r.before, after: r.after });
      }
    }
  }

  private commit(): void {
    const txn = this.current!;
    this.current = undefined;
    txn.receivedAt = Date.now();
    this.position.advance(txn.gtid);
    this.emit('txn', txn);
  }
}
