import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { freePort, waitForPort } from './ports';
import { ManagedProcess } from './proc';
import { imagoError } from './errors';

/** `moto_server` (PyPI moto[server]) on loopback: the AWS APIs for tests. Never send data-plane traffic to the addresses it invents. */
export class MotoServer {
  port = 0;
  private proc?: ManagedProcess;
  private readonly dir = fs.mkdtempSync(path.join(os.tmpdir(), 'imago-moto-'));

  get endpoint(): string { return `http://127.0.0.1:${this.port}`; }

  async start(): Promise<this> {
    const bin = findOnPath('moto_server');
    if (!bin) throw imagoError('IMAGO_PREREQ_MISSING', "'moto_server' is not on PATH (pip install 'moto[server]')");
    this.port = await freePort();
    this.proc = new ManagedProcess(`moto:${this.port}`, bin, ['-H', '127.0.0.1', '-p', String(this.port)], path.join(this.dir, 'moto.log'));
    try {
      // eslint-disable-next-line no-restricted-syntax -- caught below into IMAGO_PREREQ_MISSING with moto's log
      await Promise.race([waitForPort(this.port, '127.0.0.1', 60_000), this.proc.waitExit().then((c) => { throw new Error(`exited ${c}`); })]);
    } catch (err) {
      await this.proc.stop(2_000);
      throw imagoError('IMAGO_PREREQ_MISSING', `moto_server did not start: ${(err as Error).message}\n${this.proc.tail()}`);
    }
    return this;
  }

  /** Clears every resource moto holds. */
  async reset(): Promise<void> {
    const res = await fetch(`${this.endpoint}/moto-api/reset`, { method: 'POST' });
    // eslint-disable-next-line no-restricted-syntax -- moto is the test suite's AWS; its reset failing is a test set-up failure
    if (!res.ok) throw new Error(`moto reset answered ${res.status}`);
  }

  async stop(): Promise<void> {
    await this.proc?.stop(5_000);
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

export function findOnPath(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(':')) {
    const p = path.join(dir, name);
    if (dir && fs.existsSync(p)) return p;
  }
  return undefined;
}
