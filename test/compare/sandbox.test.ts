/**
 * The sandbox of shadow writes on the local provider, on real parts: Unew
 * (its own mariadbd, auction v2 on it) made by the provider, then the
 * sandbox cloned from it with mariadb-backup and a second v2 bound to the
 * clone. Writes sent to the sandbox land there and nowhere else: Unew's
 * tables keep their checksums; destroySandbox leaves no process and no file.
 */
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as mysql from 'mysql2/promise';
import { LocalProvider } from '../../providers/local/local-provider';
import { alive } from '../../providers/local/pids';
import { schemaSql } from '../../examples/auction/database';
import { seed } from '../../examples/auction/seeder';
import type { ProvisionRequest, UnewHandle } from '../../providers/provider';

const AUCTION = path.join(__dirname, '..', '..', 'examples', 'auction');
const TABLES = ['users', 'items', 'item_bids', 'bid_sequence', 'comments', 'purchases', 'categories', 'regions'];

async function checksums(url: string): Promise<Record<string, string>> {
  const c = await mysql.createConnection({ uri: url });
  try {
    const [rows] = await c.query(`CHECKSUM TABLE ${TABLES.join(', ')} EXTENDED`) as [Array<{ Table: string; Checksum: string }>, unknown];
    return Object.fromEntries(rows.map((r) => [r.Table.split('.').pop()!, String(r.Checksum)]));
  } finally { await c.end(); }
}

describe('compare: the sandbox of shadow writes (local provider, real MariaDB and auction v2)', function () {
  this.timeout(240_000);
  const provider = new LocalProvider();
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'imago-sandbox-test-'));
  // A deep folder, as the demo's: Unew's own socket path fits in 107 bytes, the sandbox's folder inside it would not.
  const upgradeId = `sandbox-${process.pid}`;
  const unewSocket = (base: string) => path.join(base, upgradeId, 'db', 'mysqld.sock');
  const pad = 104 - unewSocket(path.join(root, 'u', '')).length;
  const baseDir = path.join(root, 'u', 'x'.repeat(Math.max(1, pad)));
  const unew = { database: 'auction', app: { command: ['node', '--require', 'tsx/cjs', 'v2/main.ts'], healthPath: '/health', startTimeoutMs: 60_000, env: {} }, local: { baseDir } };
  const req: ProvisionRequest = { upgradeId, unew, planDir: AUCTION };
  let handle: UnewHandle;
  let adminUrl: string;

  before(async () => {
    handle = await provider.provisionDatabase(req);
    adminUrl = fs.readFileSync(path.join(String(handle.state.dir), 'admin.url'), 'utf8').trim();
    const c = await mysql.createConnection({ uri: adminUrl, multipleStatements: true });
    try { await c.query(schemaSql('v2')); } finally { await c.end(); }
    await seed(adminUrl, { users: 50, items: 100, bids: 300 });
    handle = await provider.startApplication(handle, req);
    await provider.waitHealthy(handle, 60_000);
  });

  after(async () => {
    await provider.destroy(upgradeId, unew);
    fs.rmSync(root, { recursive: true, force: true });
  });

  it('is made from a clone of Unew, takes mirrored writes, leaves Unew unchanged, and is gone after destroySandbox', async () => {
    const before = await checksums(adminUrl);
    const sb = await provider.createSandbox(handle, req);
    assert.notEqual(sb.appUrl, handle.appUrls[0], 'the sandbox is another instance');
    assert.ok(sb.cloneMs > 0 && sb.startMs > 0, `clone ${sb.cloneMs} ms, start ${sb.startMs} ms`);
    console.log(`      sandbox: cloned in ${sb.cloneMs} ms, application up in ${sb.startMs} ms, position '${sb.position}'`);
    const again = await provider.createSandbox(handle, req);
    assert.equal(again.appUrl, sb.appUrl, 'idempotent: the running sandbox is returned as it is');
    const sbDir = path.join(String(handle.state.dir), 'sandbox');
    const state = JSON.parse(fs.readFileSync(path.join(sbDir, 'state.json'), 'utf8'));
    assert.ok(alive(state.appPid) && alive(state.dbPid));

    // The clone starts with Unew's data: the same row read from both.
    const fromUnew = await (await fetch(`${handle.appUrls[0]}/items/7`)).json();
    const fromSandbox = await (await fetch(`${sb.appUrl}/items/7`)).json();
    assert.deepEqual(fromSandbox, fromUnew);

    // Writes, as the interceptor mirrors them, go to the sandbox only.
    const created = await fetch(`${sb.appUrl}/users`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ nickname: 'sandbox_user', name: 'Sand Box', email: 's@example.com', password: 'secret', regionId: 1 }) });
    assert.equal(created.status, 201);
    const user = await created.json() as { id: number };
    const item = (fromUnew as { id: number; maxBid: number | null }).id;
    const bid = await fetch(`${sb.appUrl}/items/${item}/bids`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ userId: user.id, amount: 999999.99 }) });
    assert.equal(bid.status, 201, await bid.clone().text());
    assert.equal((await fetch(`${sb.appUrl}/users/${user.id}`)).status, 200, 'read back from the sandbox');
    assert.equal((await fetch(`${handle.appUrls[0]}/users/${user.id}`)).status, 404, 'Unew never saw the write');

    const after = await checksums(adminUrl);
    assert.deepEqual(after, before, "Unew's tables have the same checksums before and after");
    const sbAdmin = `mysql://root@${sb.dbEndpoint}/auction`;
    const inSandbox = await checksums(sbAdmin);
    assert.notEqual(inSandbox.users, before.users, 'the sandbox holds the write');
    assert.notEqual(inSandbox.item_bids, before.item_bids);
    assert.equal(inSandbox.regions, before.regions, 'and otherwise the same data as Unew');

    await provider.destroySandbox(upgradeId, unew);
    assert.ok(!alive(state.appPid), 'the sandbox application is gone');
    assert.ok(!alive(state.dbPid), "the sandbox's mariadbd is gone");
    assert.ok(!fs.existsSync(sbDir), 'its data is removed');
    assert.ok(!fs.existsSync(state.socket), 'and its socket');
    assert.equal((await fetch(`${handle.appUrls[0]}/health`)).status, 200, 'Unew keeps running');
    await provider.destroySandbox(upgradeId, unew); // idempotent
  });
});
