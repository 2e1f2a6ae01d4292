/**
 * Building blocks for the plan's schema and every section composed into it
 * (the compare rules, each provider's section). A section is declared once
 * with TypeBox: the JSON Schema that validates it and the TypeScript type the
 * code reads are the same declaration, so they cannot drift apart.
 *
 * Conventions:
 *  - `Section` rejects unknown keys (a typo is an error, never ignored);
 *  - `Default(schema, value)`: the key may be left out of the file, the
 *    validator fills `value`, and the type says it is always there;
 *  - `Defaulted(section)`: an object section that may be left out entirely
 *    (filled with `{}`, then with its keys' own defaults).
 */
import Type, { type Static, type TObject, type TProperties, type TSchema } from 'typebox';

export { Type, type Static, type TSchema };

type SectionOptions = { description?: string; title?: string };

/** An object whose unknown keys are rejected. */
export function Section<P extends TProperties>(properties: P, options: SectionOptions = {}): TObject<P> {
  return Type.Object(properties, { ...options, additionalProperties: false });
}

/**
 * Optional in the file, always present once validated. At run time the key is
 * optional (not in `required`) and carries `default`; the type is the
 * validated one, where the key is never missing. The one cast hides only the
 * optional modifier, which the validator's defaults make true.
 */
export function Default<T extends TSchema>(schema: T, value: Static<T>): T {
  return Type.Optional(Type.With(schema, { default: value } as TSchema)) as unknown as T;
}

/** An object section that may be left out: it is filled with `{}`, then each of its keys with its own default. */
export function Defaulted<T extends TObject>(section: T): T {
  return Type.Optional(Type.With(section, { default: {} } as TSchema)) as unknown as T;
}

/**
 * Optional in the file and in the type, filled with `value` by the validator.
 * For keys added after plans already ran: a plan in an older workflow's
 * history lacks them, so readers must still handle their absence.
 */
export function Backfilled<T extends TSchema>(schema: T, value: Static<T> | Record<string, never>) {
  return Type.Optional(Type.With(schema, { default: value } as TSchema));
}

/** A duration or timeout in milliseconds, with its default and lower bound. */
export const Ms = (def: number, minimum = 0, maximum?: number) =>
  Default(Type.Integer({ minimum, ...(maximum === undefined ? {} : { maximum }) }), def);

/** A reference to a secret, resolved on the worker: never the secret itself. */
export const SecretRef = Type.String({ pattern: '^(env:[A-Za-z_][A-Za-z0-9_]*|file:.+)$', description: "A reference to a secret: 'env:NAME' or 'file:/path'. Never the secret itself." });

/** A string that is not empty. */
export const NonEmpty = Type.String({ minLength: 1 });

/** A list, empty when left out. */
export const List = <T extends TSchema>(item: T, description?: string) =>
  Default(Type.Array(item, description ? { description } : {}), []);

/**
 * What a provider declares about its part of the plan: the section under
 * `unew.<name>`, composed into the plan's schema by plan/providers.ts, and
 * the checks the schema cannot express.
 */
export interface ProviderPlanSection<S extends TSchema = TSchema> {
  /** The provider's name: a value of `unew.provider` and the key of its section under `unew`. */
  readonly name: string;
  /** The section's schema (a `Section`, unknown keys rejected). */
  readonly schema: S;
  /** The section must be present when this provider is chosen (it has required keys). */
  readonly requiredWhenChosen: boolean;
  /**
   * Rules the schema cannot express (across keys), on the section with its
   * defaults filled; called by the loader only when the whole plan met its
   * schema. Each error starts with its path, `at` + '/key' ('/unew/aws/...').
   */
  check?(section: Static<S>, at: string): string[];
}
