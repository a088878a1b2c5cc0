// How a runner's messages (a job's events and error) name a lease's training or validation file: by the API id
// the job's user passes around and the name it was uploaded as, which the user recognises.
import type { LeaseAnswer } from "./api-client.js";

type LeaseFile = Pick<LeaseAnswer["urls"]["training_file"], "id" | "filename">;

/**
 * The longest file name a message quotes whole, in characters. An uploaded name may run to the multipart part's
 * 16 KiB of headers, and an event's message is at most 4000 characters (the API refuses a longer one, which
 * would cancel the training).
 */
const MAX_NAME = 120;
/** The end kept of a longer name (its extension and numbering tell files apart). */
const NAME_END = 20;

/** `file-abc123 (train.jsonl)`; the id alone from an API that sends no file names (before the lease had them). */
export function leaseFileName(file: LeaseFile): string {
  return file.filename ? `${file.id} (${shortened(file.filename)})` : file.id;
}

/** `name`, or its start, `…` and its end when it is over MAX_NAME characters (code points: no pair is split). */
function shortened(name: string): string {
  const chars = Array.from(name);
  if (chars.length <= MAX_NAME) return name;
  return `${chars.slice(0, MAX_NAME - NAME_END - 1).join("")}…${chars.slice(-NAME_END).join("")}`;
}
