// Where a checkpoint record finds the files the holder uploaded: its own attempt's upload keys. A runner that
// lost its lease keeps PUT links to its attempt's keys until they expire, and what it writes there is never read.
// Links signed before upload keys were per attempt point at the step's keys shared by every attempt: those are
// read only when the holder's attempt uploaded nothing for the step, which a runner with links from this API
// never does (it records after its PUTs succeed), so that a checkpoint uploaded across a deploy is still recorded.
import { blobKeys, type BlobInfo, type BlobStore } from "../blob/port.js";
import type { JobRow } from "./shape.js";

export interface CheckpointUploads {
  /** The prefix the files were listed under. */
  prefix: string;
  listed: BlobInfo[];
}

async function listAll(blobs: BlobStore, prefix: string): Promise<CheckpointUploads> {
  const listed: BlobInfo[] = [];
  for await (const o of blobs.list(prefix)) listed.push(o);
  return { prefix, listed };
}

/** The files uploaded for `step` by the job's current attempt (or through an older API's links; see above). */
export async function findCheckpointUploads(blobs: BlobStore, job: JobRow, step: number): Promise<CheckpointUploads> {
  const own = await listAll(blobs, blobKeys.checkpointUpload(job.tenantId, job.id, job.attempt, step));
  if (own.listed.length > 0) return own;
  const legacy = await listAll(blobs, blobKeys.legacyCheckpointUpload(job.tenantId, job.id, step));
  return legacy.listed.length > 0 ? legacy : own;
}
