/**
 * Benchmark of the ingress interceptor I (loopback only, bounded: ~2-3 min).
 *
 *   npx tsx benchmarks/ingress.ts [--duration 4] [--repeats 3] [--connections 50] [--rate 1000] [--workers N] [--before DIR]
 *
 * 1. The same fixed-cost echo upstream (a node:http process answering a 1 KB
 *    JSON body) reached directly, through I (the CLI process: nginx with
 *    Imago's Lua as the data plane) and through plain nginx (proxy_pass with
 *    upstream keep-alive, the same number of worker processes), all driven by
 *    wrk with the same settings, rounds interleaved (the order rotating);
 *    medians over repeats, and the median of each round's ratio.
 *    Then the same paths at a fixed, moderate rate (--rate req/s, paced
 *    open-loop like wrk2: latency counted from the scheduled send time, so a
 *    stall is not hidden), sub-millisecond percentiles.
 *    --before DIR adds the interceptor of another checkout (DIR/interceptors/
 *    ingress/main.ts, e.g. a `git archive` of an older commit) as a row, so
 *    before/after are measured side by side in one run.
 * 2. Under a steady 500 req/s (autocannon, fixed rate): hold → switch →
 *    release time seen by the driver, and the largest client-visible latency.
 */
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { hardwareLine } from '../lib/hardware';
import { ManagedProcess, run, stopAll } from '../lib/proc';
import { freePort, waitForPort } from '../lib/ports';
import { IngressControlClient } from '../interceptors/ingress/control-client';
import { startReferenceNginx } from './reference-nginx';

const { values } = parseArgs({ options: {
  duration: { type: 'string', default: '4' }, repeats: { type: 'string', default: '3' }, connections: { type: 'string', default: '50' },
  rate: { type: 'string', default: '1000' }, before: { type: 'string' }, workers: { type: 'string', default: String(Math.max(2, os.availableParallelism())) },
} });
const WORKERS = Number(values.workers);
const RATE = Number(values.rate);
const BEFORE = values.before ? path.resolve(values.before) : undefined;
const DURATION = Number(values.duration);
const REPEATS = Number(values.repeats);
const CONNECTIONS = Number(values.connections);
const TOKEN = 'bench-token-0123456789abcdef';

const ECHO = `
const http = require('node:http');
const body = JSON.stringify({ ok: true, pad: 'x'.repeat(1000) });
http.createServer((req, res) => { req.resume(); req.on('end', () => { res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), 'x-name': process.argv[2] }); res.end(body); }); })
  .listen(Number(process.argv[1]), '127.0.0.1');
`;

const median = (xs: number[]): number => { const s = [...xs].sort((a, b) => a - b); const m = s.length >> 1; return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2; };

function ms(v: string): number {
  const m = /^([\d.]+)(us|ms|s)$/.exec(v.trim());
  if (!m) return NaN;
  return Number(m[1]) * (m[2] === 'us' ? 0.001 : m[2] === 's' ? 1000 : 1);
}

async function wrk(url: string): Promise<{ rps: number; p50: number; p99: number }> {
  const out = await run('wrk', ['-t1', `-c${CONNECTIONS}`, `-d${DURATION}s`, '--latency', url]);
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1]);
  const p50 = ms(/\s50%\s+(\S+)/.exec(out)?.[1] ?? '');
  const p99 = ms(/\s99%\s+(\S+)/.exec(out)?.[1] ?? '');
  if (/Non-2xx|Socket errors/.test(out)) console.error(`wrk reported errors for ${url}:\n${out}`);
  return { rps, p50, p99 };
}

/**
 * Paced open-loop load (wrk2-style): `rate` req/s over `conns` keep-alive
 * connections for `seconds`; each latency runs from the request's scheduled
 * time, so queueing behind a stall is counted (no coordinated omission).
 */
