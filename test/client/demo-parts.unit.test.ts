import { strict as assert } from 'node:assert';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { FailedRequest } from '../../examples/auction/workload/generator';
import { failureLines, placeInPhases } from '../../client/demo/outcome';
import { sweep, Teardown } from '../../client/demo/teardown';
import { WorkDir } from '../../client/demo/workdir';

const T0 = 1_700_000_000_000;
const timings = [
  { phase: 'bootstrapping' as const, startedAt: T0, endedAt: T0 + 1_000 },
  { phase: 'data-transfer' as const, startedAt: T0 + 1_000, endedAt: T0 + 4_000 },
  { phase: 'testing' as const, startedAt: T0 + 4_000, endedAt: T0 + 14_000 },
  { phase: 'termination' as const, startedAt: T0 + 14_000, endedAt: T0 + 14_050 },
  { phase: 'switchover' as const, startedAt: T0 + 14_050, endedAt: T0 + 14_070 },
  { phase: 'completed' as const, startedAt: T0 + 14_070, endedAt: T0 + 14_070 },
];
const req = (at: number, kind: string, over: Partial<FailedRequest> = {}): FailedRequest => ({ at, latencyMs: 12.34, endpoint: 'bid', method: 'POST', path: '/items/7/bids', kind, ...over });

describe('client: the demo parts (failure account, working folder, teardown)', () => {
  it('places a time in the phases: before, inside (with the offset), after', () => {
    assert.equal(placeInPhases(T0 - 2_500, timings), 'before the upgrade (2.5 s before it began)');
    assert.equal(placeInPhases(T0 + 3_210, timings), 'data-transfer +2.2 s');
    assert.equal(placeInPhases(T0 + 14_010, timings), 'termination +0.0 s');
    assert.equal(placeInPhases(T0 + 15_070, timings), 'after the upgrade (1.0 s after it ended)');
    assert.equal(placeInPhases(T0 + 20_000, [{ phase: 'testing', startedAt: T0 }]), 'testing +20.0 s', 'an open phase');
  });

  it('lists every failed request with its kind and time, and the generator overload apart, named as such', () => {
    const lines = failureLines([
      req(T0 + 3_210, '502'),
      req(T0 + 14_010, 'ECONNRESET', { method: 'GET', path: '/items/3', latencyMs: 1.06 }),
      req(T0 + 14_020, 'overload', { method: '-', path: '-', latencyMs: 0 }),
      req(T0 + 14_030, 'overload', { method: '-', path: '-', latencyMs: 0 }),
    ], timings);
    assert.deepEqual(lines.slice(0, 3), [
      "Failed requests (2), with when they left relative to the upgrade's phases:",
      '  data-transfer +2.2 s  POST /items/7/bids  HTTP 502 after 12.3 ms',
      '  termination +0.0 s    GET /items/3        ECONNRESET after 1.1 ms',
    ]);
    assert.match(lines[3], /^Not sent by the load generator: 2 request\(s\), its own overload limit .*not a failure of the site\), from termination \+0\.0 s to termination \+0\.0 s\.$/);
    assert.equal(lines.length, 4);
    assert.deepEqual(failureLines([], timings), []);
    const many = failureLines(Array.from({ length: 60 }, (_, i) => req(T0 + 5_000 + i, '500')), timings, { max: 50 });
    assert.equal(many.length, 52);
    assert.equal(many[51], '  … and 10 more');
    const named = failureLines(Array.from({ length: 60 }, (_, i) => req(T0 + 5_000 + i, '500')), timings, { max: 50, fullList: '/x/failed-requests.txt' });
    assert.equal(named[51], '  … and 10 more (all in /x/failed-requests.txt)');
  });

  it('keeps only the named files at the top of the run folder and removes the rest', () => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'imago-workdir-'));
    try {
      const a = WorkDir.create(root, new Date('2026-01-02T03:04:05Z'));
      const b = WorkDir.create(root, new Date('2026-01-02T03:04:05Z'));
      assert.deepEqual([a.id, b.id], ['demo-20260102-030405', 'demo-20260102-030405-1'], 'two runs in the same second get two folders');
      fs.mkdirSync(a.path('stage', 'uold-db', 'data'), { recursive: true });
      fs.writeFileSync(a.path('stage', 'uold-db', 'data', 'ibdata1'), Buffer.alloc(1 << 20));
      fs.writeFileSync(a.path('stage', 'uold-v1.log'), 'v1 log\n');
      fs.mkdirSync(a.path('stage', 'universes', 'u1'), { recursive: true });
      fs.writeFileSync(a.path('stage', 'universes', 'u1', 'app.log'), 'v2 log\n');
      fs.writeFileSync(a.path('report.html'), '<html>');
      fs.writeFileSync(a.path('temporal.db'), Buffer.alloc(1 << 16));
      a.keep('uold-v1.log', a.path('stage', 'uold-v1.log'), 'v1');
      a.keep('unew-v2.log', a.path('stage', 'universes', 'u1', 'app.log'), 'v2');
      a.keep('report.html', a.path('report.html'), 'report');
      a.keep('missing.log', a.path('nope.log'), 'never written');
      a.collect('unew-v2.log');
      fs.rmSync(a.path('stage', 'universes', 'u1'), { recursive: true }); // the universe goes, its log was collected
      const kept = a.prune();
      assert.deepEqual(kept.map((k) => k.name).sort(), ['report.html', 'unew-v2.log', 'uold-v1.log']);
      assert.deepEqual(fs.readdirSync(a.dir).sort(), ['report.html', 'unew-v2.log', 'uold-v1.log']);
      assert.equal(fs.readFileSync(a.path('unew-v2.log'), 'utf8'), 'v2 log\n');
    } finally {
      fs.rmSync(root, { recursive: true, force: true });
    }
  });

  it('tears down in reverse order, once, past a failing or hanging step', async () => {
    const t = new Teardown();
    const order: string[] = [];
    const log: string[] = [];
    t.push('first', async () => { order.push('first'); });
    t.push('hangs', () => new Promise<void>(() => { order.push('hangs'); }), 100);
    t.push('fails', async () => { order.push('fails'); throw new Error('boom'); });
    t.push('last', async () => { order.push('last'); });
    await Promise.all([t.run((m) => log.push(m)), t.run((m) => log.push(m))]);
    assert.deepEqual(order, ['last', 'fails', 'hangs', 'first']);
    assert.deepEqual(log, ['clean-up: fails: boom', 'clean-up: hangs did not stop within 0.1 s; going on (what is left is stopped at the end)']);
    assert.throws(() => t.push('late', async () => undefined), /already running/);
  });

  it('sweeps the processes that carry the marker, and only those', async () => {
    const marker = `sweep-test-${process.pid}-${Date.now()}`;
    const ours = spawn('sleep', ['30'], { env: { ...process.env, IMAGO_DEMO_RUN: marker }, stdio: 'ignore' });
    const other = spawn('sleep', ['30'], { env: { ...process.env, IMAGO_DEMO_RUN: `${marker}-other` }, stdio: 'ignore' });
    try {
      const exited = new Promise((r) => ours.once('exit', (_c, sig) => r(sig)));
      await new Promise((r) => setTimeout(r, 50)); // the environ is readable once exec is done
      assert.deepEqual(sweep((env) => env.IMAGO_DEMO_RUN === marker), [ours.pid]);
      assert.equal(await exited, 'SIGKILL');
      assert.equal(other.exitCode, null, 'a process with another marker is left alone');
    } finally {
      ours.kill('SIGKILL');
      other.kill('SIGKILL');
    }
  });
});
