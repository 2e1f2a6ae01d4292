/**
 * The compare engine's public API. The ingress interceptor creates one with
 * `createCompareEngine({ ...plan.compare, uoldUrl, unewUrl })` and hands it
 * every mirrored pair; the switchover gate reads `verdict()`.
 */
export { createCompareEngine, type CompareConfig, type CompareEngine } from './comparer';
export { compareRulesSchema, validateCompareRules, type CompareRules, type CompareRulesInput, type ValuePatternRule } from './rules';
export { compareReportSchema, compareVerdictSchema, type CompareReport, type CompareVerdict, type Difference, type DiffKind, type EndpointReport, type Example, type FieldReport, type VerdictRule } from './report-schema';
export { positionReached, type PositionHook } from './lag-checker';
export type { MirroredPair, CapturedReply, CapturedRequest, Comparer } from './types';
