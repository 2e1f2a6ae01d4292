/** `report <id>`: the upgrade's self-contained HTML report (client/report/). */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { EXIT_CODES } from '../../workflows/status';
import { printJson } from '../output';
import { renderReport } from '../report/html';
import { withClient, type CommandSpec } from './common';

export const reportCommand: CommandSpec = {
  name: 'report', summary: 'Write the HTML report of an upgrade (phases, client traffic, copy, compare, tests).',
  positionals: ['id'], connects: true, options: { out: { type: 'string' } },
  details: `  --out FILE   where to write it (default ./<id>-report.html)
  --json       print {"file": ...}

The report is built from the workflow's status query, which works for a
finished upgrade too while a worker is running. It needs no network to view.`,
  run: (ctx) => withClient(ctx, async (c) => {
    const id = await c.resolve(ctx.args.id);
    const status = await c.status(id);
    const out = path.resolve((ctx.values.out as string | undefined) ?? `${status.upgradeId || id}-report.html`);
    fs.mkdirSync(path.dirname(out), { recursive: true });
    fs.writeFileSync(out, renderReport(status, { url: c.url(id) }));
    if (ctx.json) printJson(ctx.io, { file: out });
    else ctx.io.out(`report written to ${out}\n`);
    return EXIT_CODES.completed;
  }),
};
