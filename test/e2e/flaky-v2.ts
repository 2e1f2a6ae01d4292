/**
 * TEST CODE: auction v2 with a fault that shows only in production — every
 * other bid is answered 500 before anything is written (no acknowledged
 * write is lost: the client sees the failure), but only by the instance that
 * serves live traffic. The testing phase's sandbox (a second instance, started
 * with IMAGO_UNIVERSE=<id>.sandbox) answers correctly, as it would for a fault
 * that needs production's conditions (its load, its data, its time of day):
 * so the gate passes and the fault reaches clients only once v2 serves them,
 * which is what the automatic rollback's error-rate rule is for.
 * Started as the plan's unew.app.command by test/e2e/rollback.test.ts; the
 * product and the sample's own entry point know nothing of it.
 */
import { runService } from '../../examples/auction/common/service';
import { routes } from '../../examples/auction/v2/routes';
import { AuctionService } from '../../examples/auction/v2/service';
import { Views } from '../../examples/auction/v2/views';

let bids = 0;
const inSandbox = (process.env.IMAGO_UNIVERSE ?? '').endsWith('.sandbox');
void runService('v2', (db) => routes(new AuctionService(db), new Views(undefined)).map((r) => (r.method === 'POST' && String(r.pattern).includes('bids')
  ? { ...r, handler: async (req: Parameters<typeof r.handler>[0]) => ((!inSandbox && ++bids % 2 === 0) ? [500, { error: 'injected by test/e2e/flaky-v2.ts' }] : r.handler(req)) as Awaited<ReturnType<typeof r.handler>> }
  : r)));
