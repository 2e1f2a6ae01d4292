/** `server setup`: prepare a Temporal namespace for Imago (search attributes, the web UI's URL). */
import { EXIT_CODES } from '../../workflows/status';
import { connect } from '../connection';
import { printJson } from '../output';
import { setupServer } from '../server-setup';
import { settingsOf, type CommandSpec } from './common';

export const serverSetupCommand: CommandSpec = {
  name: 'server setup', summary: "Register Imago's search attributes on the namespace (once); record the web UI's URL.", connects: true,
  details: `  --ui-url URL   also record the web UI's URL on the namespace: every imago client
                 that has no --ui-url / IMAGO_UI_URL / config of its own then links there
  --json         print {namespace, added, present, uiUrl}

Registers ImagoPhase, ImagoSystem, ImagoFromVersion, ImagoToVersion and
ImagoOutcome (Keyword) through Temporal's operator service; those already
there are left alone, so it is safe to run again. Needs a server that allows
the operator service (a dev server does; on a managed service, an admin role).`,
  async run(ctx) {
    const settings = settingsOf(ctx);
    // Only an explicit URL is recorded: a derived one would overwrite the server's record with a guess.
    const uiUrl = settings.sources.uiUrl === 'derived' ? undefined : settings.uiUrl;
    const { connection } = await connect(settings);
    try {
      const result = await setupServer(connection, settings.namespace, { uiUrl });
      if (ctx.json) { printJson(ctx.io, result); return EXIT_CODES.completed; }
      const lines = [
        `namespace '${result.namespace}' at ${settings.address}:`,
        result.added.length ? `  registered ${result.added.join(', ')}` : '',
        result.present.length ? `  already there: ${result.present.join(', ')}` : '',
        result.uiUrl ? `  web UI: ${result.uiUrl}${uiUrl ? ' (recorded)' : ''}` : '  web UI: none recorded (give --ui-url to record it)',
      ].filter(Boolean);
      ctx.io.out(`${lines.join('\n')}\n`);
      return EXIT_CODES.completed;
    } finally {
      await connection.close();
    }
  },
};
