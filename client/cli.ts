/**
 * `imago`: the command-line dispatch. Finds the command, parses its options
 * once (node:util parseArgs, strict: unknown options are errors), runs it and
 * turns its result or error into an exit code (EXIT_CODES; every error is 1).
 * runCli() takes an Io so tests run commands in-process.
 */
import { parseArgs } from 'node:util';
import { ServiceError } from '@temporalio/client';
import { imagoError, isImagoError } from '../lib/errors';
import { EXIT_CODES } from '../workflows/status';
import { CONNECTION_HELP, CONNECTION_OPTIONS, type CommandSpec, type Values } from './commands/common';
import { controlCommands } from './commands/control';
import { planValidateCommand, startCommand, watchCommand } from './commands/follow';
import { listCommand, statusCommand } from './commands/inspect';
import { ingressCommand, workerCommand } from './commands/processes';
import { reportCommand } from './commands/report';
import { serverSetupCommand } from './commands/server';
import { gcCommand } from './commands/gc';
import { preflightCommand } from './commands/preflight';
import { initCommand } from './commands/init';
import { palette, processIo, type Io } from './output';

export const COMMANDS: CommandSpec[] = [
  startCommand, watchCommand, statusCommand, listCommand, ...controlCommands,
  reportCommand, initCommand, planValidateCommand, preflightCommand, serverSetupCommand, workerCommand, ingressCommand, gcCommand,
];
const GROUPS = new Set(COMMANDS.filter((c) => c.name.includes(' ')).map((c) => c.name.split(' ')[0]));

function usageLine(c: CommandSpec): string {
  return `imago ${c.name}${(c.positionals ?? []).map((p) => (p.endsWith('?') ? ` [${p.slice(0, -1)}]` : ` <${p}>`)).join('')}`;
}

export function mainHelp(): string {
  const w = Math.max(...COMMANDS.map((c) => usageLine(c).length));
  return `imago: dependable online upgrades, driven by Temporal.

Usage:
${COMMANDS.map((c) => `  ${usageLine(c).padEnd(w)}  ${c.summary}`).join('\n')}

Every command takes --help; most take --json. Colour only on a terminal, never with NO_COLOR.
Exit codes: 0 completed/ok, 1 usage or error, 2 aborted, 3 failed, 4 rolled back, 5 timed out.
Upgrade ids are workflow ids (imago-<plan name> unless started with another); a bare plan name is accepted too.
A new namespace needs 'imago server setup' once (Imago's search attributes).
`;
}

export function commandHelp(c: CommandSpec): string {
  const parts = [`${usageLine(c)}${c.passThrough ? ' [args...]' : ' [options]'}`, '', c.summary];
  if (c.details) parts.push('', c.details);
  if (!c.passThrough) parts.push('', '  --json   machine-readable output\n  --help   this help');
  if (c.connects) parts.push('', CONNECTION_HELP);
  return `${parts.join('\n')}\n`;
}

function find(argv: string[]): { spec?: CommandSpec; rest: string[]; group?: string } {
  const [first, second] = argv;
  if (first && GROUPS.has(first)) {
    const spec = COMMANDS.find((c) => c.name === `${first} ${second}`);
    return { spec, rest: argv.slice(2), group: spec ? undefined : first };
  }
  return { spec: COMMANDS.find((c) => c.name === first), rest: argv.slice(1) };
}

function groupHelp(group: string): string {
  return `${COMMANDS.filter((c) => c.name.startsWith(`${group} `)).map((c) => `  ${usageLine(c)}  ${c.summary}`).join('\n')}\n`;
}

