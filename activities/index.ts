/**
 * The activities of the upgrade workflow, built by a factory with injected
 * dependencies (the providers, a Temporal client for the transfer's progress
 * signals) so tests can pass their own. Errors carrying a non-retryable Imago
 * code become non-retryable ApplicationFailures: retrying a validation or a
 * consistency failure cannot help.
 */
import { ApplicationFailure } from '@temporalio/activity';
import type { Client } from '@temporalio/client';
import { ERRORS, isImagoError } from '../lib/errors';
import type { Provider } from '../providers/provider';
import { LocalProvider } from '../providers/local/local-provider';
import { createCutoverActivities, type CutoverHooks } from './cutover';
import { createTestingActivities } from './testing';
import { createGrantsActivities } from './grants';
import { createTransferActivities } from './transfer-runner';
import type { UpgradeActivities } from './types';
import { createUniverseActivities } from './universe';

export interface ActivityDeps {
  /** Temporal client the transfer activity uses to signal progress and read controls. */
  client: () => Client;
  providers?: Record<string, Provider>;
  /** Test code only: wraps the cut-over's steps or control clients to inject faults at step boundaries. */
  cutoverHooks?: CutoverHooks;
}

export function createActivities(deps: ActivityDeps): UpgradeActivities {
  const providers = deps.providers ?? { local: new LocalProvider() };
  const { providerOf, ...universe } = createUniverseActivities(providers);
  const acts: UpgradeActivities = {
    ...universe,
    ...createTransferActivities(deps.client),
    ...createTestingActivities(),
    ...createGrantsActivities(),
    ...createCutoverActivities(providerOf, deps.client, deps.cutoverHooks),
  };
  return Object.fromEntries(Object.entries(acts).map(([name, fn]) => [name, wrap(fn as (...a: unknown[]) => Promise<unknown>)])) as unknown as UpgradeActivities;
}

function wrap(fn: (...a: unknown[]) => Promise<unknown>) {
  return async (...args: unknown[]) => {
    try {
      return await fn(...args);
    } catch (err) {
      throw toFailure(err);
    }
  };
}

/** Keeps the registry code as the failure type, so the workflow and the UI show it. */
export function toFailure(err: unknown): unknown {
  if (err instanceof ApplicationFailure) return err;
  if (isImagoError(err)) return ApplicationFailure.create({ type: err.code, message: err.message, nonRetryable: !err.retryable, cause: err });
  const code = (err as { code?: string })?.code;
  if (code && code in ERRORS) {
    const spec = ERRORS[code as keyof typeof ERRORS];
    return ApplicationFailure.create({ type: code, message: (err as Error).message, nonRetryable: !spec.retryable });
  }
  return err;
}
