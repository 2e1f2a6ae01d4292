/**
 * The upgrade's status as a person wants it: the workflow's status query,
 * with the data transfer's live progress merged in from its heartbeat.
 *
 * Why two sources: the workflow hears from the transfer only on edges (caught
 * up, fell behind, stopped…), so that its history stays bounded however long
 * the upgrade runs; the transfer's per-second progress lives in its latest
 * heartbeat, which the server keeps with the pending activity and `describe`
 * returns. Reading both costs two calls and adds nothing to the history.
 */
import type { Client, WorkflowHandle } from '@temporalio/client';
import type { TransferHeartbeat } from '../activities/transfer-runner';
import { statusQuery } from '../workflows/messages';
import type { UpgradeStatus } from '../workflows/status';

/** The latest heartbeat of the running transfer activity, if there is one. */
export async function transferHeartbeat(client: Client, handle: WorkflowHandle): Promise<{ beat: TransferHeartbeat; attempt: number; lastFailure: string | null } | null> {
  const desc = await handle.describe();
  const pending = desc.raw.pendingActivities?.find((a) => a.activityType?.name === 'runTransfer');
  const payload = pending?.heartbeatDetails?.payloads?.[0];
  if (!pending || !payload) return null;
  const converter = client.options.loadedDataConverter;
  let [decoded] = [payload];
  for (const codec of [...converter.payloadCodecs].reverse()) [decoded] = await codec.decode([decoded]);
  const beat = converter.payloadConverter.fromPayload<TransferHeartbeat>(decoded);
  if (!beat?.snapshot) return null;
  return { beat, attempt: pending.attempt ?? 1, lastFailure: pending.lastFailure?.message ?? null };
}

/** Status query + the transfer's heartbeat (when it is newer than what the workflow last heard). */
export async function liveStatus(client: Client, handle: WorkflowHandle): Promise<UpgradeStatus> {
  const [status, hb] = await Promise.all([handle.query(statusQuery), transferHeartbeat(client, handle).catch(() => null)]);
  if (hb && (!status.transfer || hb.beat.snapshot.at >= status.transfer.at)) {
    status.transfer = hb.beat.snapshot;
    if (hb.beat.series?.length) status.series = { ...status.series, transfer: hb.beat.series };
  }
  return status;
}
