/**
 * Where the throttler's load signals come from: Uold itself (Threads_running,
 * its position) and the ingress interceptors in front of it (the latency its
 * clients see, from each interceptor's control API `GET /status`).
 */
import { IngressControlClient } from '../interceptors/ingress/control-client';
import type { Inspector } from './inspector';
import type { IngressEndpoint, ThrottleSettings } from './options';
import { Throttler, type LoadProbes } from './throttler';

export function loadProbes(uold: Inspector, ingress: IngressEndpoint[]): LoadProbes {
  const clients = ingress.map((i) => new IngressControlClient(i.controlUrl, i.token, 2_000, i.tls));
  return {
    threadsRunning: () => uold.threadsRunning(),
    sourcePosition: () => uold.gtidBinlogPos(),
    latency: clients.length ? () => Promise.all(clients.map(async (c) => (await c.status()).latency)) : undefined,
  };
}

export function createThrottler(uold: Inspector, ingress: IngressEndpoint[], settings: ThrottleSettings, lagMs: () => number): Throttler {
  return new Throttler(loadProbes(uold, ingress), settings, lagMs);
}
