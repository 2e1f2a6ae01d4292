/** The sample's plan, for plan tests that vary one key at a time. */
import * as path from 'node:path';
import { loadPlanFile } from '../../plan/load';

export const EXAMPLE = path.join(__dirname, '..', '..', 'examples', 'auction', 'plan.yaml');
export const EXAMPLE_DIR = path.dirname(EXAMPLE);

/** The example plan as a file would hold it (relative paths, no planDir). */
export function exampleFile(): any {
  const p: any = structuredClone(loadPlanFile(EXAMPLE));
  delete p.planDir;
  p.unew.schemaFile = 'schema/v2.sql';
  p.unew.conversion = 'conversion.ts';
  return p;
}
