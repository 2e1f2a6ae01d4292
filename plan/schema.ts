/**
 * The upgrade plan's JSON Schema (also written to plan/plan.schema.json for
 * editors by `npx tsx plan/schema.ts --write`). Unknown keys are rejected
 * everywhere; defaults fill what a user may leave out.
 */
import { compareRulesSchema } from '../compare/rules';
import { awsPlanSchema } from '../providers/aws/plan-schema';

const { $id: _compareId, ...compareSection } = compareRulesSchema as typeof compareRulesSchema & { $id?: string };

/** Table-level privileges MariaDB knows; the grants check compares these. */
export const TABLE_PRIVILEGES = ['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'CREATE', 'DROP', 'REFERENCES', 'INDEX', 'ALTER', 'CREATE VIEW', 'SHOW VIEW', 'TRIGGER', 'DELETE HISTORY'];

/** What the application's account holds when the plan does not say (unew.grants.privileges). */
export const DEFAULT_APP_PRIVILEGES = ['SELECT', 'INSERT', 'UPDATE', 'DELETE'];

const secretRef = { type: 'string', pattern: '^(env:[A-Za-z_][A-Za-z0-9_]*|file:.+)$', description: "A reference to a secret: 'env:NAME' or 'file:/path'. Never the secret itself." };
const ms = (def: number, min = 0) => ({ type: 'integer', minimum: min, default: def });
const obj = (properties: Record<string, unknown>, required: string[] = [], extra: Record<string, unknown> = {}) =>
  ({ type: 'object', additionalProperties: false, properties, required, ...extra });

export const planSchema = obj({
  $schema: { type: 'string' },
  version: { const: 1, default: 1 },
  name: { type: 'string', pattern: '^[a-z0-9][a-z0-9-]{0,62}$', description: 'Upgrade name: part of the workflow id.' },
  system: { type: 'string', minLength: 1 },
  from: obj({ version: { type: 'string', minLength: 1 } }, ['version']),
  to: obj({ version: { type: 'string', minLength: 1 } }, ['version']),
  uold: obj({
    ingress: { type: 'array', minItems: 1, items: obj({ controlUrl: { type: 'string', pattern: '^https?://' }, tokenRef: secretRef }, ['controlUrl', 'tokenRef']) },
    db: obj({ urlRef: secretRef, database: { type: 'string', pattern: '^[A-Za-z0-9_]+$' } }, ['urlRef', 'database']),
  }, ['ingress', 'db']),
  unew: obj({
    provider: { enum: ['local', 'aws'], default: 'local' },
    database: { type: 'string', pattern: '^[A-Za-z0-9_]+$' },
    schemaFile: { type: 'string', minLength: 1 },
    conversion: { type: 'string', minLength: 1, description: 'Module whose default export is a ConversionModule (transfer/conversion.ts).' },
    app: obj({
      command: { type: 'array', minItems: 1, items: { type: 'string' } },
      healthPath: { type: 'string', pattern: '^/', default: '/health' },
      env: { type: 'object', additionalProperties: { type: 'string' }, default: {} },
      startTimeoutMs: ms(60_000, 1_000),
    }, ['command']),
    local: obj({ baseDir: { type: 'string' } }, [], { default: {} }),
    aws: awsPlanSchema,
    grants: obj({
      enabled: { type: 'boolean', default: true },
      privileges: { type: 'array', minItems: 1, uniqueItems: true, items: { enum: TABLE_PRIVILEGES }, default: DEFAULT_APP_PRIVILEGES, description: "What the application's account gets on Unew's database (local provider) and must hold on every table, and no more." },
      tables: { type: 'object', additionalProperties: { type: 'array', uniqueItems: true, items: { enum: TABLE_PRIVILEGES } }, default: {}, description: 'Per-table exceptions to privileges (table name → its privileges).' },
    }, [], { default: {}, description: "The grants check of the testing phase: see docs/grants-check.md." }),
  }, ['database', 'schemaFile', 'conversion', 'app']),
  transfer: obj({
    chunkSize: { type: 'integer', minimum: 1, maximum: 100_000, default: 2000 },
    parallelTables: { type: 'integer', minimum: 1, maximum: 16, default: 2 },
    maxThreadsRunning: { type: 'integer', minimum: 1, default: 25 },
    maxLagMs: ms(5_000, 1),
  }, [], { default: {} }),
  tests: { type: 'array', default: [], items: obj({
    name: { type: 'string', minLength: 1 },
    command: { type: 'array', minItems: 1, items: { type: 'string' } },
    timeoutMs: ms(120_000, 1_000),
  }, ['name', 'command']) },
  mirror: obj({
    percent: { type: 'number', minimum: 0, maximum: 100, default: 100 },
    methods: { type: 'array', items: { enum: ['GET', 'HEAD', 'OPTIONS'] }, default: ['GET', 'HEAD'] },
    minDurationMs: ms(10_000),
    maxDurationMs: ms(120_000, 1),
  }, [], { default: {} }),
  compare: { ...compareSection, default: {}, description: 'Compare rules and gate thresholds: see docs/compare-rules.md.' },
  verify: obj({
    enabled: { type: 'boolean', default: true },
    chunkSize: { type: 'integer', minimum: 1, default: 5000 },
    niceRatio: { type: 'number', minimum: 0, maximum: 100, default: 1, description: 'After each chunk of the full verification, rest this many times the chunk\'s own time (0 = no rest): Uold keeps serving meanwhile.' },
  }, [], { default: {} }),
  switchover: obj({
    maxLagMsToBegin: ms(1_000, 1),
    holdTimeoutMs: ms(5_000, 100),
    drainTimeoutMs: ms(2_000, 10),
    flushTimeoutMs: ms(2_000, 10),
    maxAttempts: { type: 'integer', minimum: 1, maximum: 20, default: 3 },
    smokePath: { type: 'string', pattern: '^/', default: '/health' },
  }, [], { default: {} }),
  approval: obj({
    policy: { enum: ['auto', 'manual'], default: 'manual' },
    timeoutMs: ms(24 * 3600_000, 1),
    onTimeout: { enum: ['abort', 'proceed'], default: 'abort' },
  }, [], { default: {} }),
  postSwitchover: obj({
    windowMs: ms(60_000),
    finalize: { enum: ['auto', 'manual'], default: 'auto' },
    keepUold: { type: 'boolean', default: true },
  }, [], { default: {} }),
}, ['name', 'system', 'from', 'to', 'uold', 'unew']);

if (require.main === module && process.argv.includes('--write')) {
  const fs = require('node:fs') as typeof import('node:fs');
  const out = { $schema: 'http://json-schema.org/draft-07/schema#', title: 'Imago upgrade plan', ...planSchema };
  fs.writeFileSync(require('node:path').join(__dirname, 'plan.schema.json'), JSON.stringify(out, null, 2) + '\n');
}
