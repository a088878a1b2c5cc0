// The job's view of tenant files: a training or validation file must be the tenant's and meant for fine-tuning.
import type { Db } from "../db/client.js";
import { ApiError, notFound } from "../errors.js";
import { getTenantFile, type FileRow } from "../routes/v1_files.js";

export type { FileRow };
/** The tenant's file by id, or null (absent or another tenant's). */
export const findTenantFile = getTenantFile;

/** A file a job may train or validate on; 404 / 400 naming the parameter otherwise. */
export async function requireTrainingFile(db: Db, tenantId: string, fileId: string, param: "training_file" | "validation_file"): Promise<FileRow> {
  const f = await findTenantFile(db, tenantId, fileId);
  if (!f) throw notFound("file", fileId, param);
  if (f.purpose !== "fine-tune") throw new ApiError("invalid_request", `${param}: file ${fileId} has purpose '${f.purpose}'; upload it with purpose=fine-tune`, param);
  if (f.lines < 1) throw new ApiError("invalid_request", `${param}: file ${fileId} has no examples`, param);
  return f;
}
