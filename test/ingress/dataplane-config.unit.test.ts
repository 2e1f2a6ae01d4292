import { strict as assert } from 'node:assert';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { isImagoError } from '../../lib/errors';
import { luaString, luaTable, nginxConfig } from '../../interceptors/ingress/nginx-config';
import { DEFAULT_LIMITS, DEFAULT_NGINX } from '../../interceptors/ingress/options';
import { encodeRecord, initialRecord } from '../../interceptors/ingress/record';
import { persistedOf, StateFile } from '../../interceptors/ingress/state-file';

const record = initialRecord({ name: 'uold', idx: 1, ip: '127.0.0.1', port: 9001, url: 'http://127.0.0.1:9001' });

describe('the data plane configuration and the state file', () => {
  it('writes any string as a Lua literal, and the start values as a Lua table', () => {
    assert.equal(luaString('a'), '[[a]]');
    assert.equal(luaString('x]]y'), '[=[x]]y]=]');
    assert.equal(luaString('x]]y]=]'), '[==[x]]y]=]]==]');
    assert.equal(luaTable({ a: 1, b: 'x', c: true }), '{ a = 1, b = [[x]], c = true }');
  });

  it('generates the nginx configuration from the options', () => {
    const conf = nginxConfig({
      options: { listen: { host: '127.0.0.1', port: 0 }, workers: 3, nginx: DEFAULT_NGINX, limits: { ...DEFAULT_LIMITS, maxHeaderBytes: 8192, upstreamIdleTimeoutMs: 1500 }, health: { host: '0.0.0.0', port: 0 } },
      listenPort: 8080, healthPort: 8082, runDir: '/run/x', luaDir: '/lua', record: encodeRecord(record), startNote: 'hello', maxOpenFiles: 20_000, controlPid: 4321,
    });
    for (const line of [
      'worker_processes 3;', 'listen 127.0.0.1:8080 backlog=4096 reuseport;', 'large_client_header_buffers 2 4096;', 'client_max_body_size 10485760;',
      'keepalive_timeout 75000ms;', 'keepalive_timeout 1500ms;', 'listen unix:/run/x/control.sock;', 'listen 0.0.0.0:8082;', 'worker_connections 10000;',
      'error_page 494 =431 @imago_431;', 'proxy_set_header Host $imago_host;', 'lua_package_path "/lua/?.lua;;";',
    ]) assert.ok(conf.includes(line), line);
    assert.ok(!/^user /m.test(conf), 'no user directive unless started as root');
    assert.match(conf, /init_master\(\{ workers = 3, holdQueueSize = 10000, .*record = \[\[held=0&target=uold&.*controlPid = 4321 \}/);
    const noHealth = nginxConfig({ options: { listen: { host: '::1', port: 0 }, workers: 2, nginx: DEFAULT_NGINX, limits: DEFAULT_LIMITS }, listenPort: 1, runDir: '/r', luaDir: '/l', record: '', startNote: '', user: 'imago imago', maxOpenFiles: 1_000, controlPid: 1 });
    assert.ok(noHealth.includes('listen [::1]:1 backlog=4096 reuseport;'));
    assert.ok(noHealth.includes('user imago imago;'));
    assert.ok(noHealth.includes('worker_connections 1024;'));
    assert.ok(!noHealth.includes('IMAGO_API.health()'));
  });

  it('keeps the state across restarts: the target the hard timeout would choose', () => {
    const held = { ...record, upstreams: [...record.upstreams, { name: 'unew', idx: 2, ip: '127.0.0.1', port: 9002, url: 'http://127.0.0.1:9002' }], held: true, origin: 'uold', target: 'unew' };
    assert.equal(persistedOf(held).target, 'uold', 'uncommitted: back to the origin');
    assert.equal(persistedOf({ ...held, committed: true }).target, 'unew', 'committed: forward');
    assert.equal(persistedOf({ ...held, held: false }).target, 'unew');
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ingress-state-unit-'));
    try {
      const file = path.join(dir, 'state');
      const sf = new StateFile(file);
      assert.equal(sf.read(), undefined, 'none yet');
      sf.write(persistedOf(held, 5));
      sf.write(persistedOf({ ...held, committed: true }, 6));
      sf.write(persistedOf({ ...held, held: false }, 7));
      sf.close();
      const expected = { version: 1, upstreams: { uold: 'http://127.0.0.1:9001', unew: 'http://127.0.0.1:9002' }, target: 'unew', savedAt: 7 };
      assert.deepEqual(new StateFile(file).read(), expected, 'the latest of the two slots');
      // A write torn by a crash damages one slot: the other one, the previous state, is read.
      const bytes = fs.readFileSync(file);
      const latest = bytes.subarray(0, 16 * 1024).toString().includes('"savedAt":7') ? 0 : 1;
      bytes.fill(0x41, latest * 16 * 1024 + 10, latest * 16 * 1024 + 40);
      fs.writeFileSync(file, bytes);
      assert.equal(new StateFile(file).read()?.savedAt, 6, 'the slot before the torn one');
      // After a read, writes go on in the slot that does not hold the latest state.
      const again = new StateFile(file);
      again.read();
      again.write(persistedOf(held, 8));
      again.close();
      assert.equal(new StateFile(file).read()?.savedAt, 8);
      fs.writeFileSync(file, '{"version":1,"upstreams":{},"target":"x","savedAt":1}');
      assert.throws(() => new StateFile(file).read(), (e: unknown) => isImagoError(e, 'INGRESS_STATE_INVALID') && /no intact state/.test(e.message));
      fs.writeFileSync(file, Buffer.concat([Buffer.from(JSON.stringify({ seq: 1, sum: createHash('sha256').update('{"version":1,"upstreams":{},"target":"x","savedAt":1}').digest('hex'), state: { version: 1, upstreams: {}, target: 'x', savedAt: 1 } })), Buffer.alloc(100, 32)]));
      assert.throws(() => new StateFile(file).read(), /target 'x' is not among its upstreams/);
    } finally { fs.rmSync(dir, { recursive: true, force: true }); }
  });
});