export async function runCli(argv: string[], io: Io): Promise<number> {
  let json = argv.includes('--json');
  try {
    if (argv.length === 0 || argv[0] === '--help' || argv[0] === '-h' || argv[0] === 'help') {
      const target = argv[0] === 'help' && argv.length > 1 ? find(argv.slice(1)).spec : undefined;
      io.out(target ? commandHelp(target) : mainHelp());
      return argv.length === 0 ? EXIT_CODES.usage : EXIT_CODES.completed;
    }
    const { spec, rest, group } = find(argv);
    if (!spec) {
      if (group) {
        const wantsHelp = rest.length === 0 || rest.includes('--help') || rest.includes('-h');
        (wantsHelp ? io.out : io.err)(`imago ${group} <command>:\n${groupHelp(group)}`);
        if (wantsHelp && rest.length > 0) return EXIT_CODES.completed;
        return EXIT_CODES.usage;
      }
      throw imagoError('CLIENT_USAGE', `unknown command '${argv[0]}'; run 'imago --help' for the list`);
    }
    if (rest.includes('--help') || rest.includes('-h')) { io.out(commandHelp(spec)); return EXIT_CODES.completed; }
    if (spec.passThrough) return await spec.run({ io, values: {}, args: {}, rest, json: false });

    let parsed;
    try {
      parsed = parseArgs({
        args: rest, allowPositionals: true, strict: true,
        options: { ...(spec.connects ? CONNECTION_OPTIONS : {}), ...spec.options, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
      });
    } catch (err) {
      throw imagoError('CLIENT_USAGE', `imago ${spec.name}: ${(err as Error).message}`);
    }
    const names = spec.positionals ?? [];
    const required = names.filter((n) => !n.endsWith('?')).length;
    if (parsed.positionals.length < required || parsed.positionals.length > names.length) {
      throw imagoError('CLIENT_USAGE', `expected: ${usageLine(spec)}; got ${parsed.positionals.length} argument(s)`);
    }
    const args = Object.fromEntries(parsed.positionals.map((v, i) => [names[i].replace(/\?$/, ''), v]));
    const values = parsed.values as Values;
    json = values.json === true;
    return await spec.run({ io, values, args, rest, json });
  } catch (err) {
    return reportError(io, err, json);
  }
}

/**
 * Every error ends as one message and exit 1: a registry error as it is; a
 * refusal by the server as CLIENT_SERVER_REFUSED with its reason; anything
 * else as its message. No stack trace unless IMAGO_DEBUG is set (for a bug report).
 */
function reportError(io: Io, err: unknown, json: boolean): number {
  const e = asReported(err);
  if (json) {
    io.out(`${JSON.stringify({ error: isImagoError(e) ? { code: e.code, detail: e.detail, hint: e.hint, message: e.message } : { code: 'UNEXPECTED', message: e.message } })}\n`);
  } else {
    const text = isImagoError(e) ? e.message : `unexpected error: ${e.message}`;
    const stack = io.env.IMAGO_DEBUG && (err as Error)?.stack ? `\n${(err as Error).stack}` : '';
    io.err(`${palette({ isTTY: io.isTTY, env: io.env }).red('imago:')} ${text}${stack}\n`);
  }
  return EXIT_CODES.usage;
}

function asReported(err: unknown): Error {
  if (isImagoError(err)) return err;
  if (err instanceof ServiceError) {
    const cause = err.cause as (Error & { code?: number; details?: string }) | undefined;
    const reason = cause?.details || cause?.message || '';
    return imagoError('CLIENT_SERVER_REFUSED', `${err.message}${reason ? `: ${reason}` : ''}`, err);
  }
  // eslint-disable-next-line no-restricted-syntax -- wraps a thrown non-Error value so it can be reported; not thrown
  return err instanceof Error ? err : new Error(String(err));
}

export async function main(argv = process.argv.slice(2)): Promise<void> {
  const stop = new AbortController();
  const onSignal = () => stop.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const code = await runCli(argv, processIo(stop.signal));
  process.off('SIGINT', onSignal);
  process.off('SIGTERM', onSignal);
  process.exitCode = code;
  // Everything we opened is closed by now; a library handle left open must not keep the CLI alive.
  setTimeout(() => process.exit(code), 500).unref();
}

if (require.main === module) void main();
