/**
 * `imago init`'s work: read Uold's catalog (as the replication user) and the
 * new schema's (applied to a scratch MariaDB, as the worker will apply it to
 * Unew), pair them (match.ts), and write the plan, the conversion module and,
 * when 'imago/conversion' does not resolve from the output folder, a
 * tsconfig.json that points the type check at this installation's types.
 * Nothing is written until everything was read; files that exist are left
 * alone unless `force`.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as mysql from 'mysql2/promise';
import { imagoError } from '../../lib/errors';
import { redactUrl, resolveSecret } from '../../lib/secrets';
import { DEFAULT_APP_PRIVILEGES } from '../../plan/schema';
import { ScratchUnew } from '../../activities/preflight/scratch';
import { readCatalog, type TableInfo } from './catalog';
import { conversionSource, todoNotes } from './conversion-source';
import { matchSchemas, type SchemaMatch } from './match';
import { planSource } from './plan-source';

export interface InitOptions {
  /** A secret reference to Uold's replication URL: env:NAME or file:/path (never the URL itself: it goes into the plan). */
  uoldUrlRef: string;
  database: string;
  newSchema: string;
  out: string;
  name?: string;
  system?: string;
  from?: string;
  to?: string;
  ingress?: string[];
  ingressTokenRef?: string;
  appCommand?: string[];
  healthPath?: string;
  unewDatabase?: string;
  force?: boolean;
}

export interface InitResult {
  files: string[];
  match: SchemaMatch;
  /** TODO notes by old table (empty for a table copied as it is). */
  todos: Record<string, string[]>;
  planFile: string;
}

/** Where this installation's conversion types are: what a generated tsconfig points at. */
export const CONVERSION_TYPES = path.resolve(__dirname, '..', '..', 'transfer', 'conversion.ts');

/** A plan name from free text: lower case, digits and '-', as the plan's schema wants it. */
export function planName(text: string): string {
  const s = text.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 63).replace(/-+$/, '');
  return /^[a-z0-9]/.test(s) ? s : `upgrade-${s}`.slice(0, 63);
}

export async function initProject(o: InitOptions): Promise<InitResult> {
  if (!/^(env:[A-Za-z_][A-Za-z0-9_]*|file:.+)$/.test(o.uoldUrlRef)) {
    throw imagoError('CLIENT_USAGE', `--uold-url '${redactUrl(o.uoldUrlRef)}': give a reference, env:NAME or file:/path, not the URL itself (the plan keeps what you give here)`);
  }
  const out = path.resolve(o.out);
  const files = { plan: path.join(out, 'plan.yaml'), conversion: path.join(out, 'conversion.ts'), tsconfig: path.join(out, 'tsconfig.json') };
  const existing = Object.values(files).filter((f) => fs.existsSync(f));
  if (existing.length && !o.force) throw imagoError('CLIENT_INIT_REFUSED', existing.join(', '));
  const schemaFile = path.resolve(o.newSchema);
  if (!fs.statSync(schemaFile, { throwIfNoEntry: false })?.isFile()) throw imagoError('CLIENT_USAGE', `--new-schema ${schemaFile}: not a file`);

  const oldTables = await readUold(resolveSecret(o.uoldUrlRef, '--uold-url'), o.database);
  const unewDatabase = o.unewDatabase ?? o.database;
  const newTables = await readNewSchema(schemaFile, unewDatabase);
  const match = matchSchemas(oldTables, newTables);

  const system = o.system ?? o.database;
  const from = o.from ?? 'current';
  const to = o.to ?? 'new';
  const name = o.name ?? planName(`${system}-${from}-to-${to}`);
  const unfed = match.unfed.map((t) => t.name);
  const todos = Object.fromEntries(match.tables.map((m) => [m.source.name, todoNotes(m, unfed)]));
  const todoCount = Object.values(todos).reduce((n, t) => n + t.length, 0);
  const resolvable = typesResolveFrom(out);

  const conversion = conversionSource({ name: `${system} ${from} -> ${to}`, from: `Uold's database '${o.database}' and ${schemaFile}`, match });
  const plan = planSource({
    header: [
      `Upgrade plan: ${system} ${from} → ${to}, written by 'imago init' (every key documented; see docs/plan-file.md).`,
      `Next: ${todoCount ? `the ${todoCount} TODO(s) of conversion.ts, then ` : ''}imago plan validate plan.yaml; imago preflight plan.yaml;`,
      "imago worker; imago upgrade start plan.yaml (docs/first-upgrade.md). Relative paths are relative to this file's folder.",
      'Secrets are references (env:NAME or file:/path), resolved where the worker (and imago preflight) runs.',
    ],
    schemaPath: path.join(path.dirname(CONVERSION_TYPES), '..', 'plan', 'plan.schema.json'),
    values: {
      version: 1, name, system, from: { version: from }, to: { version: to },
      uold: {
        ingress: (o.ingress?.length ? o.ingress : ['http://127.0.0.1:8081']).map((controlUrl) => ({ controlUrl, tokenRef: o.ingressTokenRef ?? 'env:IMAGO_INGRESS_TOKEN' })),
        db: { urlRef: o.uoldUrlRef, database: o.database },
      },
      unew: {
        provider: 'local', database: unewDatabase, schemaFile: relativeOrAbsolute(out, schemaFile), conversion: 'conversion.ts',
        app: { command: o.appCommand?.length ? o.appCommand : ['./start-new-version.sh'], healthPath: o.healthPath ?? '/health' },
      },
    },
    notes: {
      ...(o.ingress?.length ? {} : { '/uold/ingress': "TODO: your interceptors' control URLs (imago init --ingress URL)." }),
      ...(o.appCommand?.length ? {} : { '/unew/app/command': 'TODO: the command that starts your new version (imago init --app-command).' }),
    },
  });

  fs.mkdirSync(out, { recursive: true });
  fs.writeFileSync(files.conversion, conversion);
  fs.writeFileSync(files.plan, plan);
  const written = [files.plan, files.conversion];
  if (!resolvable) {
    fs.writeFileSync(files.tsconfig, `${JSON.stringify(tsconfig(), null, 2)}\n`);
    written.push(files.tsconfig);
  }
  return { files: written, match, todos, planFile: files.plan };
}

