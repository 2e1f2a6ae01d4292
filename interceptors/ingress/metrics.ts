/** The interceptor's figures in the Prometheus text exposition format (GET /metrics). */
import type { IngressStatus } from './api';

/** Upper bounds of the client-visible latency histogram (arrival → reply end, hold included), ms. */
export const LATENCY_BOUNDS_MS = [0.25, 0.5, 1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000];

const snake = (s: string): string => s.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);

export function prometheusText(st: IngressStatus): string {
  const lines: string[] = [];
  for (const [k, v] of Object.entries(st.counters)) lines.push(`# TYPE imago_ingress_${snake(k)}_total counter`, `imago_ingress_${snake(k)}_total ${v}`);
  const gauges: Record<string, number> = {
    inFlight: st.inFlight, held: st.held, holding: st.state === 'held' ? 1 : 0, mirroring: st.mirror.on ? 1 : 0,
    workers: st.dataPlane.workers.length, orphaned: st.dataPlane.orphaned,
  };
  for (const [k, v] of Object.entries(gauges)) lines.push(`# TYPE imago_ingress_${snake(k)} gauge`, `imago_ingress_${snake(k)} ${v}`);
  lines.push('# TYPE imago_ingress_latency_ms histogram');
  let cum = 0;
  LATENCY_BOUNDS_MS.forEach((le, i) => { cum += st.latency.counts[i] ?? 0; lines.push(`imago_ingress_latency_ms_bucket{le="${le}"} ${cum}`); });
  cum += st.latency.counts[LATENCY_BOUNDS_MS.length] ?? 0;
  lines.push(`imago_ingress_latency_ms_bucket{le="+Inf"} ${cum}`, `imago_ingress_latency_ms_sum ${st.latency.meanMs * st.latency.count}`, `imago_ingress_latency_ms_count ${cum}`);
  return `${lines.join('\n')}\n`;
}
