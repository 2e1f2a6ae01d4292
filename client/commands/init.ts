/** `imago init`: a documented plan and a typed conversion module, from Uold's catalog and the new schema (client/init/). */
import { EXIT_CODES } from '../../workflows/status';
import { imagoError } from '../../lib/errors';
import { initProject } from '../init/generate';
import { printJson } from '../output';
import type { CommandSpec } from './common';

/** `--app-command` as argv: a JSON array, or words split on spaces. */
export function parseArgv(text: string): string[] {
  if (text.trim().startsWith('[')) {
    let v: unknown;
    try { v = JSON.parse(text); } catch (err) { throw imagoError('CLIENT_USAGE', `--app-command: not a JSON array: ${(err as Error).message}`); }
    if (!Array.isArray(v) || !v.length || !v.every((x) => typeof x === 'string')) throw imagoError('CLIENT_USAGE', '--app-command: expected a JSON array of strings');
    return v;
  }
  return text.trim().split(/\s+/).filter(Boolean);
}

export const initCommand: CommandSpec = {
  name: 'init', summary: "Write a documented plan and a typed conversion module from Uold's catalog and the new schema.",
  options: {
    'uold-url': { type: 'string' }, database: { type: 'string' }, 'new-schema': { type: 'string' }, out: { type: 'string' },
    name: { type: 'string' }, system: { type: 'string' }, from: { type: 'string' }, to: { type: 'string' },
    ingress: { type: 'string', multiple: true }, 'ingress-token': { type: 'string' }, 'app-command': { type: 'string' },
    'health-path': { type: 'string' }, 'unew-database': { type: 'string' }, force: { type: 'boolean' },
  },
  details: `  --uold-url REF       Uold's replication user, as a reference: env:NAME or file:/path (required)
  --database NAME      Uold's database (required)
  --new-schema FILE    the new version's schema, SQL for an empty database (required)
  --out DIR            where to write plan.yaml and conversion.ts (required)
  --system S, --from V, --to V   names for the status and reports (default: the database, current, new)
  --name NAME          the plan's name, part of the workflow id (default <system>-<from>-to-<to>)
  --ingress URL        an interceptor's control URL (repeat for each; default a TODO)
  --ingress-token REF  their token (default env:IMAGO_INGRESS_TOKEN)
  --app-command CMD    how the new version starts, in the plan's folder: '["node","server.js"]' or "node server.js"
  --health-path P      answers 2xx when it is up (default /health)
  --unew-database NAME Unew's database (default: the same as Uold's)
  --force              overwrite plan.yaml, conversion.ts, tsconfig.json in --out

Reads Uold's tables as the replication user, applies the new schema to a
scratch MariaDB (as the worker will apply it to Unew) and pairs them: a table
whose rows fit the new one as they are is copied; any other gets a column
mapping with a TODO naming each column that differs (todo() calls throw, so
'imago preflight' names each one left). Types come from 'imago/conversion';
a tsconfig.json is written when that does not resolve from --out, so
'npx tsc -p DIR' type-checks the module there.`,
  async run(ctx) {
    const s = (k: string) => ctx.values[k] as string | undefined;
    const required = { 'uold-url': "Uold's replication URL as env:NAME or file:/path", database: "Uold's database", 'new-schema': "the new version's schema (SQL)", out: 'the folder to write into' };
    const missing = Object.entries(required).filter(([k]) => !s(k)?.trim());
    if (missing.length) throw imagoError('CLIENT_USAGE', `imago init needs ${missing.map(([k, what]) => `--${k} (${what})`).join(', ')}`);
    const result = await initProject({
      uoldUrlRef: s('uold-url')!, database: s('database')!, newSchema: s('new-schema')!, out: s('out')!,
      name: s('name'), system: s('system'), from: s('from'), to: s('to'),
      ingress: ctx.values.ingress as unknown as string[] | undefined, ingressTokenRef: s('ingress-token'),
      appCommand: s('app-command') !== undefined ? parseArgv(s('app-command')!) : undefined,
      healthPath: s('health-path'), unewDatabase: s('unew-database'), force: ctx.values.force === true,
    });
    const todoTotal = Object.values(result.todos).reduce((n, t) => n + t.length, 0);
    if (ctx.json) {
      printJson(ctx.io, { files: result.files, todos: result.todos, identity: result.match.tables.filter((m) => m.identity && !result.todos[m.source.name].length).map((m) => m.source.name), unfed: result.match.unfed.map((t) => t.name) });
      return EXIT_CODES.completed;
    }
    const lines = [`wrote ${result.files.join(', ')}`];
    for (const m of result.match.tables) {
      const notes = result.todos[m.source.name];
      lines.push(`  ${m.source.name} → ${m.target?.name ?? '?'}: ${notes.length ? `${notes.length} TODO(s)` : 'copied as it is'}`);
      for (const n of notes) lines.push(`      TODO ${n}`);
    }
    if (result.match.unfed.length) lines.push(`  new tables no old table feeds: ${result.match.unfed.map((t) => t.name).join(', ')}`);
    lines.push('', `next: ${todoTotal ? 'fill in the TODOs of conversion.ts, then ' : ''}imago plan validate ${result.planFile} && imago preflight ${result.planFile}`);
    ctx.io.out(`${lines.join('\n')}\n`);
    return EXIT_CODES.completed;
  },
};
