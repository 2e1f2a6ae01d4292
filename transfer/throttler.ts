import type { Inspector } from './inspector';
import type { ThrottleSettings } from './options';

/**
 * The throttler samples Uold's load (Threads_running) and our own apply lag,
 * and tells the copier whether to wait. Only the copy is throttled: the
 * change stream keeps being applied, so throttling never makes the lag worse.
 */
export class Throttler {
  threadsRunning = 0;
  sourcePosition = '';
  paused = false;
  private timer?: NodeJS.Timeout;
  private failures = 0;

  constructor(private readonly inspector: Inspector, public settings: ThrottleSettings, private readonly lagMs: () => number) {}

  start(): void {
    const tick = async () => {
      try {
        this.threadsRunning = await this.inspector.threadsRunning();
        this.sourcePosition = await this.inspector.gtidBinlogPos();
        this.failures = 0;
      } catch {
        this.failures++;
      }
      if (this.timer) this.timer = setTimeout(tick, this.settings.checkIntervalMs);
    };
    this.timer = setTimeout(tick, 0);
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** Why the copy should wait now, or null to go on. */
  reason(): string | null {
    if (this.paused) return 'paused by operator';
    // Why: if we cannot see Uold's load we must assume it is high.
    if (this.failures >= 3) return 'Uold load unknown (status queries failing)';
    if (this.threadsRunning > this.settings.maxThreadsRunning) return `Threads_running ${this.threadsRunning} > ${this.settings.maxThreadsRunning}`;
    const lag = this.lagMs();
    if (lag > this.settings.maxLagMs) return `apply lag ${lag} ms > ${this.settings.maxLagMs} ms`;
    return null;
  }
}
