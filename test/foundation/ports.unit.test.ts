import { strict as assert } from 'node:assert';
import * as net from 'node:net';
import { freePorts } from '../../lib/ports';

describe('free ports for a server that binds several', () => {
  it('are distinct, and each can be bound once chosen', async () => {
    // Chosen one after the other, two could be the same number: a dev server then failed with
    // "address already in use" on its own HTTP port (seen once in the fast tier).
    const ports = await freePorts(40);
    assert.equal(new Set(ports).size, 40, `repeated: ${ports.join(',')}`);
    const servers = await Promise.all(ports.map((p) => new Promise<net.Server>((resolve, reject) => {
      const s = net.createServer();
      s.on('error', reject);
      s.listen(p, '127.0.0.1', () => resolve(s));
    })));
    await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  });
});
