// Receives a POST /v1/files body: parses the multipart form, streams the file part to the blob store while
// counting, hashing and validating every JSONL line, and leaves no blob behind when anything is wrong.
import type { BlobStore } from "../blob/port.js";
import { blobKeys } from "../blob/port.js";
import { putChecked } from "../blob/checked-put.js";
import { ApiError } from "../errors.js";
import { JsonlValidator, type FileFormat, type JsonlSummary } from "./jsonl.js";
import { multipartBoundary, notAFormField, parseMultipart, readTextPart, type MultipartPart } from "./multipart.js";

/** What an upload may be for. */
export const filePurposes = ["fine-tune"] as const;
/** What a file may be for: an upload's purpose, or a job's results (written by the API, not uploaded). */
export const fileObjectPurposes = [...filePurposes, "fine-tune-results"] as const;

/** Slack for the multipart framing and the purpose field when comparing Content-Length with the file limit. */
const FRAMING_BYTES = 64 * 1024;

export interface UploadLimits {
  maxFileBytes: number;
  maxLineBytes: number;
  /** What the tenant's stored-bytes quota leaves for this file (quotas/limits.ts), and its error once passed. */
  room?: { bytes: number; exceeded(): ApiError };
}

export interface StoredUpload {
  id: string;
  filename: string;
  purpose: (typeof filePurposes)[number];
  format: FileFormat;
  lines: number;
  bytes: number;
  sha256: string;
  blobKey: string;
}

function checkPurpose(value: string | undefined): (typeof filePurposes)[number] {
  if (value === undefined) throw new ApiError("invalid_request", "purpose: missing; send the form field purpose=fine-tune", "purpose");
  const v = value.trim();
  if (!(filePurposes as readonly string[]).includes(v)) {
    throw new ApiError("invalid_request", `purpose: '${v.slice(0, 64)}' is not supported; use purpose=fine-tune`, "purpose");
  }
  return v as (typeof filePurposes)[number];
}

/** Keeps the last path segment of a client file name, without control characters, at most 255 characters. */
export function cleanFilename(name: string | null): string {
  const base = (name ?? "").split(/[/\\]/).pop() ?? "";
  const clean = base.replace(/[\u0000-\u001f\u007f]/g, "").trim().slice(0, 255);
  return clean || "upload.jsonl";
}

/** What a part without a file name most likely is: a path sent as text (curl's -F without '@'). */
const sentAsText = "; the field 'file' came as text, not as a file: to send a file's contents, write curl -F file=@train.jsonl";

function invalidFile(filename: string, s: JsonlSummary, stoppedEarly: boolean, asText: boolean): ApiError {
  const hint = asText ? sentAsText : "";
  if (s.lines === 0 && s.errorCount === 1 && s.bytes === 0) return new ApiError("invalid_file", `${filename} is empty; send one JSON object per line${hint}`, "file");
  const count = stoppedEarly ? `stopped after the first ${s.errors.length} errors` : `${s.errorCount} invalid line${s.errorCount === 1 ? "" : "s"}`;
  const list = s.errors.map((e) => `line ${e.line}: ${e.message}`).join("; ");
  return new ApiError("invalid_file", `${filename} is not valid fine-tuning JSONL (${count}): ${list}${hint}`, "file");
}

/**
 * Streams the file part into `key`: the byte limit and the JSONL checks run on each chunk as it passes, and an
 * error ends the stream, so the blob store aborts the write instead of publishing it.
 */
