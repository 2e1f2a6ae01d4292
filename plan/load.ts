/**
 * Loads and validates a plan: every error with its path, all at once —
 * schema errors, the rules the schema cannot express, and the plan's files
 * together. The result is the workflow's input: frozen, defaults filled,
 * paths absolute, and `planDir` set to the plan file's folder.
 *
 * Checks that start a server or run the user's code (the conversion loads,
 * the schema file applies) are in plan/deep-check.ts, for `imago plan validate`.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as YAML from 'yaml';
import { imagoError } from '../lib/errors';
import { compareRulesErrors } from '../compare/rules';
import { compileChecker, deepFreeze } from './checker';
import { PROVIDER_NAMES, PROVIDER_SECTIONS } from './providers';
import { planSchema } from './schema';
import type { ProviderPlanSection } from './schema-kit';
import type { PlanFile, UpgradePlan } from './types';

export { formatAjvErrors } from './checker';

const checkFile = compileChecker(planSchema);

/** The plan's files, absolute, when they exist as files (whatever else is wrong with the plan). */
export interface PlanFiles { schemaFile?: string; conversion?: string }

export interface PlanCheck {
  /** The loaded plan; absent when there are errors. */
  plan?: UpgradePlan;
  errors: string[];
  files: PlanFiles;
}

/**
 * Every check that needs no server and runs no user code, all at once:
 * the schema, the cross-field rules, each provider's section, the compare
 * rules' patterns, and that the plan's files exist and are files.
 * Relative paths are relative to `baseDir`, the plan file's folder.
 */
export function checkPlan(input: unknown, baseDir: string): PlanCheck {
  const { value, errors, filled } = checkFile(input);
  // The files and the rules across keys are checked even when the schema is
  // not met: one run lists everything to fix.
  const files = checkFiles(input, baseDir, errors);
  errors.push(...crossFieldErrors(filled, value !== undefined));
  if (!value || errors.length) return { errors, files };
  const plan: UpgradePlan = {
    ...value,
    unew: { ...value.unew, schemaFile: files.schemaFile!, conversion: files.conversion! },
    planDir: path.resolve(baseDir),
  };
  return { plan: deepFreeze(plan), errors, files };
}

/** checkPlan, throwing IMAGO_PLAN_INVALID with every error (one per line, after `source`). */
export function validatePlan(input: unknown, baseDir: string, source = 'plan'): UpgradePlan {
  const { plan, errors } = checkPlan(input, baseDir);
  if (!plan) throw imagoError('IMAGO_PLAN_INVALID', `${source}:\n  ${errors.join('\n  ')}`);
  return plan;
}

/**
 * Validates a plan that was loaded already (the workflow's input) again, e.g.
 * on the worker, where its files must exist too. `planDir` is the loader's,
 * not the file's: it is taken off, and the rest checked as a file would be.
 */
export function validateLoadedPlan(plan: UpgradePlan, source = 'plan'): UpgradePlan {
  const { planDir, ...file } = plan;
  // Plans of workflows started before planDir was typed may lack it.
  return validatePlan(file, typeof planDir === 'string' ? planDir : process.cwd(), source);
}

export function loadPlanFile(file: string): UpgradePlan {
  const { parsed, dir } = readPlanFile(file);
  return validatePlan(parsed, dir, file);
}

/** Reads and parses a plan file (YAML, or JSON by its extension); IMAGO_PLAN_UNREADABLE when it cannot. */
export function readPlanFile(file: string): { parsed: unknown; dir: string } {
  let text: string;
  try { text = fs.readFileSync(file, 'utf8'); } catch (err) {
    throw imagoError('IMAGO_PLAN_UNREADABLE', `${file}: ${(err as Error).message}`);
  }
  try {
    return { parsed: file.endsWith('.json') ? JSON.parse(text) : YAML.parse(text), dir: path.dirname(path.resolve(file)) };
  } catch (err) {
    throw imagoError('IMAGO_PLAN_UNREADABLE', `${file}: ${(err as Error).message}`);
  }
}

/**
 * Rules across keys. On a plan that failed its schema (`complete` false) each
 * rule still runs when the keys it reads have the right types; a provider's
 * own checks run only on a section that met its schema.
 */
