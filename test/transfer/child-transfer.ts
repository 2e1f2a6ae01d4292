/** A transfer in its own process, so tests can kill -9 it: argv[2] is JSON {source, target, serverId, chunkSize}. */
import { identityConversion } from '../../transfer/conversion';
import { Transfer } from '../../transfer/transfer';

// mocha, given the folder, loads this file too: it only runs when started with its JSON argument.
if (process.argv[2]?.startsWith('{')) {
  const args = JSON.parse(process.argv[2]);
  const t = new Transfer({ ...args, conversion: identityConversion([{ table: 'items', key: ['id'] }]) });
  const ac = new AbortController();
  process.on('SIGTERM', () => ac.abort());
  const timer = setInterval(() => console.log(JSON.stringify(t.progress())), 500);
  t.run(ac.signal).then(() => { clearInterval(timer); process.exit(0); }, (err) => { console.error(err); process.exit(1); });
}
