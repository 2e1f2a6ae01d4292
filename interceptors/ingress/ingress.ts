/**
 * The ingress interceptor I: nginx as the data plane (every core, native
 * HTTP handling, workers restarted by nginx's master when they die) and this
 * Node process as the control plane (the token-protected control API, the
 * switch semantics, mirroring to the compare engine, the supervisor of the
 * data plane, the state file). startIngress() wires the roles together:
 *   dataplane (nginx + lua/imago), switcher (the transitions), control (the
 *   HTTP/JSON API), mirrorer (shadow copies, comparer), state-file
 *   (restarts), upstream-policy (where traffic may go).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { imagoError } from '../../lib/errors';
import type { IngressStatus } from './api';
import { controlTransport, createControlHandler, createControlServer } from './control';
import { NginxDataPlane } from './dataplane';
import { Mirrorer } from './mirrorer';
import { validateIngressOptions, type IngressOptions, type IngressOptionsInput } from './options';
import { encodeRecord, initialRecord, type SwitchRecord, type UpstreamEntry } from './record';
import { persistedOf, StateFile } from './state-file';
import { restoredTarget, timeoutPlan } from './switcher';
import { parseAllowlist, resolveUpstream } from './upstream-policy';

export interface Ingress {
  /** The proxy's address, e.g. http://127.0.0.1:8080 */
  readonly url: string;
  /** The control API's address. */
  readonly controlUrl: string;
  /** The health endpoint for load balancers, when options.health is set. */
  readonly healthUrl: string | undefined;
  readonly options: IngressOptions;
  /** The data plane's private directory (nginx.conf, error.log, sockets). */
  readonly runDir: string;
  status(): Promise<IngressStatus>;
  /**
   * Stops: the health endpoint answers 503, a hold ends as its hard timeout
   * would end it (back to its origin unless committed), requests are still
   * served for limits.shutdownDelayMs, then nginx stops accepting and lets
   * in-flight requests finish (up to graceMs), then everything closes.
   */
  close(graceMs?: number): Promise<void>;
}

export interface IngressHooks {
  /** Lines about the data plane's life (restarts); default: stderr. */
  log?: (line: string) => void;
}

const urlOf = (host: string, port: number): string => `http://${host.includes(':') ? `[${host}]` : host}:${port}`;

/** The record after a restart: the target the hard timeout would have chosen, no hold. */
function afterRestart(rec: SwitchRecord): SwitchRecord {
  const target = restoredTarget(rec);
  return { ...rec, target, origin: target, held: false, committed: false, startedAt: 0, deadline: 0, timeoutMs: 0, mirror: { ...rec.mirror, on: rec.mirror.on && rec.mirror.shadow !== target } };
}

