import * as net from 'node:net';

/** Asks the kernel for a free TCP port on loopback. There is a short race
 * between closing the probe socket and the caller binding it; callers that
 * start a server retry on EADDRINUSE. */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  return (await freePorts(1, host))[0];
}

/**
 * `n` distinct free ports: every one is held open until all are chosen. Taken one after the
 * other, two could be the same number (the kernel may hand a just-closed port out again):
 * a dev server then failed with "address already in use" on its own second port.
 */
export async function freePorts(n: number, host = '127.0.0.1'): Promise<number[]> {
  const servers: net.Server[] = [];
  try {
    const ports: number[] = [];
    for (let i = 0; i < n; i++) {
      const srv = net.createServer();
      srv.unref();
      servers.push(srv);
      ports.push(await new Promise<number>((resolve, reject) => {
        srv.on('error', reject);
        srv.listen(0, host, () => { const a = srv.address(); resolve(typeof a === 'object' && a ? a.port : 0); });
      }));
    }
    return ports;
  } finally {
    await Promise.all(servers.map((srv) => new Promise((r) => srv.close(r))));
  }
}

/** Resolves once something accepts TCP connections on host:port, or rejects at the deadline. */
export async function waitForPort(port: number, host = '127.0.0.1', timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect({ port, host }, () => { s.destroy(); resolve(true); });
      s.on('error', () => resolve(false));
    });
    if (ok) return;
    // eslint-disable-next-line no-restricted-syntax -- each server's start wraps it into its own start code, with the server's log
    if (Date.now() > deadline) throw new Error(`nothing answered on ${host}:${port} within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
