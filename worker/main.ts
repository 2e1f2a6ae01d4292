/**
 * `npx tsx worker/main.ts [options]`: the worker as a process of its own, the
 * same command as `imago worker` (client/commands/processes.ts), so both take
 * the same options and connect the same way: --address, --namespace, --tls,
 * --tls-cert, --tls-key, --tls-ca, --tls-server-name, --api-key, --config
 * (or the Temporal CLI's environment variables, or the config file), and
 * --task-queue, --max-activities, --workflow-bundle (or IMAGO_TASK_QUEUE,
 * IMAGO_WORKER_MAX_ACTIVITIES, IMAGO_WORKFLOW_BUNDLE). SIGINT/SIGTERM stop it
 * gracefully; exit 1 with the message on a bad option or an unreachable server.
 */
import { main } from '../client/cli';

void main(['worker', ...process.argv.slice(2)]);