export async function startIngress(input: IngressOptionsInput & IngressHooks): Promise<Ingress> {
  const { log: logHook, ...rest } = input;
  const log = logHook ?? ((line: string) => process.stderr.write(`imago ingress: ${line}\n`));
  const options = validateIngressOptions(rest);
  // Before anything starts: an insecure control API is refused, not started and then stopped.
  const controlTls = controlTransport(options, log);
  const first = await resolveUpstream(options.upstream.name, options.upstream.url);
  const allowlist = parseAllowlist(options.upstreamAllowlist ?? first.addresses);

  // Where to start: the state file's target (see state-file.ts), else the start upstream.
  const start: UpstreamEntry = { name: options.upstream.name, idx: 1, ip: first.ip, port: first.port, url: options.upstream.url };
  let rec = initialRecord(start);
  let startNote = `started with target ${start.name}`;
  const stateFile = options.stateFile ? new StateFile(options.stateFile) : undefined;
  const saved = stateFile?.read();
  if (saved) {
    const target = saved.target;
    const upstreams: UpstreamEntry[] = [start];
    for (const [name, url] of Object.entries(saved.upstreams)) {
      if (name === start.name) continue;
      try {
        const a = await resolveUpstream(name, url, allowlist);
        upstreams.push({ name, idx: upstreams.length + 1, ip: a.ip, port: a.port, url });
      } catch (e) {
        if (name === target) throw imagoError('INGRESS_STATE_INVALID', `${options.stateFile}: its target '${name}' cannot be used: ${(e as Error).message}`, e);
        log(`state file: upstream '${name}' dropped: ${(e as Error).message}`);
      }
    }
    rec = { ...rec, upstreams, target, origin: target };
    startNote = `restored from ${options.stateFile} (saved ${new Date(saved.savedAt).toISOString()}): target ${target}`;
  }

  // Unix socket paths are limited to 107 bytes: the run directory holds two.
  if (options.runDir && path.resolve(options.runDir).length > 90) {
    throw imagoError('IMAGO_OPTIONS_INVALID', `ingress: runDir must be at most 90 characters (unix socket paths are short): ${options.runDir}`);
  }
  const ownRunDir = !options.runDir;
  const runDir = options.runDir ? path.resolve(options.runDir) : fs.mkdtempSync(path.join(os.tmpdir(), 'imago-ingress-'));
  fs.mkdirSync(runDir, { recursive: true, mode: 0o700 });
  const cleanup: Array<() => Promise<void> | void> = [];
  if (ownRunDir) cleanup.push(() => fs.rmSync(runDir, { recursive: true, force: true }));
  const undo = async (): Promise<void> => { for (const fn of cleanup.reverse()) await fn(); };

  try {
    const mirrorer = new Mirrorer(options.limits.shadowQueueSize, options.limits.maxCaptureBytes, options.limits.upstreamIdleTimeoutMs, options.comparerFactory);
    await mirrorer.listen(path.join(runDir, 'mirror.sock'));
    cleanup.push(() => mirrorer.close());

    let latest = rec;
    let lastWritten = '';
    /** Writes (durably: it costs fsyncs) only when what a restart would serve changes. */
    const persist = (r: SwitchRecord): void => {
      if (!stateFile) return;
      const state = persistedOf(r);
      const key = JSON.stringify({ ...state, savedAt: 0 });
      if (key === lastWritten) return;
      stateFile.write(state);
      lastWritten = key;
    };
    if (stateFile) cleanup.push(() => stateFile.close());
    const dp = await NginxDataPlane.start({
      options, runDir, record: encodeRecord(rec), startNote, log,
      restartRecord: () => encodeRecord(afterRestart(latest)),
    });
    cleanup.push(() => dp.stop(1_000));
    persist(rec);

    const handler = createControlHandler({ options, dataPlane: dp, mirrorer, allowlist, persist, seen: (r) => { latest = r; } });
    const control = await createControlServer(options.control, handler, controlTls);
    cleanup.push(() => control.close());

    let closing: Promise<void> | undefined;
    return {
      url: urlOf(options.listen.host, dp.port),
      controlUrl: control.url,
      healthUrl: options.health && dp.healthPort !== undefined ? urlOf(options.health.host, dp.healthPort) : undefined,
      options,
      runDir,
      status: () => handler.status(),
      close(graceMs = 10_000) {
        closing ??= (async () => {
          await dp.markStopping().catch(() => undefined);
          // A hold ends as its hard timeout would: the fleet's other interceptors do the same.
          const r = await dp.record().catch(() => undefined);
          if (r?.record.held) {
            const plan = timeoutPlan(r.record);
            persist(plan.record);
            const put = await dp.put(r.version, encodeRecord(plan.record), {
              notes: [...(plan.switchNote ? [['switch', plan.switchNote] as [string, string]] : []), ['release', `interceptor stopping (as at the hard timeout): %HELD% held request(s) to ${plan.record.target}`]],
            }).catch(() => undefined);
            if (put?.ok) latest = plan.record;
          }
          // Load balancers see the 503 and move away while requests are still served.
          if (options.limits.shutdownDelayMs) await new Promise((r) => setTimeout(r, options.limits.shutdownDelayMs));
          await dp.stop(graceMs);
          await control.close();
          await mirrorer.close();
          stateFile?.close();
          if (ownRunDir) fs.rmSync(runDir, { recursive: true, force: true });
        })();
        return closing;
      },
    };
  } catch (e) {
    await undo().catch(() => undefined);
    throw e;
  }
}
