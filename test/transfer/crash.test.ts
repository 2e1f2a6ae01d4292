import * as fs from 'node:fs';
import { strict as assert } from 'node:assert';
import * as path from 'node:path';
import * as os from 'node:os';
import * as mysql from 'mysql2/promise';
import { ManagedProcess } from '../../lib/proc';
import { identityConversion } from '../../transfer/conversion';
import { flushTo, readUoldPosition } from '../../transfer/flush';
import { verify } from '../../transfer/verify';
import { readerServerId, writeLoad, type Pair, itemsPair } from './setup';

async function metaCopied(p: Pair): Promise<{ copied: number; done: boolean }> {
  const c = await mysql.createConnection({ uri: p.targetUrl, database: 'shop2' });
  try {
    const [rows] = await c.query('SELECT rows_copied AS n, done FROM _imago_transfer_tables').catch(() => [[]]) as any;
    return { copied: rows.length ? Number(rows[0].n) : 0, done: rows.length ? !!rows[0].done : false };
  } finally { await c.end(); }
}

async function waitFor(fn: () => Promise<boolean>, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!(await fn())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('transfer: kill -9 and restart resume exactly', () => {
  it('kill -9 during the copy and during catch-up, restart each time: verify reports 0 differences', async () => {
    const p = await itemsPair(60_000);
    const args = JSON.stringify({ source: { url: p.sourceUrl, database: 'shop' }, target: { url: p.targetUrl, database: 'shop2' }, serverId: readerServerId(), chunkSize: 500 });
    const log = path.join(os.tmpdir(), `imago-transfer-child-${process.pid}.log`);
    const start = () => new ManagedProcess('transfer', process.execPath, ['--import', 'tsx', path.join(__dirname, 'child-transfer.ts'), args], log);
    const stop = { stop: false };
    const load = writeLoad(p.rootOld, { maxId: 65_000, untilStopped: stop, connections: 1 });
    let child = start();
    try {
      await waitFor(async () => (await metaCopied(p)).copied >= 5_000, 90_000, 'copy to reach 5000 rows');
      assert.equal(await child.kill9(), 128);
      const atKill = await metaCopied(p);
      assert.equal(atKill.done, false, 'killed during the copy');
      child = start();
      await waitFor(async () => (await metaCopied(p)).done, 90_000, 'copy to finish after restart');
      // Catch-up: let changes pile up while it follows, then kill it mid-apply.
      await new Promise((r) => setTimeout(r, 700));
      assert.equal(await child.kill9(), 128);
      await new Promise((r) => setTimeout(r, 700)); // writes the dead transfer must catch up on
      child = start();
      stop.stop = true;
      const writes = await load;
      assert.ok(writes > 200, `only ${writes} writes`);
      await flushTo(p.targetUrl, 'shop2', await readUoldPosition(p.rootOld), 60_000);
      const report = await verify({ source: { url: p.sourceUrl, database: 'shop' }, target: { url: p.targetUrl, database: 'shop2' }, conversion: identityConversion([{ table: 'items', key: ['id'] }]), serverId: readerServerId() });
      assert.equal(report.ok, true, JSON.stringify(report).slice(0, 800));
      const [[{ n }]] = await p.uold.query('SELECT COUNT(*) AS n FROM shop.items').then((r) => [r] as any);
      assert.equal(report.rowsChecked, Number(n), 'every Uold row was compared');
    } finally {
      stop.stop = true;
      await load.catch(() => 0);
      await child.stop(5_000);
      fs.rmSync(log, { force: true }); // each run used to leave it in the temporary folder
    }
  });
});
