/**
 * What Imago needs from a Temporal namespace, and `imago server setup`, which
 * provides it: the search attributes the upgrade workflow sets (registered
 * through Temporal's operator service; a workflow that sets an unknown one
 * cannot start), and, optionally, the web UI's URL recorded in the
 * namespace's own data, so every client prints links to the right UI.
 */
import type { ConnectionLike } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import * as keys from '../workflows/search-attributes';

type IndexedValueType = temporal.api.enums.v1.IndexedValueType;
/** The two services used here (a Connection, or a Client's connection). */
export type Services = Pick<ConnectionLike, 'workflowService' | 'operatorService'>;
const INDEXED = temporal.api.enums.v1.IndexedValueType;

/** The key under which the web UI's URL is kept in the namespace's data (a string map Temporal stores for its users). */
export const UI_URL_KEY = 'imago.uiUrl';

const TYPES: Record<string, IndexedValueType> = {
  TEXT: INDEXED.INDEXED_VALUE_TYPE_TEXT, KEYWORD: INDEXED.INDEXED_VALUE_TYPE_KEYWORD, INT: INDEXED.INDEXED_VALUE_TYPE_INT,
  DOUBLE: INDEXED.INDEXED_VALUE_TYPE_DOUBLE, BOOL: INDEXED.INDEXED_VALUE_TYPE_BOOL, DATETIME: INDEXED.INDEXED_VALUE_TYPE_DATETIME,
  KEYWORD_LIST: INDEXED.INDEXED_VALUE_TYPE_KEYWORD_LIST,
};

/** Every key workflows/search-attributes.ts defines, with its indexed type: one list, so a new key is registered too. */
export function imagoSearchAttributes(): Array<{ name: string; type: IndexedValueType }> {
  return Object.values(keys).map((k) => ({ name: k.name, type: TYPES[k.type] }));
}

/** Imago's search attributes the namespace does not know (empty when it is set up). */
export async function missingSearchAttributes(connection: Services, namespace: string): Promise<string[]> {
  const known = await connection.operatorService.listSearchAttributes({ namespace });
  const have = new Set([...Object.keys(known.customAttributes ?? {}), ...Object.keys(known.systemAttributes ?? {})]);
  return imagoSearchAttributes().map((a) => a.name).filter((n) => !have.has(n));
}

/** The web UI's URL recorded on the namespace by `imago server setup --ui-url`, if any. */
export async function serverUiUrl(connection: Services, namespace: string): Promise<string | undefined> {
  const ns = await connection.workflowService.describeNamespace({ namespace });
  return ns.namespaceInfo?.data?.[UI_URL_KEY] || undefined;
}

export interface SetupResult {
  namespace: string;
  /** Search attributes registered now. */
  added: string[];
  /** Already there (setup is idempotent). */
  present: string[];
  /** The UI URL now recorded on the namespace (undefined: none recorded). */
  uiUrl?: string;
}

/** Registers the missing search attributes and records the UI's URL (when given). Safe to run again. */
export async function setupServer(connection: Services, namespace: string, opts: { uiUrl?: string } = {}): Promise<SetupResult> {
  const missing = new Set(await missingSearchAttributes(connection, namespace));
  const wanted = imagoSearchAttributes();
  if (missing.size) {
    await connection.operatorService.addSearchAttributes({
      namespace, searchAttributes: Object.fromEntries(wanted.filter((a) => missing.has(a.name)).map((a) => [a.name, a.type])),
    });
  }
  if (opts.uiUrl) {
    // Merged into the namespace's data: other keys stay as they are.
    await connection.workflowService.updateNamespace({ namespace, updateInfo: { data: { [UI_URL_KEY]: opts.uiUrl } } });
  }
  return {
    namespace, added: wanted.map((a) => a.name).filter((n) => missing.has(n)), present: wanted.map((a) => a.name).filter((n) => !missing.has(n)),
    uiUrl: opts.uiUrl ?? await serverUiUrl(connection, namespace),
  };
}
