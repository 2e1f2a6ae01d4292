/**
 * The providers' sections of the plan. Each provider declares its part of
 * `unew` (a `ProviderPlanSection`, plan/schema-kit.ts) next to its code; this
 * list is the only place the plan learns about them: `unew.provider` takes
 * their names, and each section goes under `unew.<name>`.
 */
import type { TOptional, TUnsafe } from 'typebox';
import { localPlanSection } from '../providers/local/plan-section';
import { awsPlanSchema } from '../providers/aws/plan-schema';
import { Backfilled, Type, type ProviderPlanSection, type TSchema } from './schema-kit';

// The AWS section is still a hand-written JSON Schema: it is embedded as it
// is (its own validator, providers/aws/plan-schema.ts, checks the rest when
// the provider runs) until it is declared with TypeBox like the local one.
const { $id: _awsId, ...awsSchema } = awsPlanSchema;
const awsPlanSection: ProviderPlanSection<TUnsafe<Record<string, unknown>>> = {
  name: 'aws',
  schema: Type.Unsafe<Record<string, unknown>>(awsSchema as unknown as TSchema),
  requiredWhenChosen: true,
};

export const PROVIDER_SECTIONS = { local: localPlanSection, aws: awsPlanSection } as const;

export type ProviderName = keyof typeof PROVIDER_SECTIONS;
export const PROVIDER_NAMES = Object.keys(PROVIDER_SECTIONS) as ProviderName[];

type SectionProperties = { [K in ProviderName]: TOptional<(typeof PROVIDER_SECTIONS)[K]['schema']> };

/**
 * `unew.<name>` for every provider: optional in the file and in the type. A
 * section the chosen provider requires is checked by the loader; one it does
 * not is filled with `{}` and its keys' defaults.
 */
export function providerSectionProperties(): SectionProperties {
  const property = (s: ProviderPlanSection) => (s.requiredWhenChosen ? Type.Optional(s.schema) : Backfilled(s.schema, {}));
  // Object.fromEntries loses the key-to-schema pairing that the mapped type states.
  return Object.fromEntries(PROVIDER_NAMES.map((name) => [name, property(PROVIDER_SECTIONS[name])])) as SectionProperties;
}
