/**
 * JSON paths as the compare engine names fields: `$`, then `.key` for
 * identifier-like keys, `['odd key']` otherwise, and `[*]` for every array
 * index (indices are generalised so one field name covers a whole list).
 * Rule paths use the same syntax plus `*` (any one segment) and `..` (any
 * depth), so a field name copied from a report is a valid ignore rule.
 */

const IDENT = /^[A-Za-z_$][\w$]*$/;

export function childPath(parent: string, key: string): string {
  return IDENT.test(key) ? `${parent}.${key}` : `${parent}['${key.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}']`;
}

export function itemPath(parent: string): string {
  return `${parent}[*]`;
}

const ANY_SEGMENT = String.raw`(?:\.[A-Za-z_$][\w$]*|\['(?:[^'\\]|\\.)*'\]|\[\*\])`;

function escapeRegex(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/**
 * Compiles a rule path into a matcher over field names. Throws a plain Error
 * with the offending position; the rules validator turns it into
 * COMPARE_RULES_INVALID with the rule's path.
 */
export function compilePath(rule: string): RegExp {
  // eslint-disable-next-line no-restricted-syntax -- collected by compare/rules.ts into one COMPARE_RULES_INVALID with the rule's path
  if (!rule.startsWith('$')) throw new Error(`path must start with '$'`);
  let i = 1;
  let src = '^\\$';
  while (i < rule.length) {
    let deep = false;
    if (rule.startsWith('..', i)) { deep = true; i += 2; }
    else if (rule[i] === '.') i += 1;
    // eslint-disable-next-line no-restricted-syntax -- collected by compare/rules.ts into one COMPARE_RULES_INVALID with the rule's path
    else if (rule[i] !== '[') throw new Error(`unexpected '${rule[i]}' at ${i}`);
    let seg: string;
    if (rule[i] === '[') {
      const close = rule.indexOf(']', i);
      // eslint-disable-next-line no-restricted-syntax -- collected by compare/rules.ts into one COMPARE_RULES_INVALID with the rule's path
      if (close < 0) throw new Error(`unclosed '[' at ${i}`);
      const inner = rule.slice(i + 1, close);
      i = close + 1;
      if (inner === '*' || /^\d+$/.test(inner)) seg = String.raw`\[\*\]`;
      else if (/^'.*'$|^".*"$/.test(inner)) seg = escapeRegex(childPath('', inner.slice(1, -1)));
      // eslint-disable-next-line no-restricted-syntax -- collected by compare/rules.ts into one COMPARE_RULES_INVALID with the rule's path
      else throw new Error(`bad bracket segment '[${inner}]'`);
    } else {
      const m = /^[^.[]+/.exec(rule.slice(i));
      // eslint-disable-next-line no-restricted-syntax -- collected by compare/rules.ts into one COMPARE_RULES_INVALID with the rule's path
      if (!m) throw new Error(`empty segment at ${i}`);
      i += m[0].length;
      seg = m[0] === '*' ? ANY_SEGMENT : escapeRegex(childPath('', m[0]));
    }
    src += (deep ? `${ANY_SEGMENT}*` : '') + seg;
  }
  return new RegExp(`${src}$`);
}

/** One matcher for a list of rule paths; undefined when the list is empty. */
export function compilePaths(rules: readonly string[]): RegExp | undefined {
  if (!rules.length) return undefined;
  return new RegExp(rules.map((r) => compilePath(r).source).join('|'));
}
