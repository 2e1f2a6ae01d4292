import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';

/** Keys registered on the dev server by lib/temporal-server.ts; the web UI lists upgrades by them. */
export const ImagoPhase = defineSearchAttributeKey('ImagoPhase', SearchAttributeType.KEYWORD);
export const ImagoSystem = defineSearchAttributeKey('ImagoSystem', SearchAttributeType.KEYWORD);
export const ImagoFromVersion = defineSearchAttributeKey('ImagoFromVersion', SearchAttributeType.KEYWORD);
export const ImagoToVersion = defineSearchAttributeKey('ImagoToVersion', SearchAttributeType.KEYWORD);
export const ImagoOutcome = defineSearchAttributeKey('ImagoOutcome', SearchAttributeType.KEYWORD);
