/** Auction v1 entry point: `npx tsx examples/auction/v1/main.ts --port 8080 --db mysql://app:pw@127.0.0.1:3306/auction` (or PORT / DATABASE_URL). */
import { runService } from '../common/service';
import { routes } from './handlers';

void runService('v1', (db) => routes(db));
