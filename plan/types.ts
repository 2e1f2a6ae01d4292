/**
 * The upgrade plan's types, derived from its schema (plan/schema.ts): the
 * type and the validator are one declaration. Types only: the workflow
 * imports these.
 */
import type { Static } from 'typebox';
import type { ingressRefSchema, loadedPlanSchema, planSchema, planTestSchema } from './schema';

/** A secret is never in the plan: only a reference to it ('env:NAME' | 'file:/path'), resolved inside activities on the worker. */
export type SecretRef = string;

export type IngressRef = Static<typeof ingressRefSchema>;

export type PlanTest = Static<typeof planTestSchema>;

/** A plan file's content once validated: defaults filled. */
export type PlanFile = Static<typeof planSchema>;

/** The loaded plan, the workflow's input: the file's content plus `planDir`, the file's folder (plan/load.ts). */
export type UpgradePlan = Static<typeof loadedPlanSchema>;

/** The plan's `unew` section: what providers are given. */
export type UnewPlan = UpgradePlan['unew'];
