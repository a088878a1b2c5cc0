// A succeeded job's results file (OpenAI's `result_files`): one CSV row per reported step, with the
// training loss and, at the steps that validated, the validation metrics. It is a file of the tenant's like
// an upload (purpose "fine-tune-results", format "csv"): listed, downloaded and deleted through /v1/files.
// Each completing attempt writes its own blob; the row that points at it is inserted in the same batch that
// marks the job succeeded, and only if that update won, so a job never shows a file that is not its own.
import { asc, eq } from "drizzle-orm";
import { blobKeys } from "../blob/port.js";
import type { Db } from "../db/client.js";
import { files, jobEvents } from "../db/schema.js";
import type { Deps } from "../deps.js";
import { sha256Hex } from "../lib/hash.js";
import { newId } from "../lib/ids.js";
import type { JobRow } from "./shape.js";

export const RESULTS_FILENAME = "step_metrics.csv";


const COLUMNS = ["step", "train_loss", "valid_loss", "valid_mean_token_accuracy", "valid_reward_accuracy"] as const;
const VALID = ["valid_loss", "valid_mean_token_accuracy", "valid_reward_accuracy"] as const;

/**
 * The CSV of the job's events: train_loss from its metrics events (one per reported step), valid_* from its
 * validation events (the ones without a train_loss; checkpoint events repeat the last validation's values).
 */
export async function resultsCsv(db: Db, jobId: string): Promise<{ text: string; rows: number }> {
  const events = await db.select({ type: jobEvents.type, data: jobEvents.data }).from(jobEvents).where(eq(jobEvents.jobId, jobId)).orderBy(asc(jobEvents.id));
  const byStep = new Map<number, Record<string, number>>();
  const row = (step: number) => byStep.get(step) ?? byStep.set(step, { step }).get(step)!;
  for (const e of events) {
    const d = e.data ? (JSON.parse(e.data) as Record<string, unknown>) : null;
    if (!d || typeof d.step !== "number") continue;
    if (e.type === "metrics" && typeof d.train_loss === "number") row(d.step).train_loss = d.train_loss;
    else if (d.train_loss === undefined && VALID.some((k) => typeof d[k] === "number")) {
      const r = row(d.step);
      for (const k of VALID) if (typeof d[k] === "number") r[k] = d[k] as number;
    }
  }
  const steps = [...byStep.values()].sort((a, b) => a.step - b.step);
  const lines = [COLUMNS.join(","), ...steps.map((r) => COLUMNS.map((k) => (r[k] === undefined ? "" : String(r[k]))).join(","))];
  return { text: lines.join("\n") + "\n", rows: steps.length };
}

/** Writes this attempt's results blob and returns the file row that would point at it. */
export async function writeResultsBlob(deps: Deps, job: JobRow, now: number): Promise<typeof files.$inferSelect> {
  const { text, rows } = await resultsCsv(deps.db, job.id);
  // A new id (ids sort by creation: the file lists among those made when the job ended), which also tells
  // this complete's batch from a concurrent one's.
  const id = newId("file-");
  const blobKey = blobKeys.jobResults(job.tenantId, job.id, job.attempt, RESULTS_FILENAME);
  const bytes = new TextEncoder().encode(text);
  await deps.blobs.put(blobKey, bytes, { contentType: "text/csv" });
  return { id, tenantId: job.tenantId, filename: RESULTS_FILENAME, purpose: "fine-tune-results", format: "csv", bytes: bytes.length, lines: rows, sha256: await sha256Hex(bytes), blobKey, createdAt: now };
}
