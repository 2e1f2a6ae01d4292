import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ManagedProcess } from '../../lib/proc';
import { freePort, waitForPort } from '../../lib/ports';
import { IngressControlClient } from '../../interceptors/ingress/control-client';
import { request, startUpstream, TOKEN, until } from './helpers';

describe('ingress: the CLI process', () => {
  it('starts from flags and a token file, serves, and stops gracefully on SIGTERM releasing held requests', async function () {
    const up = await startUpstream('uold');
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ingress-cli-'));
    const tokenFile = path.join(dir, 'token');
    fs.writeFileSync(tokenFile, `${TOKEN}\n`);
    const [port, cport] = [await freePort(), await freePort()];
    const proc = new ManagedProcess('ingress', process.execPath, ['--import', 'tsx', 'interceptors/ingress/main.ts',
      '--listen', `127.0.0.1:${port}`, '--upstream', `uold=${up.url}`, '--control', `127.0.0.1:${cport}`, '--token-file', tokenFile, '--hold-queue-size', '5'],
      path.join(dir, 'ingress.log'));
    try {
      await waitForPort(cport, '127.0.0.1', 30_000);
      const startLine = JSON.parse(proc.tail(5).split('\n').find((l) => l.startsWith('{'))!);
      // compare/index.ts exists in this checkout, so main.ts wires the compare engine.
      assert.equal(startLine.comparer, fs.existsSync('compare/index.ts') ? 'compare engine' : 'none');
      const control = new IngressControlClient(`http://127.0.0.1:${cport}`, TOKEN);
      assert.equal((await request(`http://127.0.0.1:${port}/x`)).status, 200);
      await control.hold(30_000);
      const held = request(`http://127.0.0.1:${port}/held`);
      await until(async () => (await control.status()).held === 1, 'a held request');
      proc.child.kill('SIGTERM');
      assert.equal((await held).status, 200, 'held request released on SIGTERM');
      assert.equal(await proc.waitExit(), 0);
      assert.match(proc.tail(), /SIGTERM: stopping gracefully/);
    } finally {
      await proc.stop(2_000);
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
