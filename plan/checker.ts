/**
 * The one way a schema from plan/schema-kit.ts is checked: ajv, every error
 * at once with its path, defaults filled on a copy (the caller's object is
 * never touched), the result frozen. The plan, the compare rules and each
 * provider's section use it, so their errors read the same.
 */
import Ajv, { type ErrorObject } from 'ajv';
import type { Static, TSchema } from './schema-kit';

export interface CheckResult<T> {
  /** The input with defaults filled, frozen; absent when there are errors. */
  value?: T;
  /** One line per error: `<path>: <what is wrong>`. */
  errors: string[];
  /**
   * The copy with defaults filled, valid or not: rules beyond the schema may
   * still read the keys that have the right types, so one run lists every error.
   */
  filled: unknown;
}

export type Checker<T> = (input: unknown) => CheckResult<T>;

/** A plain JSON copy of a TypeBox schema: what ajv compiles and what editors read. */
export function toJsonSchema(schema: TSchema): Record<string, unknown> {
  return JSON.parse(JSON.stringify(schema)) as Record<string, unknown>;
}

/**
 * Compiles `schema` once. `root` prefixes every error's path: '' for the
 * plan ('/unew/app'), 'compare' for the compare rules given alone.
 */
export function compileChecker<S extends TSchema>(schema: S, root = ''): Checker<Static<S>> {
  // One ajv per schema: sections embedded in several schemas keep their own ids apart.
  const ajv = new Ajv({ allErrors: true, useDefaults: true, strict: true, verbose: true });
  const validate = ajv.compile(toJsonSchema(schema));
  return (input) => {
    const copy = structuredClone(input) as unknown;
    if (!validate(copy)) return { errors: formatAjvErrors(validate.errors, root), filled: copy };
    return { value: deepFreeze(copy as Static<S>), errors: [], filled: copy };
  };
}

const BOUNDS = new Set(['maximum', 'minimum', 'exclusiveMaximum', 'exclusiveMinimum']);

/** ajv's errors as `<path>: <message>` lines, in words a plan's author reads. */
export function formatAjvErrors(errors: ErrorObject[] | null | undefined, root = ''): string[] {
  const lines = (errors ?? []).map((e) => {
    const where = `${root}${e.instancePath}` || '/';
    const p = e.params as Record<string, unknown>;
    if (e.keyword === 'additionalProperties') return `${where}: unknown key '${String(p.additionalProperty)}'`;
    if (e.keyword === 'required') return `${where}: missing required key '${String(p.missingProperty)}'`;
    if (e.keyword === 'enum') return `${where}: must be one of ${(p.allowedValues as unknown[]).join(', ')}`;
    if (e.keyword === 'const') return `${where}: must be ${JSON.stringify(p.allowedValue)}`;
    // A bound alone does not say why it is there; the key's description does.
    const why = BOUNDS.has(e.keyword) ? (e.parentSchema as { description?: unknown } | undefined)?.description : undefined;
    return `${where}: ${e.message ?? e.keyword}${typeof why === 'string' ? ` (${why})` : ''}`;
  });
  return [...new Set(lines)];
}

export function deepFreeze<T>(o: T): T {
  if (o && typeof o === 'object' && !Object.isFrozen(o)) {
    for (const v of Object.values(o)) deepFreeze(v);
    Object.freeze(o);
  }
  return o;
}
