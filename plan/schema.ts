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
import { Backfilled, Default, Defaulted, List, Ms, SecretRef, Section, Type } from './schema-kit';

/** Table-level privileges MariaDB knows; the grants check compares these. */
export const TABLE_PRIVILEGES = ['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'CREATE', 'DROP', 'REFERENCES', 'INDEX', 'ALTER', 'CREATE VIEW', 'SHOW VIEW', 'TRIGGER', 'DELETE HISTORY'] as const;
export type TablePrivilege = (typeof TABLE_PRIVILEGES)[number];

/** What the application's account holds when the plan does not say (unew.grants.privileges). */
export const DEFAULT_APP_PRIVILEGES: TablePrivilege[] = ['SELECT', 'INSERT', 'UPDATE', 'DELETE'];

const Privilege = Type.Enum([...TABLE_PRIVILEGES]);
const DatabaseName = Type.String({ pattern: '^[A-Za-z0-9_]+$' });
const Argv = (description: string) => Type.Array(Type.String(), { minItems: 1, description });
const UrlPath = (def: string, description: string) => Default(Type.String({ pattern: '^/', description }), def);

const version = (which: string) => Section({ version: Type.String({ minLength: 1, description: `The ${which} version's name, for the status, the web UI and reports.` }) }, { description: `The ${which} version.` });

const pemRef = (description: string) => Type.Optional(Type.With(SecretRef, { description }));
/** A client certificate goes with its key: the schema says so to editors too. */
const certWithKey = { certRef: ['keyRef'], keyRef: ['certRef'] };

/**
 * TLS of one database's connections: every connection Imago makes to it
 * (mysql2 and the binlog reader alike) verifies the server's certificate,
 * and fails rather than fall back to plain text.
 */
export const dbTlsSchema = Type.Object({
  caRef: pemRef("The CA certificate(s) (PEM) that signed the server's certificate; default: Node's bundled public CAs."),
  certRef: pemRef('A client certificate (PEM), for an account that requires one (REQUIRE X509); with keyRef.'),
  keyRef: pemRef("The client certificate's private key (PEM); with certRef."),
  verifyIdentity: Default(Type.Boolean({ description: "The server's certificate must name the host of the database URL (a DNS name or an IP address among its subject alternative names); false: only its signature by caRef is checked." }), true),
}, { additionalProperties: false, dependencies: certWithKey, description: "TLS for every connection to this database: its certificate is verified against caRef, never skipped. Absent: plain text (refused by a server that requires TLS; the preflight says so)." });

/** TLS of an interceptor's control API (served with --control-cert; --control-client-ca makes it require a client certificate). */
export const controlTlsSchema = Type.Object({
  caRef: pemRef("The CA certificate (PEM) that signed the interceptor's certificate; default: Node's bundled public CAs."),
  certRef: pemRef('The client certificate (PEM) the interceptor requires (--control-client-ca); with keyRef.'),
  keyRef: pemRef("The client certificate's private key (PEM); with certRef."),
  serverName: Type.Optional(Type.String({ minLength: 1, description: "The name the interceptor's certificate is checked against, when it does not name the host of controlUrl." })),
}, { additionalProperties: false, dependencies: certWithKey, description: 'How the worker reaches this control API over HTTPS (controlUrl https://): the CA to verify it, the client certificate it requires.' });

export const ingressRefSchema = Section({
  controlUrl: Type.String({ pattern: '^https?://', description: "The interceptor's control API: https:// when it is served with a certificate (required off loopback)." }),
  tokenRef: Type.With(SecretRef, { description: "The interceptor's control token ('env:NAME' or 'file:/path', resolved on the worker): it can hold and switch traffic." }),
  tls: Type.Optional(controlTlsSchema),
});

export const planTestSchema = Section({
  name: Type.String({ minLength: 1, description: 'Shown in the status, the gate and the report.' }),
  command: Argv("argv; '{unewUrl}' is replaced by Unew's base URL. Run with cwd = the plan's folder; must not write to Unew."),
  timeoutMs: Ms(120_000, 1_000, 'Killed after this long, and failed.'),
  // Optional in the type: plans in the history of workflows started before it existed have none.
  env: Backfilled(Type.Record(Type.String({ pattern: '^[A-Za-z_][A-Za-z0-9_]*$' }), Type.String(), {
    description: "The test's environment besides PATH and UNEW_URL: it gets nothing else of the worker's (no secret of the plan). Part of the plan: no secrets here.",
  }), {}),
});

export const unewAppSchema = Section({
  command: Argv("The new version's argv, started in the plan's folder with PORT and DATABASE_URL (Unew's own database only)."),
  healthPath: UrlPath('/health', 'Answers 2xx when the application is up.'),
  env: Default(Type.Record(Type.String(), Type.String(), { description: 'Extra environment of the application (no secrets: it is part of the plan).' }), {}),
  startTimeoutMs: Ms(60_000, 1_000, 'Unew must answer healthPath within this long after its start, or the upgrade fails (Uold untouched).'),
}, { description: "The new version's application, as the provider starts it." });

export const grantsSchema = Section({
  enabled: Default(Type.Boolean({ description: 'Run the grants check (a test result in the gate).' }), true),
  privileges: Default(Type.Array(Privilege, { minItems: 1, uniqueItems: true, description: "What the application's account gets on Unew's database (local provider) and must hold on every table, and no more." }), DEFAULT_APP_PRIVILEGES),
  tables: Default(Type.Record(Type.String(), Type.Array(Privilege, { uniqueItems: true }), { description: 'Per-table exceptions to privileges (table name → its privileges).' }), {}),
}, { description: 'The grants check of the testing phase: see docs/grants-check.md.' });

export const unewSchema = Section({
  provider: Default(Type.Enum(PROVIDER_NAMES, { description: "Who builds Unew: 'local' (processes and a MariaDB on this worker's host, docs/local-provider.md) or 'aws' (docs/aws-provider.md)." }), 'local'),
  database: Type.With(DatabaseName, { description: "Unew's database name (the local provider creates it; the schema file is applied to it)." }),
  schemaFile: Type.String({ minLength: 1, description: "The new schema (SQL), applied to Unew's empty database; relative to the plan's folder." }),
  conversion: Type.String({ minLength: 1, description: "Module whose default export is a ConversionModule (transfer/conversion.ts); relative to the plan's folder." }),
  app: unewAppSchema,
  tls: Type.Optional(Type.With(dbTlsSchema, { description: "TLS to Unew's database: Imago's admin connections and the application's. With the local provider, its MariaDB then runs with TLS only (require_secure_transport), with a certificate from a CA made for the universe: give only verifyIdentity here; the application's DATABASE_URL carries the CA (docs/local-provider.md)." })),
  ...providerSectionProperties(),
  // Optional in the type: plans in the history of workflows started before the grants check have none.
  grants: Backfilled(grantsSchema, {}),
}, { description: 'The new universe: its provider, database, schema, conversion and application.' });

const planProperties = {
  $schema: Type.Optional(Type.String({ description: 'For editors: the JSON Schema of this file (plan/plan.schema.json).' })),
  version: Default(Type.Literal(1, { description: 'The plan format version.' }), 1),
  name: Type.String({ pattern: '^[a-z0-9][a-z0-9-]{0,62}$', description: 'Upgrade name: part of the workflow id.' }),
  system: Type.String({ minLength: 1, description: 'The system upgraded, for the status, the web UI (ImagoSystem) and reports.' }),
  from: version('running (Uold)'),
  to: version('new (Unew)'),
  uold: Section({
    ingress: Type.Array(ingressRefSchema, { minItems: 1, description: 'Every ingress interceptor in front of Uold (all clients pass through one of them).' }),
    db: Section({
      urlRef: Type.With(SecretRef, { description: 'The replication user: REPLICATION SLAVE, REPLICATION CLIENT, SELECT.' }),
      database: Type.With(DatabaseName, { description: "Uold's database: every table in it is converted or listed in the conversion's ignoreTables." }),
      tls: Type.Optional(dbTlsSchema),
    }, { description: "Uold's database, read as the replication user only (binlog and SELECT)." }),
  }, { description: 'The running system: its interceptors and its database. Imago never writes to it.' }),
  unew: unewSchema,
  transfer: Defaulted(Section({
    chunkSize: Default(Type.Integer({ minimum: 1, maximum: 100_000, description: 'Rows read from Uold per chunk of the copy (a change while copying: imago throttle --chunk-size).' }), 2000),
    parallelTables: Default(Type.Integer({ minimum: 1, maximum: 16, description: 'Tables copied at once.' }), 2),
    maxThreadsRunning: Default(Type.Integer({ minimum: 1, description: "The copy pauses while Uold's Threads_running is above this: Uold's own load comes first." }), 25),
    maxLagMs: Ms(5_000, 1, "The copy pauses while Unew lags Uold's change stream by more than this."),
    maxUoldP99Ratio: Default(Type.Number({ minimum: 0, description: "The copy pauses while Uold's p99 latency, as its interceptors see it, is above this multiple of its p99 before the copy (and 10 ms above it); 0 turns it off." }), 2),
    maxUoldP99Ms: Default(Type.Number({ minimum: 0, description: "The copy pauses while Uold's p99 latency at its interceptors is above this many ms; 0 turns it off." }), 0),
    criticalUoldP99Ms: Default(Type.Number({ minimum: 0, description: "Above this p99 (ms) on two samples in a row the copy pauses for 30 s, whatever the load does meanwhile; 0 turns it off." }), 0),
    niceRatio: Default(Type.Number({ minimum: 0, maximum: 100, description: "After each chunk the copy rests this many times the chunk's own time (0.5: the copy works two thirds of the time at most), so Uold and Unew keep room for their clients; 0: no rest." }), 0),
    // How long one incident of a database that does not answer (Uold's or Unew's) is retried, with its cause in the status, before onUnreachable applies.
    unreachableRetryMs: Ms(240_000, 1_000, 'How long one incident of a database that does not answer is retried before onUnreachable applies.'),
    onUnreachable: Default(Type.Enum(['fail', 'wait'], { description: "After unreachableRetryMs: 'fail' the upgrade (Unew destroyed, Uold untouched), or 'wait' and keep retrying (an operator may abort)." }), 'fail'),
  }, { description: 'Throttle: the copy pauses above these. And what a database that stops answering does to the transfer.' })),
  tests: List(planTestSchema, "Your tests of Unew, run with real data after the copy and before the gate; each must exit 0. Each gets only PATH, UNEW_URL and its own env."),
  mirror: Defaulted(Section({
    percent: Default(Type.Number({ minimum: 0, maximum: 100, description: 'Share of the live safe requests also sent to Unew and compared.' }), 100),
    methods: Default(Type.Array(Type.Enum(['GET', 'HEAD', 'OPTIONS']), { description: 'Methods mirrored: safe ones only (a mirrored request must not write).' }), ['GET', 'HEAD']),
    minDurationMs: Ms(10_000, 0, 'Mirror at least this long before the verdict.'),
    maxDurationMs: Ms(120_000, 1, 'Give up waiting for enough samples (compare.minSamplesPerEndpoint) after this long: the gate then fails.'),
  }, { description: "Mirrored live traffic: Uold's replies compared with Unew's during testing." })),
  // Optional in the type: plans of workflows started before it existed have none (their testing mirrors reads only).
  sandbox: Backfilled(Section({
    enabled: Default(Type.Union([Type.Boolean(), Type.Literal('auto')], { description: "Mirror live writes into a sandbox during testing (a clone of Unew's database with a second instance of the new version; never into Unew itself): true requires it, 'auto' makes one where the provider can (local) and mirrors reads only where it cannot (aws, for now), false (the default) never. Off unless asked for: the sandbox is a clone taken at one moment, so a write whose reply depends on state that changed since (an item sold meanwhile) can differ from Uold's without any fault; name such replies in compare.ignorePaths or writes rules first. See docs/sandbox.md." }), false),
    percent: Default(Type.Number({ minimum: 0, maximum: 100, description: 'Share of the live writes also sent to the sandbox and compared.' }), 100),
    methods: Default(Type.Array(Type.Enum(['POST', 'PUT', 'PATCH', 'DELETE']), { minItems: 1, description: 'Methods mirrored into the sandbox: unsafe ones only (reads are mirrored to Unew).' }), ['POST', 'PUT', 'PATCH', 'DELETE']),
  }, { description: 'Shadow writes: live writes mirrored into a disposable sandbox during testing, their replies and what they stored compared with Uold (docs/sandbox.md).' }), {}),
  // Optional in the type: plans of workflows started before it existed have none.
  loadTest: Backfilled(Section({
    enabled: Default(Type.Boolean({ description: "Replay recorded live requests against Unew (reads) and the sandbox (writes), never Uold, at a multiple of Uold's peak rate, at the end of the compare window; its result is a test of the gate." }), false),
    multiple: Default(Type.Number({ minimum: 0.1, maximum: 100, description: "The rate sent: this many times the peak rate Uold served (the interceptor's timeline, last 10 minutes)." }), 2),
    minRatePerSec: Default(Type.Integer({ minimum: 1, maximum: 100_000, description: 'Lowest rate sent, whatever Uold\'s peak.' }), 10),
    maxRatePerSec: Default(Type.Integer({ minimum: 1, maximum: 100_000, description: 'Highest rate sent, whatever Uold\'s peak.' }), 500),
    durationMs: Ms(10_000, 1_000, 'How long the load lasts.', 3_600_000),
    concurrency: Default(Type.Integer({ minimum: 1, maximum: 10_000, description: "Requests in flight at most; beyond it a request is counted as not sent (the load generator's limit, not Unew's)." }), 64),
    maxErrorRate: Default(Type.Number({ minimum: 0, maximum: 1, description: "Highest share of an endpoint's requests that may fail (5xx or no reply) under load." }), 0.001),
    maxP99Ratio: Default(Type.Number({ minimum: 1, maximum: 1000, description: "Highest p99 under load of an endpoint / Uold's p99 on live traffic (compare's latency figures)." }), 3),
    noiseFloorMs: Default(Type.Integer({ minimum: 0, maximum: 600_000, description: 'A p99 under load within this many ms of Uold\'s passes.' }), 50),
  }, { description: "The load test: Unew (and the sandbox) under a multiple of Uold's peak load, gating on errors and latency (docs/sandbox.md)." }), {}),
  compare: Defaulted(compareRulesSchema),
  verify: Defaulted(Section({
    enabled: Default(Type.Boolean({ description: 'Verify convert(Uold) = Unew row by row during testing (the cut-over always verifies what changed since).' }), true),
    chunkSize: Default(Type.Integer({ minimum: 1, description: 'Rows compared per chunk.' }), 5000),
    // Optional in the type: plans of workflows started before it existed have none.
    niceRatio: Backfilled(Type.Number({ minimum: 0, maximum: 100, description: "After each chunk of the full verification, rest this many times the chunk's own time (0 = no rest): Uold keeps serving meanwhile." }), 1),
  }, { description: 'The full verification of the testing phase.' })),
  switchover: Defaulted(Section({
    maxLagMsToBegin: Ms(1_000, 1, 'A cut-over begins only when Unew lags Uold by less than this.'),
    holdTimeoutMs: Default(Type.Integer({ minimum: 100, maximum: MAX_HOLD_TIMEOUT_MS, description: `Longest hold of new requests at each interceptor; at most ${MAX_HOLD_TIMEOUT_MS}, the longest hold an interceptor accepts.` }), 5_000),
    drainTimeoutMs: Ms(2_000, 10, 'Inside the hold: longest wait for the requests in flight to end.'),
    flushTimeoutMs: Ms(2_000, 10, "Inside the hold: longest wait for Unew to apply Uold's last changes."),
    maxAttempts: Default(Type.Integer({ minimum: 1, maximum: 20, description: 'Cut-over attempts (each released back to Uold when it does not complete) before the upgrade fails.' }), 3),
    smokePath: UrlPath('/health', 'Checked on Unew inside the hold, before the switch.'),
  }, { description: 'Termination and switchover: the hold, bounded by holdTimeoutMs, during which clients wait for milliseconds.' })),
  approval: Defaulted(Section({
    policy: Default(Type.Enum(['auto', 'manual'], { description: "'manual': wait for 'imago approve <id>' once the gate passed; 'auto': switch as soon as it passes." }), 'manual'),
    timeoutMs: Ms(24 * 3600_000, 1, 'Longest wait for a manual approval.'),
    onTimeout: Default(Type.Enum(['abort', 'proceed'], { description: "What an approval that does not come leads to: 'abort' (Unew destroyed, Uold untouched) or 'proceed'." }), 'abort'),
  }, { description: 'Who decides the switchover once the gate passed.' })),
  postSwitchover: Defaulted(Section({
    windowMs: Ms(60_000, 0, "After the switch, Unew serves while Uold stays ready this long before finalizing ('imago finalize <id>' ends it now)."),
    finalize: Default(Type.Enum(['auto', 'manual'], { description: "'auto': finalize at the end of the window; 'manual': wait for 'imago finalize <id>'." }), 'auto'),
    keepUold: Default(Type.Boolean({ description: "Leave Uold's fleet as it is at finalize (local: always; aws: false deregisters and terminates it)." }), true),
    // Optional in the type: plans of workflows started before rollback existed have none.
    rollback: Backfilled(Section({
      enabled: Default(Type.Boolean({ description: "Keep Uold current during the window (Unew's writes replicated back through the conversion's reverse) so that 'imago rollback <id>' can switch every client back. Needs the reverse (checked by plan validate and preflight) and uoldWriterUrlRef." }), false),
      uoldWriterUrlRef: Type.Optional(Type.With(SecretRef, { description: "An account on Uold's database with SELECT, INSERT, UPDATE, DELETE, CREATE, DROP: used only by the reverse replication, only from the point of no return (before it Uold is never written to)." })),
      onRolledBack: Default(Type.Enum(['keep-unew', 'destroy-unew'], { description: "After a rollback: keep Unew (its database and application, stopped from serving) for inspection, or destroy it." }), 'keep-unew'),
    }, { description: 'Rollback after the switchover: see docs/rollback.md.' }), {}),
    autoRollback: Backfilled(Section({
      enabled: Default(Type.Boolean({ description: 'Evaluate the rules below during the window; the first that fails rolls back by itself (needs rollback.enabled).' }), false),
      evaluateEveryMs: Ms(2_000, 200, 'How often the rules are evaluated over the interceptors\' latest requests.'),
      sampleWindowMs: Ms(10_000, 1_000, 'The rules look at the requests whose reply ended in the last this-many ms.'),
      minRequests: Default(Type.Integer({ minimum: 1, description: 'A rule judges only a window with at least this many requests.' }), 20),
      maxErrorRate: Default(Type.Number({ minimum: 0, maximum: 1, description: 'Roll back when the share of 5xx replies at the interceptors exceeds this.' }), 0.05),
      maxP99Ratio: Default(Type.Number({ minimum: 1, description: "Roll back when the p99 latency at the interceptors exceeds this many times the p99 before the switch (and above minP99Ms)." }), 3),
      minP99Ms: Ms(50, 0, 'The p99 rule fires only above this absolute latency too (a 2 ms baseline tripled is still fast).'),
    }, { description: 'Automatic rollback rules during the window: see docs/rollback.md.' }), {}),
  }, { description: 'After the point of no return.' })),
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
