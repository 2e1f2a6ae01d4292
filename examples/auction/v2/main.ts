/**
 * Auction v2 entry point: `npx tsx examples/auction/v2/main.ts --port 8081 --db mysql://app:pw@127.0.0.1:3306/auction2`
 * (or PORT / DATABASE_URL). AUCTION_V2_FAULT = cents-rounding | missing-field | ordering injects a semantic fault.
 */
import { auctionError } from '../errors';
import { runService } from '../common/service';
import { routes } from './routes';
import { AuctionService } from './service';
import { FAULTS, Views, type Fault } from './views';

const fault = process.env.AUCTION_V2_FAULT || undefined;
if (fault !== undefined && !(FAULTS as readonly string[]).includes(fault)) {
  console.error(auctionError('AUCTION_CONFIG_INVALID', `AUCTION_V2_FAULT='${fault}' is not one of ${FAULTS.join(', ')}`).message);
  process.exit(2);
}
if (fault) console.log(`auction-v2: semantic fault '${fault}' injected`);
void runService('v2', (db) => routes(new AuctionService(db), new Views(fault as Fault)));