async function storeFilePart(part: MultipartPart, filename: string, key: string, blobs: BlobStore, limits: UploadLimits) {
  const validator = new JsonlValidator({ maxLineBytes: limits.maxLineBytes });
  let bytes = 0;
  const stored = await putChecked(blobs, key, part.body, "application/jsonl", {
    chunk(value) {
      bytes += value.length;
      if (bytes > limits.maxFileBytes) {
        throw new ApiError("payload_too_large", `file: larger than ${limits.maxFileBytes} bytes (TUNESERVE_MAX_FILE_BYTES); split the dataset`, "file");
      }
      if (limits.room && bytes > limits.room.bytes) throw limits.room.exceeded();
      validator.push(value);
      // Enough errors for the report: stop now rather than store a file that will be refused.
      if (validator.full) throw invalidFile(filename, validator.summary, true, part.filename === null);
    },
    end() {
      const summary = validator.finish();
      if (summary.errorCount > 0) throw invalidFile(filename, summary, false, part.filename === null);
    },
  });
  const summary = validator.summary;
  return { format: summary.format!, lines: summary.lines, bytes: stored.bytes, sha256: stored.sha256 };
}

/** The form's own fields, named in the error for any other. */
const formFields = ["purpose", "file"] as const;

/**
 * Handles one upload for `tenantId`. `purpose` may come before or after the file: when it comes after and is
 * wrong, the blob already written is deleted before the error is thrown. The caller inserts the files row only
 * after this resolves, so a blob without a row is never visible through the API.
 */
export async function receiveUpload(args: {
  body: ReadableStream<Uint8Array> | null;
  contentType: string | undefined;
  contentLength: string | undefined;
  tenantId: string;
  fileId: string;
  blobs: BlobStore;
  limits: UploadLimits;
}): Promise<StoredUpload> {
  const boundary = multipartBoundary(args.contentType);
  const declared = Number(args.contentLength);
  if (Number.isFinite(declared) && declared > args.limits.maxFileBytes + FRAMING_BYTES) {
    throw new ApiError("payload_too_large", `file: larger than ${args.limits.maxFileBytes} bytes (TUNESERVE_MAX_FILE_BYTES); split the dataset`, "file");
  }
  if (args.limits.room && Number.isFinite(declared) && declared > args.limits.room.bytes + FRAMING_BYTES) throw args.limits.room.exceeded();
  if (!args.body) throw new ApiError("invalid_request", "file: missing; send the JSONL as the multipart field 'file'", "file");
  const key = blobKeys.file(args.tenantId, args.fileId);
  let purpose: string | undefined;
  let stored: (Awaited<ReturnType<typeof storeFilePart>> & { filename: string }) | null = null;
  let wrote = false;
  try {
    for await (const part of parseMultipart(args.body, boundary)) {
      if (part.name === "purpose") {
        if (purpose !== undefined) throw new ApiError("invalid_request", "purpose: sent twice; send it once", "purpose");
        purpose = await readTextPart(part, 256);
        if (stored) checkPurpose(purpose);
      } else if (part.name === "file") {
        if (stored || wrote) throw new ApiError("invalid_request", "file: sent twice; upload one file per request", "file");
        if (purpose !== undefined) checkPurpose(purpose); // fail fast, before streaming the upload
        const filename = cleanFilename(part.filename);
        wrote = true;
        stored = { ...(await storeFilePart(part, filename, key, args.blobs, args.limits)), filename };
      } else if (part.name === "expires_after" || part.name.startsWith("expires_after[")) {
        // OpenAI's option (its client sends it as expires_after[anchor] and [seconds]): ignored, the client
        // would count on a deletion that never comes.
        throw new ApiError("invalid_request", "expires_after: files do not expire here (each is kept until DELETE /v1/files/{id}); leave it out", "expires_after");
      } else {
        // Refused, as the JSON routes refuse an unknown key and the adapter form its other fields: read and
        // ignored, a field the user meant for the file (a suffix, say) would go unseen. OpenAI clients send none.
        throw notAFormField(part.name, formFields);
      }
    }
    if (!stored) throw new ApiError("invalid_request", "file: missing; send the JSONL as the multipart field 'file'", "file");
    return { id: args.fileId, purpose: checkPurpose(purpose), blobKey: key, ...stored };
  } catch (e) {
    if (wrote) await args.blobs.delete(key).catch(() => {});
    throw e;
  }
}
