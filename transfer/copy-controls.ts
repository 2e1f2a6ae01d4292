import { imagoError } from '../lib/errors';
import { validateThrottlePatch, type ThrottleSettings } from './options';
import type { Throttler } from './throttler';

/**
 * The operator's controls of a copier (the transfer or a copy unit): pause,
 * resume, chunk size and throttle. They may change while a copy runs; the
 * running throttler takes them at its next check.
 */
export abstract class CopyControls {
  protected chunkSize: number;
  protected throttle: ThrottleSettings;
  protected paused = false;
  protected throttler?: Throttler;

  protected constructor(options: { chunkSize: number; throttle: ThrottleSettings }) {
    this.chunkSize = options.chunkSize;
    this.throttle = { ...options.throttle };
  }

  pause(): void { this.paused = true; if (this.throttler) this.throttler.paused = true; }
  resume(): void { this.paused = false; if (this.throttler) this.throttler.paused = false; }
  setChunkSize(n: number): void {
    if (!Number.isInteger(n) || n < 1 || n > 100_000) throw imagoError('IMAGO_OPTIONS_INVALID', `chunkSize must be an integer in 1..100000, got ${n}`);
    this.chunkSize = n;
  }
  setThrottle(patch: Partial<ThrottleSettings>): void {
    this.throttle = { ...this.throttle, ...validateThrottlePatch(patch) };
    if (this.throttler) this.throttler.settings = this.throttle;
  }
}
