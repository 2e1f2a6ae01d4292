import * as fs from 'node:fs';
import * as path from 'node:path';
import Ajv, { type ErrorObject } from 'ajv';
import * as YAML from 'yaml';
import { planSchema } from './schema';
import type { UpgradePlan } from './types';
import { imagoError } from '../lib/errors';

const ajv = new Ajv({ allErrors: true, useDefaults: true, strict: false });
const validateSchema = ajv.compile(planSchema);

/** Extra validators for sections owned by other parts (compare rules, unew.aws), registered by them. */
type SectionValidator = (plan: UpgradePlan) => string[];
const sectionValidators: SectionValidator[] = [];
export function registerPlanValidator(fn: SectionValidator): void { sectionValidators.push(fn); }

export function formatAjvErrors(errors: ErrorObject[] | null | undefined, root = ''): string[] {
  return (errors ?? []).map((e) => {
    const where = `${root}${e.instancePath || '/'}`;
    if (e.keyword === 'additionalProperties') return `${where}: unknown key '${(e.params as any).additionalProperty}'`;
    if (e.keyword === 'required') return `${where}: missing required key '${(e.params as any).missingProperty}'`;
    if (e.keyword === 'enum') return `${where}: must be one of ${(e.params as any).allowedValues.join(', ')}`;
    return `${where}: ${e.message}`;
  });
}

/**
 * Validates a parsed plan: every error with its path, all at once. Returns a
 * frozen plan with defaults filled and file paths made absolute (relative to
 * `baseDir`, the plan file's folder), ready to be the workflow's input.
 */
export function validatePlan(input: unknown, baseDir: string, source = 'plan'): UpgradePlan {
  const plan = structuredClone(input) as UpgradePlan;
  const errors: string[] = [];
  if (!validateSchema(plan)) errors.push(...formatAjvErrors(validateSchema.errors));
  if (errors.length === 0) {
    for (const key of ['schemaFile', 'conversion'] as const) {
      const abs = path.resolve(baseDir, plan.unew[key]);
      if (!fs.existsSync(abs) && !fs.existsSync(`${abs}.ts`)) errors.push(`/unew/${key}: file not found: ${abs}`);
      plan.unew[key] = abs;
    }
    if (plan.unew.provider === 'aws' && !plan.unew.aws) errors.push("/unew/aws: required when provider is 'aws'");
    if (plan.mirror.minDurationMs > plan.mirror.maxDurationMs) errors.push('/mirror/minDurationMs: must not exceed maxDurationMs');
    if (plan.switchover.drainTimeoutMs + plan.switchover.flushTimeoutMs >= plan.switchover.holdTimeoutMs) {
      errors.push('/switchover/holdTimeoutMs: must exceed drainTimeoutMs + flushTimeoutMs, or every hold would time out');
    }
    for (const fn of sectionValidators) errors.push(...fn(plan));
  }
  if (errors.length) throw imagoError('IMAGO_PLAN_INVALID', `${source}:\n  ${errors.join('\n  ')}`);
  (plan as any).planDir = baseDir;
  return deepFreeze(plan);
}

export function loadPlanFile(file: string): UpgradePlan {
  let text: string;
  try { text = fs.readFileSync(file, 'utf8'); } catch (err) {
    throw imagoError('IMAGO_PLAN_UNREADABLE', `${file}: ${(err as Error).message}`);
  }
  let parsed: unknown;
  try { parsed = file.endsWith('.json') ? JSON.parse(text) : YAML.parse(text); } catch (err) {
    throw imagoError('IMAGO_PLAN_UNREADABLE', `${file}: ${(err as Error).message}`);
  }
  return validatePlan(parsed, path.dirname(path.resolve(file)), file);
}

function deepFreeze<T>(o: T): T {
  if (o && typeof o === 'object') { Object.values(o).forEach(deepFreeze); Object.freeze(o); }
  return o;
}
