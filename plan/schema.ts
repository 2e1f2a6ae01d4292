/**
 * The upgrade plan, declared once with TypeBox: the JSON Schema the loader
 * validates with and the `UpgradePlan` type (plan/types.ts) are this one
 * declaration. plan/plan.schema.json, for editors, is generated from it
 * (`npm run plan:schema`; a unit test fails when it is stale). Unknown keys
 * are rejected everywhere; defaults fill what a user may leave out.
 *
 * Sections owned by other parts are composed, not copied: the compare rules
 * (compare/rules.ts) and each provider's `unew.<name>` (plan/providers.ts).
 */
import { compareRulesSchema } from '../compare/rules';
import { MAX_HOLD_TIMEOUT_MS } from '../interceptors/ingress/switcher';
import { PROVIDER_NAMES, providerSectionProperties } from './providers';
import { Backfilled, Default, Defaulted, List, Ms, NonEmpty, SecretRef, Section, Type } from './schema-kit';

/** Table-level privileges MariaDB knows; the grants check compares these. */
export const TABLE_PRIVILEGES = ['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'CREATE', 'DROP', 'REFERENCES', 'INDEX', 'ALTER', 'CREATE VIEW', 'SHOW VIEW', 'TRIGGER', 'DELETE HISTORY'] as const;
export type TablePrivilege = (typeof TABLE_PRIVILEGES)[number];

/** What the application's account holds when the plan does not say (unew.grants.privileges). */
export const DEFAULT_APP_PRIVILEGES: TablePrivilege[] = ['SELECT', 'INSERT', 'UPDATE', 'DELETE'];

const Privilege = Type.Enum([...TABLE_PRIVILEGES]);
const DatabaseName = Type.String({ pattern: '^[A-Za-z0-9_]+$' });
const Argv = (description: string) => Type.Array(Type.String(), { minItems: 1, description });
const UrlPath = (def: string, description: string) => Default(Type.String({ pattern: '^/', description }), def);

const version = Section({ version: NonEmpty });

export const ingressRefSchema = Section({
  controlUrl: Type.String({ pattern: '^https?://', description: "The interceptor's control API." }),
  tokenRef: SecretRef,
});

export const planTestSchema = Section({
  name: NonEmpty,
  command: Argv("argv; '{unewUrl}' is replaced by Unew's base URL. Run with cwd = the plan's folder; must not write to Unew."),
  timeoutMs: Ms(120_000, 1_000),
});

export const unewAppSchema = Section({
  command: Argv("The new version's argv, started in the plan's folder with PORT and DATABASE_URL (Unew's own database only)."),
  healthPath: UrlPath('/health', 'Answers 2xx when the application is up.'),
  env: Default(Type.Record(Type.String(), Type.String(), { description: 'Extra environment of the application (no secrets: it is part of the plan).' }), {}),
  startTimeoutMs: Ms(60_000, 1_000),
});

export const grantsSchema = Section({
  enabled: Default(Type.Boolean(), true),
  privileges: Default(Type.Array(Privilege, { minItems: 1, uniqueItems: true, description: "What the application's account gets on Unew's database (local provider) and must hold on every table, and no more." }), DEFAULT_APP_PRIVILEGES),
  tables: Default(Type.Record(Type.String(), Type.Array(Privilege, { uniqueItems: true }), { description: 'Per-table exceptions to privileges (table name → its privileges).' }), {}),
}, { description: 'The grants check of the testing phase: see docs/grants-check.md.' });

export const unewSchema = Section({
  provider: Default(Type.Enum(PROVIDER_NAMES), 'local'),
  database: DatabaseName,
  schemaFile: Type.String({ minLength: 1, description: "The new schema (SQL), applied to Unew's empty database; relative to the plan's folder." }),
  conversion: Type.String({ minLength: 1, description: "Module whose default export is a ConversionModule (transfer/conversion.ts); relative to the plan's folder." }),
  app: unewAppSchema,
  ...providerSectionProperties(),
  // Optional in the type: plans in the history of workflows started before the grants check have none.
  grants: Backfilled(grantsSchema, {}),
});

const planProperties = {
  $schema: Type.Optional(Type.String()),
  version: Default(Type.Literal(1), 1),
  name: Type.String({ pattern: '^[a-z0-9][a-z0-9-]{0,62}$', description: 'Upgrade name: part of the workflow id.' }),
  system: NonEmpty,
  from: version,
  to: version,
  uold: Section({
    ingress: Type.Array(ingressRefSchema, { minItems: 1 }),
    db: Section({
      urlRef: Type.With(SecretRef, { description: 'The replication user: REPLICATION SLAVE, REPLICATION CLIENT, SELECT.' }),
      database: DatabaseName,
    }),
  }),
  unew: unewSchema,
  transfer: Defaulted(Section({
    chunkSize: Default(Type.Integer({ minimum: 1, maximum: 100_000 }), 2000),
    parallelTables: Default(Type.Integer({ minimum: 1, maximum: 16 }), 2),
    maxThreadsRunning: Default(Type.Integer({ minimum: 1 }), 25),
    maxLagMs: Ms(5_000, 1),
    // How long one incident of a database that does not answer (Uold's or Unew's) is retried, with its cause in the status, before onUnreachable applies.
    unreachableRetryMs: Ms(240_000, 1_000),
    onUnreachable: Default(Type.Enum(['fail', 'wait'], { description: "After unreachableRetryMs: 'fail' the upgrade (Unew destroyed, Uold untouched), or 'wait' and keep retrying (an operator may abort)." }), 'fail'),
  }, { description: 'Throttle: the copy pauses above these. And what a database that stops answering does to the transfer.' })),
  tests: List(planTestSchema),
  mirror: Defaulted(Section({
    percent: Default(Type.Number({ minimum: 0, maximum: 100 }), 100),
    methods: Default(Type.Array(Type.Enum(['GET', 'HEAD', 'OPTIONS'])), ['GET', 'HEAD']),
    minDurationMs: Ms(10_000),
    maxDurationMs: Ms(120_000, 1),
  })),
  compare: Defaulted(compareRulesSchema),
  verify: Defaulted(Section({
    enabled: Default(Type.Boolean(), true),
    chunkSize: Default(Type.Integer({ minimum: 1 }), 5000),
    // Optional in the type: plans of workflows started before it existed have none.
    niceRatio: Backfilled(Type.Number({ minimum: 0, maximum: 100, description: "After each chunk of the full verification, rest this many times the chunk's own time (0 = no rest): Uold keeps serving meanwhile." }), 1),
  })),
  switchover: Defaulted(Section({
    maxLagMsToBegin: Ms(1_000, 1),
    holdTimeoutMs: Default(Type.Integer({ minimum: 100, maximum: MAX_HOLD_TIMEOUT_MS, description: `Longest hold of new requests at each interceptor; at most ${MAX_HOLD_TIMEOUT_MS}, the longest hold an interceptor accepts.` }), 5_000),
    drainTimeoutMs: Ms(2_000, 10),
    flushTimeoutMs: Ms(2_000, 10),
    maxAttempts: Default(Type.Integer({ minimum: 1, maximum: 20 }), 3),
    smokePath: UrlPath('/health', 'Checked on Unew inside the hold, before the switch.'),
  })),
  approval: Defaulted(Section({
    policy: Default(Type.Enum(['auto', 'manual']), 'manual'),
    timeoutMs: Ms(24 * 3600_000, 1),
    onTimeout: Default(Type.Enum(['abort', 'proceed']), 'abort'),
  })),
  postSwitchover: Defaulted(Section({
    windowMs: Ms(60_000),
    finalize: Default(Type.Enum(['auto', 'manual']), 'auto'),
    keepUold: Default(Type.Boolean(), true),
  })),
};

/** The plan file: what a user writes (validated by plan/load.ts). */
export const planSchema = Section(planProperties, { title: 'Imago upgrade plan' });

/**
 * The loaded plan, the workflow's input: the file's content with defaults
 * filled, paths made absolute, and the folder the file was in. `planDir` is
 * not a key of the file (the file's schema rejects it): the loader sets it.
 */
export const loadedPlanSchema = Section({
  ...planProperties,
  planDir: Type.String({ pattern: '^/', description: "The plan file's folder, absolute: tests and the application start there." }),
});

/** plan/plan.schema.json: the file's schema for editors, as a string. */
export function planJsonSchemaText(): string {
  return `${JSON.stringify({ $schema: 'http://json-schema.org/draft-07/schema#', ...JSON.parse(JSON.stringify(planSchema)) }, null, 2)}\n`;
}
