import { strict as assert } from 'node:assert';
import { isImagoError, type ErrorCode } from '../../lib/errors';
import { identityConversion } from '../../transfer/conversion';
import { flushTo, readUoldPosition } from '../../transfer/flush';
import { Transfer, type TransferProgress } from '../../transfer/transfer';
import { verify } from '../../transfer/verify';
import { readerServerId, type Pair, itemsPair } from './setup';

const ident = identityConversion([{ table: 'items', key: ['id'] }]);

async function until(t: Transfer, pred: (p: TransferProgress) => boolean, ms = 90_000): Promise<void> {
  const end = Date.now() + ms;
  while (!pred(t.progress())) {
    if (Date.now() > end) throw new Error(`condition not met; progress ${JSON.stringify(t.progress())}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Runs fn and returns the unhandled rejections the process saw meanwhile (and shortly after). */
async function unhandledDuring(fn: () => Promise<void>): Promise<unknown[]> {
  const seen: unknown[] = [];
  const note = (reason: unknown) => { seen.push(reason); };
  process.on('unhandledRejection', note);
  try {
    await fn();
    await new Promise((r) => setTimeout(r, 1_000)); // late rejections of abandoned promises would show up here
  } finally { process.off('unhandledRejection', note); }
  return seen;
}

function expectCode(code: ErrorCode) {
  return (e: unknown) => {
    assert.ok(isImagoError(e, code), `expected ${code}, got ${(e as Error)?.message}`);
    assert.ok((e as Error).cause, 'the cause is kept');
    return true;
  };
}

describe('transfer: a universe unreachable is an error to report, never a crash', () => {
  let p: Pair;
  beforeEach(async () => {
    p = await itemsPair(120_000);
  });

  it("Unew's mariadbd SIGKILLed during the copy: run() rejects with TRANSFER_TARGET_UNREACHABLE, no unhandled rejection; a later run resumes", async () => {
    const t = new Transfer({ source: { url: p.sourceUrl, database: 'shop' }, target: { url: p.targetUrl, database: 'shop2' }, conversion: ident, serverId: readerServerId(), chunkSize: 500 });
    let copiedAtKill = 0;
    const unhandled = await unhandledDuring(async () => {
      const running = t.run(new AbortController().signal);
      await until(t, (x) => x.rowsCopied >= 10_000);
      copiedAtKill = t.progress().rowsCopied;
      await p.unew.crash();
      await assert.rejects(running, expectCode('TRANSFER_TARGET_UNREACHABLE'));
    });
    assert.deepEqual(unhandled.map(String), []);
    assert.ok(copiedAtKill < 120_000, 'killed during the copy');

    // Unew back (same datadir, a new port): the next run resumes from the state kept there.
    await p.unew.start();
    const targetUrl = p.unew.urlFor('admin', 'pw');
    const again = new Transfer({ source: { url: p.sourceUrl, database: 'shop' }, target: { url: targetUrl, database: 'shop2' }, conversion: ident, serverId: readerServerId(), chunkSize: 500 });
    const ac = new AbortController();
    const running = again.run(ac.signal);
    try {
      await until(again, (x) => x.phase === 'copy');
      assert.ok(again.progress().rowsCopied >= 5_000, `resumed from the saved state, not from 0 (${again.progress().rowsCopied})`);
      await until(again, (x) => x.phase === 'following');
      await flushTo(targetUrl, 'shop2', await readUoldPosition(p.rootOld), 30_000);
      const report = await verify({ source: { url: p.sourceUrl, database: 'shop' }, target: { url: targetUrl, database: 'shop2' }, conversion: ident, serverId: readerServerId() });
      assert.equal(report.ok, true, JSON.stringify(report).slice(0, 600));
      assert.equal(report.rowsChecked, 120_000);
    } finally { ac.abort(); await running; }
  });

  it("Uold's mariadbd SIGKILLed during the copy: run() rejects with TRANSFER_SOURCE_UNREACHABLE, no unhandled rejection", async () => {
    const t = new Transfer({ source: { url: p.sourceUrl, database: 'shop' }, target: { url: p.targetUrl, database: 'shop2' }, conversion: ident, serverId: readerServerId(), chunkSize: 500 });
    const unhandled = await unhandledDuring(async () => {
      const running = t.run(new AbortController().signal);
      await until(t, (x) => x.rowsCopied >= 10_000);
      await p.uold.crash();
      await assert.rejects(running, expectCode('TRANSFER_SOURCE_UNREACHABLE'));
    });
    assert.deepEqual(unhandled.map(String), []);
  });
});
