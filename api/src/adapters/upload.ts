// Receives a POST /v1/adapters body as it streams: the small fields are read whole, and
// adapter_model.safetensors goes straight to the blob store while its header (from the first bytes) and its
// length are checked, so an upload is held in memory only as far as its header and config. On any fault the
// files written are removed before the error is thrown.
import { z } from "@hono/zod-openapi";
import { putChecked } from "../blob/checked-put.js";
import type { BlobStore } from "../blob/port.js";
import { ApiError } from "../errors.js";
import { multipartBoundary, notAFormField, parseMultipart, readPartBytes, readTextPart, type MultipartPart } from "../files/multipart.js";
import { capBytes } from "../lib/byte-cap.js";
import { sha256Hex } from "../lib/hash.js";
import type { ModelSummary } from "../lib/model-shapes.js";
import { adapterFileTypes } from "./store.js";
import { adapterFacts, AdapterWeightsCheck, configTooLarge, maxAdapterConfigBytes, parseAdapterConfig, uploadFields, type AdapterFacts } from "./validate.js";
import { describeIssue } from "../lib/zod-issue.js";

/** Room for the multipart boundaries, part headers and the text fields. */
const multipartOverhead = 64 * 1024;
/** Bytes of a text field. */
const maxFieldBytes = 64 * 1024;

const CONFIG = "adapter_config.json";
const WEIGHTS = "adapter_model.safetensors";

/** The form's text fields, checked as they arrive (the route documents the whole form with them). */
export const adapterTextFields = z.object({
  base_model: z.string().min(1).openapi({ description: "the registered base model the adapter was trained on; send it before adapter_model", example: "micro-llama" }),
  suffix: z
    .string()
    .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,39}$/, "use 1–40 letters, digits, '_', '.' or '-' (no ':')")
    .optional()
    .openapi({ description: "goes into the model name: ft:<base>:<tenant>:<suffix>:<id>" }),
});

/** Every field of the form, in the order the docs give them. */
const formFields = ["base_model", "suffix", uploadFields.config, uploadFields.weights] as const;

/** What to tell a client that sent a file field as text (curl's -F without '@'), or not at all. */
const sendAsFile = (field: string, fileName: string) => `send ${fileName} as a file part (curl -F ${field}=@${fileName})`;

export interface ReceivedAdapter {
  /** base_model as sent, and the registered base model it names. */
  baseModel: string;
  base: { id: string; summary: ModelSummary };
  suffix?: string;
  facts: AdapterFacts;
  /** Bytes of both files together. */
  sizeBytes: number;
  configSha256: string;
  weightsSha256: string;
}

export interface AdapterUploadArgs {
  body: ReadableStream<Uint8Array> | null;
  contentType: string | undefined;
  contentLength: string | undefined;
  blobs: BlobStore;
  /** Where the two files go (the new adapter's blob prefix). */
  prefix: string;
  maxBytes: number;
  maxRank: number;
  /** The registered base model `name` names, or null. */
  findBase: (name: string) => Promise<{ id: string; summary: ModelSummary } | null>;
}

const tooLarge = (max: number) => new ApiError("payload_too_large", `adapter upload exceeds ${max} bytes (TUNESERVE_MAX_ADAPTER_BYTES)`);
const filesTooLarge = (total: number, max: number) =>
  new ApiError("payload_too_large", `adapter files total ${total} bytes, over the ${max}-byte limit (TUNESERVE_MAX_ADAPTER_BYTES)`);
const twice = (field: string) => new ApiError("invalid_request", `${field}: sent twice; send it once`, field);

/** The fault of a text field (undefined: not sent) by adapterTextFields, worded as the form validator words it; null when fine. */
function textFault(field: "base_model" | "suffix", value: string | undefined): ApiError | null {
  const r = adapterTextFields.shape[field].safeParse(value);
  return r.success ? null : new ApiError("invalid_request", `${field}: ${describeIssue(r.error.issues[0], "form field").message}`, field);
}

/** Reads a text field and checks it. */
async function readText(part: MultipartPart, field: "base_model" | "suffix"): Promise<string> {
  const value = await readTextPart(part, maxFieldBytes);
  const fault = textFault(field, value);
  if (fault) throw fault;
  return value;
}

/** The parser's fault, worded as before uploads streamed ("could not be parsed"), with its detail. */
function formFault(e: unknown): unknown {
  if (!(e instanceof ApiError) || e.code !== "invalid_request" || !e.message.startsWith("multipart body: ")) return e;
  const detail = e.message.slice("multipart body: ".length);
  return new ApiError("invalid_request", `multipart body: could not be parsed as multipart/form-data (${detail}); send a complete form whose parts are delimited by the boundary its Content-Type names`);
}

/** Reads adapter_config.json whole; one over maxAdapterConfigBytes is read on only to say how large it is. */
const readConfig = (part: MultipartPart): Promise<Uint8Array> => readPartBytes(part, maxAdapterConfigBytes, configTooLarge, true);

/**
 * Receives and stores an adapter upload under `args.prefix`. base_model must come before adapter_model (its
 * header is bounded and checked by the base model as it streams); adapter_config and suffix may come before or
 * after it. Throws ApiError with nothing left under the prefix.
 */