/** A path as the plan should name it: relative to the plan's folder when near it (a folder kept together), else absolute. */
export function relativeOrAbsolute(from: string, to: string): string {
  const rel = path.relative(from, to);
  return rel && rel.split(path.sep).filter((p) => p === '..').length <= 2 ? rel : to;
}

/** The type check of the conversion alone (`npx tsc -p <out>`), with 'imago/conversion' mapped to this installation. */
export function tsconfig(): unknown {
  return {
    compilerOptions: {
      target: 'ES2022', module: 'commonjs', moduleResolution: 'node10', strict: true, noEmit: true, skipLibCheck: true, types: [],
      paths: { 'imago/conversion': [CONVERSION_TYPES] },
    },
    files: ['conversion.ts'],
  };
}

/**
 * Whether 'imago/conversion' resolves from a folder by itself: imago installed
 * in a node_modules above it, or the folder inside this package. Looked up
 * by hand: under tsx, require.resolve ignores its `paths` option.
 */
export function typesResolveFrom(dir: string): boolean {
  for (let d = path.resolve(dir); ; d = path.dirname(d)) {
    if (fs.existsSync(path.join(d, 'node_modules', 'imago', 'package.json'))) return true;
    try { if (JSON.parse(fs.readFileSync(path.join(d, 'package.json'), 'utf8')).name === 'imago') return true; } catch { /* none here */ }
    if (path.dirname(d) === d) return false;
  }
}

async function readUold(url: string, database: string): Promise<TableInfo[]> {
  let conn: mysql.Connection;
  try { conn = await mysql.createConnection({ uri: url, connectTimeout: 5_000 }); } catch (err) {
    throw imagoError('IMAGO_PREFLIGHT_UNREACHABLE', `${redactUrl(url)}: ${(err as Error).message}`);
  }
  try {
    const tables = await readCatalog(conn, database);
    if (!tables.length) throw imagoError('TRANSFER_TABLE_MISSING', `Uold's database '${database}' at ${redactUrl(url)} has no tables this user can see (it needs SELECT on ${database}.*)`);
    return tables;
  } finally {
    await conn.end().catch(() => undefined);
  }
}

async function readNewSchema(file: string, database: string): Promise<TableInfo[]> {
  const scratch = await ScratchUnew.start(database, DEFAULT_APP_PRIVILEGES);
  try {
    await scratch.applySchema(file);
    const conn = await scratch.connect();
    try { return await readCatalog(conn, database); } finally { await conn.end().catch(() => undefined); }
  } finally {
    await scratch.destroy();
  }
}
