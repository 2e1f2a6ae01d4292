/**
 * TEST CODE: fault injection at the cut-over's step boundaries, from outside
 * the product. The product only offers a seam (CutoverHooks, passed to the
 * worker by test code); everything that pauses, fails or kills lives here.
 *
 * Protocol between a test and its fault worker (test/e2e/fault-worker.ts),
 * through files in a folder both know:
 *   the worker, reaching the boundary in its first live cut-over attempt,
 *   writes `at` (the boundary's name) and waits until `go` exists;
 *   the test waits for `at`, injects its fault (SIGKILL the worker, break an
 *   interceptor's control API, send an abort), then writes `go` (unless it killed it).
 */
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import type { CutoverHooks, CutoverSteps } from '../../activities/cutover';
import type { IngressControlClient } from '../../interceptors/ingress';

export const BOUNDARIES = ['after-hold', 'after-drained', 'after-flush', 'after-provider-switch', 'after-switch-1-of-3', 'after-release-1-of-3'] as const;
export type Boundary = (typeof BOUNDARIES)[number];

/** Boundaries after which the point of no return has been recorded. */
export const PAST_POINT_OF_NO_RETURN: ReadonlySet<Boundary> = new Set(['after-provider-switch', 'after-release-1-of-3']);

const STEP_OF: Partial<Record<Boundary, keyof CutoverSteps>> = {
  'after-hold': 'hold', 'after-drained': 'waitDrained', 'after-flush': 'flush', 'after-provider-switch': 'switchProvider',
};

/** In the worker: writes the marker and waits for `go` (the test may SIGKILL it meanwhile). */
async function pauseAt(dir: string, boundary: Boundary): Promise<void> {
  // Once per test, across attempts and worker processes.
  const fired = path.join(dir, 'fired');
  if (fs.existsSync(fired)) return;
  fs.writeFileSync(fired, boundary);
  fs.writeFileSync(path.join(dir, 'at'), boundary);
  while (!fs.existsSync(path.join(dir, 'go'))) await new Promise((r) => setTimeout(r, 10));
}

/** Hooks that pause the first live cut-over at `boundary`. */
export function pausingHooks(dir: string, boundary: Boundary): CutoverHooks {
  const step = STEP_OF[boundary];
  // "1 of 3": in an attempt, the first interceptor's call goes through, then the boundary; the others wait for it.
  const oneOf = boundary === 'after-switch-1-of-3' ? 'switch' : boundary === 'after-release-1-of-3' ? 'release' : null;
  const firstOf = new Map<string, Promise<void>>();
  return {
    wrapSteps(steps, _ctx, kind) {
      if (kind !== 'live' || !step) return steps;
      return new Proxy(steps, {
        get(target, prop, recv) {
          const v = Reflect.get(target, prop, recv);
          if (prop !== step || typeof v !== 'function') return typeof v === 'function' ? v.bind(target) : v;
          return async (...args: unknown[]) => { const r = await v.apply(target, args); await pauseAt(dir, boundary); return r; };
        },
      });
    },
    wrapClient(client: IngressControlClient, _i, at) {
      if (!oneOf) return client;
      const key = `${at.workflowId}:${at.attempt}`;
      return new Proxy(client, {
        get(target, prop, recv) {
          const v = Reflect.get(target, prop, recv);
          if (prop !== oneOf || typeof v !== 'function') return typeof v === 'function' ? v.bind(target) : v;
          return async (...args: unknown[]) => {
            const before = firstOf.get(key);
            if (before) { await before; return v.apply(target, args); }
            let passed!: () => void;
            firstOf.set(key, new Promise<void>((r) => { passed = r; }));
            try {
              const r = await v.apply(target, args);
              await pauseAt(dir, boundary);
              return r;
            } finally { passed(); }
          };
        },
      });
    },
  };
}

export async function waitForBoundary(dir: string, timeoutMs: number): Promise<string> {
  const at = path.join(dir, 'at');
  const deadline = Date.now() + timeoutMs;
  while (!fs.existsSync(at)) {
    if (Date.now() > deadline) throw new Error(`the fault worker did not reach its boundary within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
  return fs.readFileSync(at, 'utf8');
}

export function go(dir: string): void { fs.writeFileSync(path.join(dir, 'go'), ''); }

/**
 * A TCP proxy in front of an interceptor's control API, which a test can
 * break: 'refuse' resets every connection at once, 'hang' accepts and never
 * answers. The data plane is untouched: clients keep being served.
 */
export class ControlProxy {
  mode: 'pass' | 'refuse' | 'hang' = 'pass';
  private server: net.Server;
  private sockets = new Set<net.Socket>();
  port = 0;

  constructor(private readonly target: { host: string; port: number }) {
    this.server = net.createServer((client) => {
      this.sockets.add(client);
      client.on('close', () => this.sockets.delete(client));
      client.on('error', () => undefined);
      if (this.mode === 'refuse') { client.resetAndDestroy(); return; }
      if (this.mode === 'hang') return;
      const up = net.connect(this.target.port, this.target.host);
      this.sockets.add(up);
      up.on('close', () => { this.sockets.delete(up); client.destroy(); });
      up.on('error', () => client.destroy());
      client.on('close', () => up.destroy());
      client.pipe(up).pipe(client);
    });
  }

  static async start(controlUrl: string): Promise<ControlProxy> {
    const u = new URL(controlUrl);
    const p = new ControlProxy({ host: u.hostname, port: Number(u.port) });
    await new Promise<void>((resolve) => p.server.listen(0, '127.0.0.1', resolve));
    p.port = (p.server.address() as net.AddressInfo).port;
    return p;
  }

  get url(): string { return `http://127.0.0.1:${this.port}`; }

  /** Breaks (or mends) the control API; open connections are cut so the change is immediate. */
  set(mode: ControlProxy['mode']): void {
    this.mode = mode;
    if (mode !== 'pass') for (const s of this.sockets) s.destroy();
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