export async function receiveAdapterUpload(args: AdapterUploadArgs): Promise<ReceivedAdapter> {
  const { blobs, prefix, maxBytes } = args;
  const maxBody = maxBytes + maxAdapterConfigBytes + multipartOverhead;
  const declared = Number(args.contentLength);
  if (Number.isFinite(declared) && declared > maxBody) throw tooLarge(maxBytes);
  const boundary = multipartBoundary(args.contentType);
  const body = capBytes(args.body ?? new ReadableStream({ start: (c) => c.close() }), maxBody, () => tooLarge(maxBytes)).stream;

  let baseModel: string | undefined;
  let base: ReceivedAdapter["base"] | undefined;
  let suffix: string | undefined;
  let configBytes: Uint8Array | undefined;
  let parsed: ReturnType<typeof parseAdapterConfig> | undefined;
  let facts: AdapterFacts | undefined;
  let stored: { check: AdapterWeightsCheck; bytes: number; sha256: string } | undefined;
  let wrote = false;
  try {
    for await (const part of parseMultipart(body, boundary)) {
      if (part.name === "base_model") {
        if (baseModel !== undefined) throw twice(part.name);
        baseModel = await readText(part, "base_model");
        base = (await args.findBase(baseModel)) ?? undefined;
        if (!base) throw new ApiError("not_found", `base_model '${baseModel}' is not a registered base model; GET /v1/models lists them`, "base_model");
      } else if (part.name === "suffix") {
        if (suffix !== undefined) throw twice(part.name);
        suffix = await readText(part, "suffix");
      } else if (part.name === uploadFields.config) {
        if (configBytes) throw twice(part.name);
        if (part.filename === null) throw new ApiError("invalid_request", `${part.name}: ${sendAsFile(part.name, CONFIG)}`, part.name);
        configBytes = await readConfig(part);
        parsed = parseAdapterConfig(configBytes, args.maxRank);
      } else if (part.name === uploadFields.weights) {
        if (stored || wrote) throw twice(part.name);
        if (part.filename === null) throw new ApiError("invalid_request", `${part.name}: ${sendAsFile(part.name, WEIGHTS)}`, part.name);
        if (!base) {
          throw new ApiError("invalid_request", `${part.name}: send base_model before adapter_model: its header is checked against the base model as it streams in (curl -F base_model=… -F adapter_config=@${CONFIG} -F adapter_model=@${WEIGHTS})`, part.name);
        }
        const check = new AdapterWeightsCheck(base.summary);
        const summary = base.summary;
        const configSoFar = configBytes?.length ?? 0;
        const gated = gate(part.body, maxBytes - configSoFar, (n) => filesTooLarge(n + configSoFar, maxBytes), {
          chunk(value) {
            const header = check.push(value);
            // With the config already in, the tensors are checked before any of their data is stored.
            if (header && parsed) facts = adapterFacts(header, parsed.config, parsed.targets, summary);
          },
          end() {
            check.end();
          },
        });
        wrote = true;
        const put = await putChecked(blobs, prefix + WEIGHTS, gated, adapterFileTypes[WEIGHTS]);
        stored = { check, ...put };
      } else {
        throw notAFormField(part.name, formFields);
      }
    }
    // Missing fields, named in the form's order, as the form validator named them.
    if (baseModel === undefined || !base) throw textFault("base_model", undefined)!;
    if (!configBytes || !parsed) throw new ApiError("invalid_request", `${uploadFields.config}: ${sendAsFile(uploadFields.config, CONFIG)}`, uploadFields.config);
    if (!stored) throw new ApiError("invalid_request", `${uploadFields.weights}: ${sendAsFile(uploadFields.weights, WEIGHTS)}`, uploadFields.weights);
    const sizeBytes = configBytes.length + stored.bytes;
    if (sizeBytes > maxBytes) throw filesTooLarge(sizeBytes, maxBytes);
    facts ??= adapterFacts(stored.check.end(), parsed.config, parsed.targets, base.summary);
    await blobs.put(prefix + CONFIG, configBytes, { contentType: adapterFileTypes[CONFIG] });
    return { baseModel, base, suffix, facts, sizeBytes, configSha256: await sha256Hex(configBytes), weightsSha256: stored.sha256 };
  } catch (e) {
    if (wrote) await blobs.deletePrefix(prefix).catch(() => {});
    throw formFault(e);
  }
}

/**
 * Passes the weights on to be stored while they are within `room` bytes and pass `checks`. Past either it only
 * counts them to the end of the part, so that a size fault is named before a content fault, with the size, as
 * when the whole form was read first; what it has let through is never published, since the stream then errors.
 */
function gate(source: ReadableStream<Uint8Array>, room: number, tooLarge: (total: number) => ApiError, checks: { chunk(bytes: Uint8Array): void; end(): void }): ReadableStream<Uint8Array> {
  let total = 0;
  let fault: unknown = null;
  return source.pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, c) {
        total += chunk.length;
        if (fault !== null || total > room) return;
        try {
          checks.chunk(chunk);
          c.enqueue(chunk);
        } catch (e) {
          fault = e;
        }
      },
      flush() {
        if (total > room) throw tooLarge(total);
        if (fault !== null) throw fault;
        checks.end();
      },
    }),
  );
}
