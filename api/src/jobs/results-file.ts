// A succeeded job's results file (OpenAI's `result_files`): one CSV row per step that reported metrics,
// with the training loss and, at the steps that validated, the validation metrics. It is a file of the
// tenant's like an upload (purpose "fine-tune-results", format "csv"): listed, downloaded and deleted
// through /v1/files. Written when the job completes, under an id derived from the job's, so a retried
// complete writes the same file once.
import { asc, eq } from "drizzle-orm";
import { blobKeys } from "../blob/port.js";
import type { Db } from "../db/client.js";
import { files, jobEvents } from "../db/schema.js";
import type { Deps } from "../deps.js";
import { sha256Hex } from "../lib/hash.js";
import { jobIdPrefix, type JobRow } from "./shape.js";

export const RESULTS_FILENAME = "step_metrics.csv";

/** The results file's id: the job id's body under the file prefix. */
export const resultsFileId = (jobId: string) => `file-${jobId.slice(jobIdPrefix.length)}`;

const COLUMNS = ["step", "train_loss", "valid_loss", "valid_mean_token_accuracy", "valid_reward_accuracy"] as const;

/** The CSV of the job's metrics events (step, train_loss) and validation events (valid_*), one row per step. */
export async function resultsCsv(db: Db, jobId: string): Promise<{ text: string; rows: number }> {
  const events = await db.select({ data: jobEvents.data }).from(jobEvents).where(eq(jobEvents.jobId, jobId)).orderBy(asc(jobEvents.id));
  const byStep = new Map<number, Record<string, number>>();
  for (const e of events) {
    const d = e.data ? (JSON.parse(e.data) as Record<string, unknown>) : null;
    if (!d || typeof d.step !== "number") continue;
    const row = byStep.get(d.step) ?? { step: d.step };
    for (const k of COLUMNS) if (k !== "step" && typeof d[k] === "number") row[k] = d[k] as number;
    // Only steps with a loss or a validation are rows (checkpoint events repeat the step's train_loss).
    if (Object.keys(row).length > 1) byStep.set(d.step, row);
  }
  const steps = [...byStep.values()].sort((a, b) => a.step - b.step);
  const lines = [COLUMNS.join(","), ...steps.map((r) => COLUMNS.map((k) => (r[k] === undefined ? "" : String(r[k]))).join(","))];
  return { text: lines.join("\n") + "\n", rows: steps.length };
}

/** Removes a results file written for a completion that did not succeed (its row, then its blob). */
export async function dropResultsFile(deps: Deps, f: { id: string; blobKey: string }): Promise<void> {
  await deps.db.delete(files).where(eq(files.id, f.id));
  await deps.blobs.delete(f.blobKey);
}

/** Writes the results file's blob and returns the row to insert (idempotent: same id, same bytes). */
export async function writeResultsFile(deps: Deps, job: JobRow, now: number): Promise<typeof files.$inferInsert> {
  const { text, rows } = await resultsCsv(deps.db, job.id);
  const id = resultsFileId(job.id);
  const blobKey = blobKeys.file(job.tenantId, id);
  const bytes = new TextEncoder().encode(text);
  await deps.blobs.put(blobKey, bytes, { contentType: "text/csv" });
  return { id, tenantId: job.tenantId, filename: RESULTS_FILENAME, purpose: "fine-tune-results", format: "csv", bytes: bytes.length, lines: rows, sha256: await sha256Hex(bytes), blobKey, createdAt: now };
}
