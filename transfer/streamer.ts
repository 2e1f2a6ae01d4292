import { EventEmitter } from 'node:events';
import { imagoError, type ImagoError } from '../lib/errors';
import { isConnectionError } from '../lib/sql';
import type { Row } from './conversion';
import { packCoordinate } from './coordinate';
import { GtidPosition } from './position';
import { startBinlogReader } from './zongji';

export interface StreamerOptions {
  /** mysql://user:pw@host:port/ of Uold; the user needs only REPLICATION SLAVE, REPLICATION CLIENT, SELECT. */
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
  /** Uold's binlog coordinate just after this transaction (see coordinate.ts), 0n if unknown. */
  end: bigint;
}

/**
 * The binlog streamer (E): reads Uold's binlog as a replica would (ROW
 * format, GTIDs) and hands over whole committed transactions in commit
 * order, each with the binlog coordinate where it ends. It never writes to
 * Uold. Every transaction advances `position`, including those on other
 * tables or databases and DDL: flush-to-position needs to see Uold's
 * @@gtid_binlog_pos reached even when no row of ours changed.
 *
 * Events: 'txn' (StreamedTxn), 'failed' (ImagoError; also kept in `error`).
 */
export class Streamer extends EventEmitter {
  readonly position: GtidPosition;
  error?: ImagoError;
  private reader?: { stop(): void };
  private current?: StreamedTxn;
  private stopped = false;

  constructor(private readonly opts: StreamerOptions, from: string) {
    super();
    this.position = GtidPosition.parse(from);
  }

  async start(): Promise<void> {
    try {
      this.reader = await startBinlogReader({
        url: this.opts.url, serverId: this.opts.serverId, gtidSet: this.position.toString(),
        database: this.opts.database, tables: this.opts.tables,
      }, {
        onBegin: (gtid) => {
          if (this.current) this.commit(0n); // defensive: a group without its end event
          this.current = { gtid, changes: [], receivedAt: 0, end: 0n };
        },
        onRows: (changes) => { this.current?.changes.push(...changes); },
        onCommit: (file, pos) => { if (this.current) this.commit(file ? packCoordinate({ file, pos }) : 0n); },
        onError: (err) => this.fail(err),
      });
      if (this.stopped) this.reader.stop();
    } catch (err) {
      throw this.fail(err as Error);
    }
  }

  stop(): void {
    this.stopped = true;
    this.reader?.stop();
    this.reader = undefined;
  }

  private fail(err: Error): ImagoError {
    const code = isConnectionError(err) ? 'TRANSFER_SOURCE_UNREACHABLE' : 'TRANSFER_STREAM_FAILED';
    this.error ??= imagoError(code, `reading Uold's binlog as server id ${this.opts.serverId}: ${err.message}`, err);
    this.emit('failed', this.error);
    return this.error;
  }

  private commit(end: bigint): void {
    const txn = this.current!;
    this.current = undefined;
    txn.receivedAt = Date.now();
    txn.end = end;
    this.position.advance(txn.gtid);
    this.emit('txn', txn);
  }
}
