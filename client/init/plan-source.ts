/**
 * Writes the plan file `imago init` generates: every key of the plan's schema
 * (plan/schema.ts) in its order, each under a comment with its description,
 * with the values init knows and every other key at its default — so the
 * file documents itself and stays in step with the schema. A key with
 * neither a value nor a default (an optional setting) is written commented
 * out; lists left empty show their items' keys in a commented example.
 * Throws when a key of the schema has no description: a unit test turns that
 * into a failure, so no key is ever left undocumented.
 */
import * as YAML from 'yaml';
import { planSchema } from '../../plan/schema';
import { imagoError } from '../../lib/errors';

/** A JSON Schema node as TypeBox emits it (only what the writer reads). */
interface Node {
  type?: string;
  description?: string;
  default?: unknown;
  properties?: Record<string, Node>;
  required?: string[];
  items?: Node;
  examples?: unknown[];
}

export interface PlanSourceInput {
  /** Values init knows (same shape as the plan file); the rest are the schema's defaults. */
  values: Record<string, unknown>;
  /** Comments appended after a key's description, by JSON path (e.g. '/unew/app/command': 'TODO …'). */
  notes?: Record<string, string>;
  /** Written at the top, as comment lines. */
  header: string[];
  /** Where plan.schema.json is, for editors (relative to the plan file or absolute). */
  schemaPath?: string;
}

/** Commented-out examples for optional keys and list items without a default (by JSON path, '*' for an item). */
const EXAMPLES: Record<string, unknown> = {
  '/unew/local/baseDir': '/var/lib/imago/universes',
  '/tests/*/name': 'smoke',
  '/tests/*/command': ['./smoke-test.sh', '{unewUrl}'],
  '/compare/ignoreValues/*/pattern': '^[0-9a-f-]{36}$',
  '/compare/ignoreValues/*/paths': ['$..requestId'],
};

/** Keys not written: the editor hint goes on the first line; a provider's own section only when it is chosen. */
const SKIPPED = new Set(['/$schema', '/unew/aws']);

const flow = (v: unknown) => YAML.stringify(v, { collectionStyle: 'flow', lineWidth: 0 }).trim();

function wrap(text: string, width = 96): string[] {
  const out: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/)) {
    if (line && line.length + word.length + 1 > width) { out.push(line); line = word; } else line = line ? `${line} ${word}` : word;
  }
  if (line) out.push(line);
  return out;
}

export function planSource(input: PlanSourceInput): string {
  const lines = [
    ...(input.schemaPath ? [`# yaml-language-server: $schema=${input.schemaPath}`] : []),
    ...input.header.map((h) => (h ? `# ${h}` : '#')),
  ];
  emitObject(planSchema as unknown as Node, input.values, '', '', lines, input.notes ?? {});
  return `${lines.join('\n')}\n`;
}

function emitObject(schema: Node, value: unknown, indent: string, at: string, out: string[], notes: Record<string, string>): void {
  const given = (value ?? {}) as Record<string, unknown>;
  for (const [name, prop] of Object.entries(schema.properties ?? {})) {
    const path = `${at}/${name}`;
    if (SKIPPED.has(path)) continue;
    if (!prop.description) throw imagoError('IMAGO_INTERNAL', `plan schema: ${path} has no description; document it in plan/schema.ts`);
    out.push(...wrap(prop.description).map((l) => `${indent}# ${l}`));
    if (notes[path]) out.push(...wrap(notes[path]).map((l) => `${indent}# ${l}`));
    const v = name in given ? given[name] : prop.default;
    if (prop.type === 'object' && prop.properties) {
      const inner: string[] = [];
      emitObject(prop, v, `${indent}  `, path, inner, notes);
      // An optional section nobody gave (TLS settings, say) is shown commented out:
      // present, even empty, it would ask for what it configures.
      if (v === undefined && !(schema.required ?? []).includes(name)) {
        out.push(`${indent}# ${name}:`, ...inner.map((l) => (l.trimStart().startsWith('#') ? l : l.replace(/^(\s*)/, '$1# '))));
        continue;
      }
      // A section whose keys are all commented out is an empty object, not null.
      out.push(inner.some((l) => !l.trimStart().startsWith('#')) ? `${indent}${name}:` : `${indent}${name}: {}`, ...inner);
    } else if (prop.type === 'array' && prop.items?.properties) {
      emitList(name, prop.items, (v ?? []) as unknown[], indent, path, out);
    } else if (v === undefined) {
      out.push(`${indent}# ${name}: ${flow(EXAMPLES[path] ?? '')}`);
    } else {
      out.push(`${indent}${name}: ${flow(v)}`);
    }
  }
}

/** A list of objects: its items' keys documented once above it; an empty one shows a commented example item. */
function emitList(name: string, item: Node, items: unknown[], indent: string, at: string, out: string[]): void {
  const keys = Object.entries(item.properties ?? {});
  for (const [k, p] of keys) {
    if (!p.description) throw imagoError('IMAGO_INTERNAL', `plan schema: ${at}/*/${k} has no description; document it in plan/schema.ts`);
    out.push(...wrap(`${k}: ${p.description}`).map((l, i) => `${indent}#${i ? '     ' : ' - '}${l}`));
  }
  if (!items.length) {
    out.push(`${indent}${name}: []`);
    keys.forEach(([k, p], i) => {
      const v = EXAMPLES[`${at}/*/${k}`] ?? p.default;
      if (v !== undefined) out.push(`${indent}#${i ? '   ' : ' - '}${k}: ${flow(v)}`);
    });
    return;
  }
  out.push(`${indent}${name}:`);
  for (const it of items) {
    const entries = Object.entries(it as Record<string, unknown>);
    entries.forEach(([k, v], i) => out.push(`${indent}  ${i ? '  ' : '- '}${k}: ${flow(v)}`));
  }
}