async function paced(url: string, rate: number, conns: number, seconds: number): Promise<{ p50: number; p90: number; p99: number; max: number; errors: number; sent: number }> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: conns });
  const lat: number[] = [];
  let errors = 0;
  let sent = 0;
  const t0 = performance.now();
  const total = Math.round(rate * seconds);
  await new Promise<void>((resolve) => {
    let done = 0;
    const fire = (scheduled: number): void => {
      sent += 1;
      const req = http.get(url, { agent }, (res) => {
        res.resume();
        res.on('end', () => { if (res.statusCode === 200) lat.push(performance.now() - scheduled); else errors += 1; if (++done === total) resolve(); });
      });
      req.on('error', () => { errors += 1; if (++done === total) resolve(); });
    };
    const tick = (): void => {
      const now = performance.now();
      const due = Math.min(total, Math.floor(((now - t0) / 1000) * rate) + 1);
      while (sent < due) fire(t0 + (sent / rate) * 1000);
      if (sent < total) setTimeout(tick, 1);
    };
    tick();
  });
  agent.destroy();
  const s = lat.sort((a, b) => a - b);
  const q = (p: number): number => s[Math.min(s.length - 1, Math.floor(p * s.length))] ?? NaN;
  return { p50: q(0.5), p90: q(0.9), p99: q(0.99), max: s[s.length - 1] ?? NaN, errors, sent };
}

