// How a runner's messages (a job's events and error) name a lease's training or validation file: by the API id
// the job's user passes around and the name it was uploaded as, which the user recognises.
import type { LeaseAnswer } from "./api-client.js";

type LeaseFile = Pick<LeaseAnswer["urls"]["training_file"], "id" | "filename">;

/** `file-abc123 (train.jsonl)`; the id alone from an API that sends no file names (before the lease had them). */
export function leaseFileName(file: LeaseFile): string {
  return file.filename ? `${file.id} (${file.filename})` : file.id;
}
