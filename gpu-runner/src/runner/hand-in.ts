// Handing a trained job in: the adapter's files to fresh upload URLs, then complete. Each try starts over,
// so a try cut short by an API outage or an expired link can simply be repeated (complete is idempotent).
import { join } from "node:path";
import type { TrainResult } from "../engine/train/loop.js";
import type { Completion, Holder, RunnerApiClient } from "./api-client.js";
import { uploadFrom } from "./transfer.js";

/** One try at handing the trained job in: fresh PUT URLs, the adapter's files, the last progress (`beat`), complete. */
export async function handIn(client: RunnerApiClient, jobId: string, holder: Holder, result: TrainResult, metrics: Record<string, number>, beat: () => Promise<void>): Promise<Completion> {
  // The lease's PUT URLs may have expired during a long run: ask for fresh ones.
  const { urls } = await client.outputUploads(jobId, holder);
  for (const [name, url] of Object.entries(urls)) await uploadFrom(join(result.adapterDir, name), url);
  // The last step's progress is recorded before complete reads the job's metrics into its results file.
  await beat();
  return client.complete(jobId, holder, result.trainedTokens, metrics);
}
