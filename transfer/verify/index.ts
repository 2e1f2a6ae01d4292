/**
 * Verification: convert(Uold) = Unew (docs/verification.md). One job per file:
 * the full pass (full.ts), the pass over rows changed since a position
 * (changed-since.ts), and the binlog scan both use to find moved rows
 * (binlog-scan.ts); what they share is in compare.ts.
 */
export { verify } from './full';
export { verifyChangedSince, WindowCheck } from './changed-since';
export type { VerifyOptions, VerifyReport, RowDiff } from './compare';
