/**
 * A whole sample world in one call, for scripts and benchmarks: a Temporal
 * dev server, an Imago worker, the auction's live Uold stage and a bidding
 * workload through its interceptor; stop() stops all of it, in reverse.
 */
import { Client, Connection } from '@temporalio/client';
import { ImagoClient } from '../../client/api';
import { TemporalDevServer, type DevServerOptions } from '../../lib/temporal-server';
import { createWorker } from '../../worker/run';
import { startUoldStage, type StageOptions, type UoldStage } from './stage';
import { startWorkload, type WorkloadResult } from './workload/generator';

export interface SampleWorld {
  server: TemporalDevServer;
  stage: UoldStage;
  client: Client;
  imago: ImagoClient;
  taskQueue: string;
  load: { stop(): void; done: Promise<WorkloadResult> };
  stop(): Promise<void>;
}

export async function startSampleWorld(o: { size: Pick<StageOptions, 'users' | 'items' | 'bids'>; rate: number; taskQueue: string; server?: DevServerOptions; log?: (m: string) => void; seed?: number }): Promise<SampleWorld> {
  const server = await new TemporalDevServer(o.server ?? {}).start();
  const stops: Array<() => Promise<unknown>> = [() => server.stop()];
  const stop = async () => { for (const fn of stops.splice(0).reverse()) await fn().catch((e) => console.error('stopping the sample world:', e)); };
  try {
    const connection = await Connection.connect({ address: server.address });
    stops.push(() => connection.close());
    const client = new Client({ connection });
    const stage = await startUoldStage({ ...o.size, log: o.log });
    stops.push(() => stage.stop());
    // The worker in this process resolves the plan's env: references.
    Object.assign(process.env, stage.env);
    const { worker, close } = await createWorker({ address: server.address, taskQueue: o.taskQueue });
    const running = worker.run();
    stops.push(async () => { worker.shutdown(); await running; await close(); });
    const load = startWorkload({ baseUrl: stage.url, mix: 'bidding', rate: o.rate, durationMs: 60 * 60_000, users: [1, o.size.users], items: [1, o.size.items], seed: o.seed ?? 3 });
    stops.push(async () => { load.stop(); await load.done; });
    return { server, stage, client, imago: ImagoClient.fromClient(client), taskQueue: o.taskQueue, load, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
