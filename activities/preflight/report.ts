/**
 * The preflight's report: every check made, grouped, with what it found and
 * what fixes it. Serialisable and free of secrets: the workflow keeps it in
 * its status (and so in history and the web UI).
 */
import { ERRORS, imagoError, type ErrorCode, type ImagoError } from '../../lib/errors';
import type { Check } from '../../lib/uold-requirements';

export const PREFLIGHT_GROUPS = ['secrets', 'uold', 'tables', 'conversion', 'unew schema', 'samples', 'rollback', 'interceptors', 'provider', 'temporal'] as const;
export type PreflightGroup = (typeof PREFLIGHT_GROUPS)[number];

export interface PreflightCheck extends Check { group: PreflightGroup }

export interface PreflightReport {
  /** No check failed (warnings allowed). */
  ok: boolean;
  checks: PreflightCheck[];
  /** Checks not made, and why (e.g. the workflow's subset makes no scratch database; Uold was unreachable). */
  notChecked: string[];
  /** Milliseconds the whole preflight took. */
  ms: number;
}

/** Collects checks while the preflight runs. */
export class ReportBuilder {
  readonly checks: PreflightCheck[] = [];
  readonly notChecked: string[] = [];
  private readonly started = Date.now();

  add(group: PreflightGroup, ...checks: Check[]): void {
    for (const c of checks) this.checks.push({ group, ...c });
  }

  ok(group: PreflightGroup, name: string, detail: string): void { this.add(group, { name, status: 'ok', detail }); }

  skip(what: string): void { this.notChecked.push(what); }

  failed(group?: PreflightGroup): boolean {
    return this.checks.some((c) => c.status === 'fail' && (group === undefined || c.group === group));
  }

  report(): PreflightReport {
    return { ok: !this.failed(), checks: this.checks, notChecked: this.notChecked, ms: Date.now() - this.started };
  }
}

/** A failed check from an error: its registry code when it has one, its first line as the detail. */
export function checkFromError(name: string, err: unknown, fix?: string): Check {
  const e = err as { code?: string; detail?: string; message?: string };
  // Only registry codes: a driver's own (ER_ACCESS_DENIED_ERROR, ERR_…) is part of the detail, not a code.
  const code = typeof e?.code === 'string' && e.code in ERRORS ? (e.code as ErrorCode) : undefined;
  const detail = String(e?.detail ?? e?.message ?? err).split('\n')[0].slice(0, 600);
  return { name, status: 'fail', detail, ...(code ? { code } : {}), ...(fix ? { fix } : {}) };
}

/** The error a failed preflight raises: the first failure's code, every failure listed. */
export function preflightError(report: PreflightReport): ImagoError {
  const failed = report.checks.filter((c) => c.status === 'fail');
  const code = failed[0]?.code ?? 'IMAGO_PREFLIGHT_FAILED';
  return imagoError(code, `${failed.length} preflight check(s) failed: ${failed.map((c) => `[${c.group}] ${c.name}: ${c.detail}`).join('; ')}`);
}
