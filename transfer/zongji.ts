/**
 * A typed adapter for @vlasky/zongji, the binlog reader: the only file that
 * touches the package. It turns zongji's events into a small set of typed
 * callbacks (a transaction begins, a row changes, a transaction ends at a
 * binlog coordinate) and its errors into one callback, so the streamer above
 * is plain TypeScript and testable without a server.
 */
import type ZongJiType from '@vlasky/zongji';
import type { AnyBinlogEvent, MariadbGtidEvent, QueryEvent, RowData, RowsEvent, UpdateRowData, XidEvent } from '@vlasky/zongji';
import { connectionConfig } from '../lib/sql';

// ESM-only package; from CommonJS its default export is the ZongJi class.
const ZongJi = require('@vlasky/zongji').default as typeof ZongJiType;

export interface BinlogReaderOptions {
  url: string;
  serverId: number;
  /** MariaDB GTID position: the stream starts strictly after it. */
  gtidSet: string;
  database: string;
  tables: string[];
}

export type RowChange = { table: string; before: RowData | null; after: RowData | null };

export interface BinlogHandlers {
  /** A new event group (transaction or DDL) begins with this GTID. */
  onBegin(gtid: string): void;
  /** Row images of one row event of a wanted table. */
  onRows(changes: RowChange[]): void;
  /** The current group ended; `file`/`pos` is the binlog coordinate just after it. */
  onCommit(file: string, pos: number): void;
  onError(err: Error): void;
}

/** Starts reading; resolves once the dump is requested, rejects if it cannot start. */
export function startBinlogReader(opts: BinlogReaderOptions, h: BinlogHandlers): Promise<{ stop(): void }> {
  const z = new ZongJi(connectionConfig(opts.url, { database: '' }));
  const wanted = new Set(opts.tables);
  let started = false;
  z.on('binlog', (e: AnyBinlogEvent) => {
    try { onEvent(e); } catch (err) { h.onError(err as Error); }
  });
  const onEvent = (e: AnyBinlogEvent) => {
    const name = e.getEventName();
    if (name === 'mariadbgtid') {
      h.onBegin((e as MariadbGtidEvent).gtid);
    } else if (name === 'xid') {
      h.onCommit(z.options.filename ?? '', (e as XidEvent).nextPosition);
    } else if (name === 'query') {
      // A Query event ends a DDL or a non-transactional group; BEGIN only opens one.
      if ((e as QueryEvent).query.trim().toUpperCase() !== 'BEGIN') h.onCommit(z.options.filename ?? '', e.nextPosition);
    } else if (name === 'writerows' || name === 'updaterows' || name === 'deleterows') {
      const r = e as RowsEvent & { rows: Array<RowData | UpdateRowData> };
      const t = r.tableMap?.[r.tableId];
      if (!t || t.parentSchema !== opts.database || !wanted.has(t.tableName)) return;
      h.onRows(r.rows.map((row) => name === 'writerows' ? { table: t.tableName, before: null, after: row as RowData }
        : name === 'deleterows' ? { table: t.tableName, before: row as RowData, after: null }
          : { table: t.tableName, before: (row as UpdateRowData).before, after: (row as UpdateRowData).after }));
    }
  };
  return new Promise((resolve, reject) => {
    z.once('ready', () => { started = true; resolve({ stop: () => { try { z.stop(); } catch { /* already stopped */ } } }); });
    z.on('error', (err: Error) => {
      if (!started) { try { z.stop(); } catch { /* already stopped */ } reject(err); } else h.onError(err);
    });
    z.start({
      serverId: opts.serverId,
      gtidSet: opts.gtidSet,
      includeEvents: ['tablemap', 'writerows', 'updaterows', 'deleterows', 'mariadbgtid', 'xid', 'query'],
      includeSchema: { [opts.database]: [...wanted] },
    });
  });
}
