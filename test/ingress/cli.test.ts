import { strict as assert } from 'node:assert';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ManagedProcess } from '../../lib/proc';
import { freePort, waitForPort } from '../../lib/ports';
import { IngressControlClient } from '../../interceptors/ingress/control-client';
import { StateFile } from '../../interceptors/ingress/state-file';
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

/** Runs a command to completion: exit code, stdout, stderr (bounded). */
function runCli(args: string[], env: NodeJS.ProcessEnv = process.env): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => { out += d; });
    child.stderr.on('data', (d) => { err += d; });
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.on('exit', (code) => { clearTimeout(timer); resolve({ code, out, err }); });
  });
}

describe('ingress: the CLI entry (runIngressCli)', () => {
  it('exits 1 on usage errors and bad input, with the message and no stack trace, through imago ingress too', async () => {
    const env = { ...process.env, IMAGO_INGRESS_TOKEN: '' };
    for (const [args, message] of [
      [['interceptors/ingress/main.ts', '--bogus'], /Unknown option '--bogus'/],
      [['interceptors/ingress/main.ts', '--upstream', 'nope'], /--upstream must be name=http:\/\/host:port, got 'nope'.*no control token/],
      [['interceptors/ingress/main.ts', '--upstream', 'uold=http://127.0.0.1:1', '--token-file', '/nonexistent/token', '--max-body-bytes', 'ten'], /--token-file \/nonexistent\/token: ENOENT.*--max-body-bytes must be a whole number/],
      [['client/cli.ts', 'ingress', '--upstream', 'uold=http://127.0.0.1:1', '--workers', 'x'], /--workers must be a whole number/],
    ] as Array<[string[], RegExp]>) {
      const r = await runCli(args, env);
      assert.equal(r.code, 1, `${args.join(' ')}: ${r.err}`);
      assert.match(r.err, message);
      assert.doesNotMatch(r.err, /^\s+at /m, 'no stack trace');
    }
    for (const args of [['client/cli.ts', 'ingress', '--help'], ['interceptors/ingress/main.ts', '--help']]) {
      const help = await runCli(args, env);
      assert.equal(help.code, 0);
      assert.match(help.out, /--upstream-allow CIDR/);
    }
  });

  it('keeps the target across a SIGKILL of the whole interceptor: a committed switch comes back on the new target, an uncommitted one on the old', async function () {
    const uold = await startUpstream('uold');
    const unew = await startUpstream('unew');
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ingress-state-'));
    const tokenFile = path.join(dir, 'token');
    fs.writeFileSync(tokenFile, `${TOKEN}\n`);
    const [port, cport] = [await freePort(), await freePort()];
    const start = async (n: number): Promise<ManagedProcess> => {
      const p = new ManagedProcess(`ingress-${n}`, process.execPath, ['--import', 'tsx', 'interceptors/ingress/main.ts', '--listen', `127.0.0.1:${port}`,
        // A run directory of the test's own: a SIGKILLed interceptor cannot remove the temporary one it would make.
        '--upstream', `uold=${uold.url}`, '--control', `127.0.0.1:${cport}`, '--token-file', tokenFile, '--run-dir', path.join(dir, 'run')], path.join(dir, `ingress-${n}.log`));
      await until(async () => { try { await new IngressControlClient(`http://127.0.0.1:${cport}`, TOKEN).status(); return true; } catch { return false; } }, `interceptor ${n} up`, 30_000);
      await waitForPort(port, '127.0.0.1', 30_000);
      return p;
    };
    const served = async (): Promise<string> => JSON.parse((await request(`http://127.0.0.1:${port}/x`)).body).upstream;
    const control = new IngressControlClient(`http://127.0.0.1:${cport}`, TOKEN);
    try {
      // Uncommitted: switched under a hold, then the whole interceptor dies.
      let proc = await start(1);
      await control.addUpstream('unew', unew.url);
      await control.hold(30_000);
      await control.switch('unew');
      await proc.kill9();
      proc = await start(2);
      assert.equal(await served(), 'uold', 'uncommitted: back on the old target');
      assert.deepEqual(Object.keys((await control.status()).upstreams).sort(), ['unew', 'uold'], 'registered upstreams kept');
      assert.match((await control.status()).transitions.map((t) => t.detail).join('\n'), /restored from .*token\.state \(saved .*\): target uold/);
      // Committed: the switch is decided; a restart must not bring back the old version.
      await control.hold(30_000);
      await control.switch('unew');
      await control.commit();
      await proc.kill9();
      proc = await start(3);
      assert.equal(await served(), 'unew', 'committed: on the new target');
      assert.equal(new StateFile(`${tokenFile}.state`).read()?.target, 'unew');
      await proc.stop(5_000);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