async function main(): Promise<void> {
  const loadBefore = os.loadavg().map((l) => l.toFixed(2)).join(' ');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'imago-bench-ingress-'));
  try {
    const [pOld, pNew, pI, pC, pNginx, pB, pBC] = [await freePort(), await freePort(), await freePort(), await freePort(), await freePort(), await freePort(), await freePort()];
    new ManagedProcess('uold', process.execPath, ['-e', ECHO, String(pOld), 'uold'], path.join(dir, 'uold.log'));
    new ManagedProcess('unew', process.execPath, ['-e', ECHO, String(pNew), 'unew'], path.join(dir, 'unew.log'));
    new ManagedProcess('ingress', process.execPath, ['--import', 'tsx', 'interceptors/ingress/main.ts', '--listen', `127.0.0.1:${pI}`,
      '--upstream', `uold=http://127.0.0.1:${pOld}`, '--control', `127.0.0.1:${pC}`, '--workers', String(WORKERS),
      // As operators run it: the state file is written (fsync) when a transition changes what a restart would serve.
      '--state-file', path.join(dir, 'ingress.state')], path.join(dir, 'ingress.log'), { env: { ...process.env, IMAGO_INGRESS_TOKEN: TOKEN } });
    if (BEFORE) {
      new ManagedProcess('ingress-before', process.execPath, ['--import', 'tsx', path.join(BEFORE, 'interceptors/ingress/main.ts'), '--listen', `127.0.0.1:${pB}`,
        '--upstream', `uold=http://127.0.0.1:${pOld}`, '--control', `127.0.0.1:${pBC}`], path.join(dir, 'ingress-before.log'), { env: { ...process.env, IMAGO_INGRESS_TOKEN: TOKEN } });
    }
    await startReferenceNginx(path.join(dir, 'nginx'), { upstreamPort: pOld, listenPort: pNginx, workers: WORKERS });
    for (const p of [pOld, pNew, pI, pC, pNginx, ...(BEFORE ? [pB, pBC] : [])]) await waitForPort(p, '127.0.0.1', 30_000);

    // --- 1. throughput and added latency, rounds interleaved
    const paths: Record<string, string> = { direct: `http://127.0.0.1:${pOld}/`, ingress: `http://127.0.0.1:${pI}/`, ...(BEFORE ? { 'ingress (before)': `http://127.0.0.1:${pB}/` } : {}), nginx: `http://127.0.0.1:${pNginx}/` };
    const results: Record<string, Array<{ rps: number; p50: number; p99: number }>> = Object.fromEntries(Object.keys(paths).map((k) => [k, []]));
    for (const url of Object.values(paths)) await run('wrk', ['-t1', '-c10', '-d1s', url]); // warm-up
    // Interleaved, the order rotating from round to round (no path always first or last).
    const order = Object.keys(paths);
    const rotated = (r: number): string[] => order.map((_, j) => order[(r + j) % order.length]);
    for (let r = 0; r < REPEATS; r += 1) {
      for (const k of rotated(r)) results[k].push(await wrk(paths[k]));
    }
    const pacedRuns: Record<string, Array<Awaited<ReturnType<typeof paced>>>> = Object.fromEntries(Object.keys(paths).map((k) => [k, []]));
    for (let r = 0; r < REPEATS; r += 1) {
      for (const k of rotated(r)) pacedRuns[k].push(await paced(paths[k], RATE, 10, DURATION));
    }
    const pacedMed = Object.fromEntries(Object.entries(pacedRuns).map(([k, v]) => [k, { p50: median(v.map((x) => x.p50)), p90: median(v.map((x) => x.p90)), p99: median(v.map((x) => x.p99)), max: Math.max(...v.map((x) => x.max)), errors: v.reduce((a, x) => a + x.errors, 0) }]));
    const med = Object.fromEntries(Object.entries(results).map(([k, v]) => [k, { rps: median(v.map((x) => x.rps)), p50: median(v.map((x) => x.p50)), p99: median(v.map((x) => x.p99)) }]));

    // --- 2. hold → switch → release under a steady 500 req/s
    const autocannon = require('autocannon');
    const control = new IngressControlClient(`http://127.0.0.1:${pC}`, TOKEN);
    await control.addUpstream('unew', `http://127.0.0.1:${pNew}`);
    const switches: number[] = [];
    const loadStart = Date.now();
    const load = autocannon({ url: paths.ingress, connections: 20, overallRate: 500, duration: 2 + REPEATS * 2 });
    const targets = ['unew', 'uold'];
    for (let r = 0; r < REPEATS; r += 1) {
      await new Promise((res) => setTimeout(res, 2000));
      const t0 = performance.now();
      await control.hold(5_000);
      const d = await control.drained(5_000);
      if (!d.drained) throw new Error('did not drain');
      await control.switch(targets[r % 2]);
      await control.release();
      switches.push(performance.now() - t0);
    }
    const ac = await load;
    const timeline = await control.timeline(loadStart);
    const maxIngressMs = Math.max(...timeline.buckets.map((b) => b.maxMs));
    const st = await control.status();

    const f = (n: number, d = 2): string => n.toFixed(d);
    const lines = [
      `hardware: ${hardwareLine()}; load average before/after: ${loadBefore} / ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}; data plane and nginx: ${WORKERS} worker processes; wrk -t1 -c${CONNECTIONS} -d${DURATION}s, median of ${REPEATS}`,
      '',
      '| path to the echo upstream | req/s | ratio to direct | ratio to nginx | p50 ms | p99 ms | p50 added ms | p99 added ms |',
      '|---|---|---|---|---|---|---|---|',
      ...Object.entries(med).map(([k, v]) => `| ${k} | ${f(v.rps, 0)} | ${f(v.rps / med.direct.rps)} | ${k === 'direct' ? '-' : f(v.rps / med.nginx.rps)} | ${f(v.p50, 3)} | ${f(v.p99, 3)} | ${k === 'direct' ? '-' : f(v.p50 - med.direct.p50, 3)} | ${k === 'direct' ? '-' : f(v.p99 - med.direct.p99, 3)} |`),
      `(each round's ingress/nginx ratio: ${results.ingress.map((x, i) => f(x.rps / results.nginx[i].rps)).join(', ')}; median ${f(median(results.ingress.map((x, i) => x.rps / results.nginx[i].rps)))})`,
      '',
      `| fixed ${RATE} req/s, 10 connections, ${DURATION} s, paced (median of ${REPEATS}) | p50 ms | p90 ms | p99 ms | max ms | p50 added ms | errors |`,
      '|---|---|---|---|---|---|---|',
      ...Object.entries(pacedMed).map(([k, v]) => `| ${k} | ${f(v.p50, 3)} | ${f(v.p90, 3)} | ${f(v.p99, 3)} | ${f(v.max, 1)} | ${k === 'direct' ? '-' : f(v.p50 - pacedMed.direct.p50, 3)} | ${v.errors} |`),
      '',
      `| under 500 req/s through I (autocannon, 20 connections, ${2 + REPEATS * 2} s) | value |`,
      '|---|---|',
      `| hold→drained→switch→release, driver-side, median of ${switches.length} (ms) | ${f(median(switches))} (each: ${switches.map((s) => f(s, 1)).join(', ')}) |`,
      `| client latency p50 / p99 / max (ms) | ${f(ac.latency.p50, 1)} / ${f(ac.latency.p99, 1)} / ${f(ac.latency.max, 1)} |`,
      `| largest latency seen by I, request arrival to reply end (ms) | ${f(maxIngressMs)} |`,
      `| largest added latency: max − p50 (ms) | ${f(ac.latency.max - ac.latency.p50, 1)} |`,
      `| requests ${ac.requests.total}, non-2xx ${ac.non2xx}, errors ${ac.errors}, held by I ${st.counters.held}, auto-releases ${st.counters.autoReleases} | |`,
    ];
    console.log(lines.join('\n'));
  } finally {
    await stopAll();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch(async (e) => { console.error(e); await stopAll(); process.exit(1); });
