import * as os from 'node:os';

/**
 * The one line every benchmark prints about the machine it ran on, so that
 * figures from different runs can be read against their hardware.
 */
export function hardwareLine(): string {
  const cpu = os.cpus();
  return `${cpu[0]?.model ?? 'unknown CPU'}, ${cpu.length} cores, ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB; Node ${process.version}; load avg ${os.loadavg().map((x) => x.toFixed(1)).join(' ')}`;
}
