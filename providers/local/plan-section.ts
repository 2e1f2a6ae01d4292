/**
 * The local provider's part of the plan, `unew.local`, declared once: the
 * plan's schema composes it (plan/providers.ts), and the provider reads it
 * with the type derived from it. Nothing here is required: Unew's folders
 * go under ~/.imago/universes unless told otherwise.
 */
import { compileChecker } from '../../plan/checker';
import { Section, Type, type ProviderPlanSection, type Static } from '../../plan/schema-kit';
import { imagoError } from '../../lib/errors';

export const localSectionSchema = Section({
  baseDir: Type.Optional(Type.String({ description: "Folder holding one folder per upgrade (Unew's database and application); default ~/.imago/universes or IMAGO_UNIVERSES_DIR." })),
}, { description: 'Settings of the local provider (docs/local-provider.md).' });

export type LocalSection = Static<typeof localSectionSchema>;

export const localPlanSection: ProviderPlanSection<typeof localSectionSchema> = {
  name: 'local',
  schema: localSectionSchema,
  requiredWhenChosen: false,
};

const check = compileChecker(localSectionSchema, '/unew/local');

/**
 * The section from a plan's `unew` (the provider interface passes it
 * untyped): checked against its schema, defaults filled, frozen. Also
 * accepts `{ local: {...} }` alone, as `imago gc` and tests pass it.
 */
export function localSectionOf(unew: Record<string, unknown>): LocalSection {
  const { value, errors } = check(unew.local ?? {});
  if (!value) throw imagoError('IMAGO_PLAN_INVALID', errors.join('; '));
  return value;
}
