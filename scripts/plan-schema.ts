/** Writes plan/plan.schema.json (for editors) from plan/schema.ts: `npm run plan:schema`. A unit test fails when it is stale. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { planJsonSchemaText } from '../plan/schema';

export const PLAN_JSON_SCHEMA_FILE = path.join(__dirname, '..', 'plan', 'plan.schema.json');

if (require.main === module) {
  fs.writeFileSync(PLAN_JSON_SCHEMA_FILE, planJsonSchemaText());
  console.log(`wrote ${path.relative(process.cwd(), PLAN_JSON_SCHEMA_FILE)}`);
}
