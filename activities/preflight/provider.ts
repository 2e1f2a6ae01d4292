/**
 * The preflight's checks of the provider that will build Unew: it is one
 * this process runs, and what it needs before it creates anything. For the
 * local provider: mariadbd is installed, the universes' folder is writable
 * with room for a database, and the new version's command can be found.
 * Every provider's own `validateWorker` (its settings; AWS: a region and
 * credentials), and, when it has one, its read-only `preflight` (AWS: it
 * resolves its secrets and describes every resource the plan names).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { mariadbBinary } from '../../lib/mariadb';
import type { Check } from '../../lib/uold-requirements';
import type { UpgradePlan } from '../../plan/types';
import type { Provider } from '../../providers/provider';
import { defaultUniversesDir } from '../../providers/local/local-provider';
import { checkFromError, type ReportBuilder } from './report';

/** Room for a fresh MariaDB datadir and the first tables; the copy needs as much again as Uold's data. */
export const MIN_FREE_BYTES = 256 * 1024 * 1024;

/** A provider that also describes, read-only, the resources the plan names (AWS: image, subnets, groups, listener). */
type Describing = { preflight?(req: { upgradeId: string; unew: Record<string, unknown> }): Promise<unknown> };

export async function checkProvider(r: ReportBuilder, plan: UpgradePlan, providers: Record<string, Provider>): Promise<void> {
  const name = plan.unew.provider;
  const provider = providers[name];
  if (!provider) {
    r.add('provider', { name, status: 'fail', code: 'IMAGO_PLAN_INVALID', detail: `/unew/provider: '${name}' is not available here (available: ${Object.keys(providers).join(', ')})` });
    return;
  }
  if (name === 'local') r.add('provider', ...localChecks(plan));
  const unew = { ...plan.unew } as Record<string, unknown>;
  try {
    await provider.validateWorker(unew);
    r.ok('provider', `${name}: runs here`, 'its settings, and what it needs on this host (AWS: a region and credentials), are there');
  } catch (err) {
    r.add('provider', checkFromError(`${name}: runs here`, err));
    return;
  }
  const describing = provider as Provider & Describing;
  if (typeof describing.preflight !== 'function') return;
  try {
    await describing.preflight({ upgradeId: `preflight-${plan.name}`, unew });
    r.ok('provider', `${name}: resources`, 'every resource the plan names exists and fits');
  } catch (err) {
    r.add('provider', checkFromError(`${name}: resources`, err));
  }
}

function localChecks(plan: UpgradePlan): Check[] {
  const checks: Check[] = [];
  try { checks.push({ name: 'mariadbd', status: 'ok', detail: mariadbBinary('mariadbd') }); } catch (err) {
    checks.push(checkFromError('mariadbd', err, 'apt-get install mariadb-server   # or: bash scripts/setup.sh'));
  }
  checks.push(diskCheck(path.resolve(plan.unew.local?.baseDir || defaultUniversesDir())));
  checks.push(commandCheck(plan.unew.app.command[0], plan.planDir));
  return checks;
}

/** The universes' folder (or the nearest folder above it that exists, where it will be created) is writable and has room. */
export function diskCheck(dir: string): Check {
  let at = dir;
  while (!fs.existsSync(at) && path.dirname(at) !== at) at = path.dirname(at);
  try { fs.accessSync(at, fs.constants.W_OK); } catch {
    return { name: 'universes folder', status: 'fail', code: 'IMAGO_PREFLIGHT_DISK', detail: `${at} is not writable by this user (Unew's folders go under ${dir})`, fix: 'set unew.local.baseDir to a writable folder' };
  }
  const st = fs.statfsSync(at);
  const free = st.bavail * st.bsize;
  const gib = (n: number) => `${(n / 2 ** 30).toFixed(1)} GiB`;
  if (free < MIN_FREE_BYTES) return { name: 'universes folder', status: 'fail', code: 'IMAGO_PREFLIGHT_DISK', detail: `${dir}: ${gib(free)} free, need at least ${gib(MIN_FREE_BYTES)} plus the size of Uold's data`, fix: 'free disk space, or set unew.local.baseDir on a larger volume' };
  return { name: 'universes folder', status: 'ok', detail: `${dir}: writable, ${gib(free)} free` };
}

/** The new version's program: a path (relative to the plan's folder, where it starts) or a name on PATH. */
export function commandCheck(program: string, planDir: string): Check {
  const name = 'unew.app.command';
  const executable = (p: string) => { try { fs.accessSync(p, fs.constants.X_OK); return fs.statSync(p).isFile(); } catch { return false; } };
  if (program.includes('/')) {
    const abs = path.resolve(planDir, program);
    return executable(abs) ? { name, status: 'ok', detail: `${abs} (started in ${planDir})` }
      : { name, status: 'fail', code: 'IMAGO_PLAN_INVALID', detail: `/unew/app/command/0: ${abs} is not an executable file (paths are relative to the plan's folder, ${planDir})` };
  }
  const found = (process.env.PATH ?? '').split(':').filter(Boolean).map((d) => path.join(d, program)).find(executable);
  return found ? { name, status: 'ok', detail: `${program} = ${found} (started in ${planDir})` }
    : { name, status: 'fail', code: 'IMAGO_PLAN_INVALID', detail: `/unew/app/command/0: '${program}' is not on PATH (${process.env.PATH ?? ''})`, fix: 'give the absolute path of the program, or a path relative to the plan\'s folder' };
}