function crossFieldErrors(filled: unknown, complete: boolean): string[] {
  const plan = (filled ?? {}) as DeepUnknown<PlanFile>;
  const errors: string[] = [];
  const unew = plan.unew ?? {};
  for (const name of PROVIDER_NAMES) {
    const declared: ProviderPlanSection = PROVIDER_SECTIONS[name];
    const section = unew[name];
    if (section === undefined) {
      if (declared.requiredWhenChosen && unew.provider === name) errors.push(`/unew/${name}: required when provider is '${name}'`);
    } else if (declared.check && complete) {
      errors.push(...declared.check(section, `/unew/${name}`));
    }
  }
  const [minDuration, maxDuration] = numbers(plan.mirror?.minDurationMs, plan.mirror?.maxDurationMs);
  if (minDuration > maxDuration) errors.push('/mirror/minDurationMs: must not exceed maxDurationMs');
  const [drain, flush, hold] = numbers(plan.switchover?.drainTimeoutMs, plan.switchover?.flushTimeoutMs, plan.switchover?.holdTimeoutMs);
  if (drain + flush >= hold) errors.push('/switchover/holdTimeoutMs: must exceed drainTimeoutMs + flushTimeoutMs, or every hold would time out');
  errors.push(...compareRulesErrors(plan.compare).map((e) => `/compare${e}`));
  const rb = plan.postSwitchover?.rollback as { enabled?: unknown; uoldWriterUrlRef?: unknown } | undefined;
  if (rb?.enabled && !rb.uoldWriterUrlRef) errors.push('/postSwitchover/rollback/uoldWriterUrlRef: required when rollback is enabled (an account that may write to Uold\'s database, used only from the point of no return)');
  if ((plan.postSwitchover?.autoRollback as { enabled?: unknown } | undefined)?.enabled && !rb?.enabled) errors.push('/postSwitchover/autoRollback/enabled: needs postSwitchover.rollback.enabled');
  errors.push(...tlsErrors(plan));
  return errors;
}

/** TLS settings that contradict the rest of the plan (docs/security.md). */
function tlsErrors(plan: DeepUnknown<PlanFile>): string[] {
  const errors: string[] = [];
  const ingress = Array.isArray(plan.uold?.ingress) ? plan.uold.ingress as Array<{ controlUrl?: unknown; tls?: unknown }> : [];
  ingress.forEach((ing, i) => {
    if (ing?.tls !== undefined && typeof ing.controlUrl === 'string' && !ing.controlUrl.startsWith('https://')) {
      errors.push(`/uold/ingress/${i}/tls: TLS settings for an http:// controlUrl; use https://`);
    }
  });
  // The local provider serves Unew's database with certificates it makes for the universe: the plan cannot name others.
  const tls = plan.unew?.tls as Record<string, unknown> | undefined;
  if ((plan.unew?.provider ?? 'local') === 'local' && tls && typeof tls === 'object') {
    for (const key of ['caRef', 'certRef', 'keyRef']) {
      if (tls[key] !== undefined) errors.push(`/unew/tls/${key}: the local provider makes Unew's certificates itself (a CA of the universe's own); give only verifyIdentity`);
    }
  }
  return errors;
}

/** A plan that may have failed its schema: every key may be missing or of any type. */
type DeepUnknown<T> = { [K in keyof T]?: T[K] extends object ? DeepUnknown<T[K]> : unknown };

/** The values as numbers, or all NaN (every comparison false) when one is not a number. */
function numbers(...xs: unknown[]): number[] {
  return xs.every((x) => typeof x === 'number' && Number.isFinite(x)) ? (xs as number[]) : xs.map(() => NaN);
}

/** Resolves unew.schemaFile and unew.conversion; adds an error for each that is missing or not a file. */
function checkFiles(input: unknown, baseDir: string, errors: string[]): PlanFiles {
  const unew = (input as { unew?: Record<string, unknown> } | null)?.unew;
  const files: PlanFiles = {};
  for (const key of ['schemaFile', 'conversion'] as const) {
    const given = unew?.[key];
    if (typeof given !== 'string' || !given) continue; // the schema reports it
    const abs = path.resolve(baseDir, given);
    const stat = statOf(abs);
    if (stat?.isFile()) { files[key] = abs; continue; }
    if (stat?.isDirectory()) { errors.push(`/unew/${key}: ${abs} is a directory; name the file itself`); continue; }
    // A module may be named without its extension, as require() resolves it.
    if (key === 'conversion' && ['.ts', '.js'].some((ext) => statOf(abs + ext)?.isFile())) { files[key] = abs; continue; }
    errors.push(`/unew/${key}: file not found: ${abs}`);
  }
  return files;
}

function statOf(p: string): fs.Stats | undefined {
  try { return fs.statSync(p); } catch { return undefined; }
}
