// Reads and checks the header of a safetensors file without touching the tensor data: pure and Worker-safe,
// so an uploaded adapter is refused before it is stored when its layout could not be loaded by the engine.
import { z } from "zod";
import { describeIssue } from "../lib/zod-issue.js";

/** Bytes per element of the dtypes LoRA weights are saved in; other dtypes are refused. */
export const dtypeBytes = { F32: 4, F16: 2, BF16: 2 } as const;
export type SafetensorsDtype = keyof typeof dtypeBytes;

export interface TensorInfo {
  dtype: SafetensorsDtype;
  shape: number[];
  /** [start, end) counted from the first byte after the header. */
  offsets: [number, number];
}

export interface SafetensorsHeader {
  tensors: Map<string, TensorInfo>;
  metadata: Record<string, string>;
  /** Byte offset of the tensor data in the file (8 + header length). */
  dataStart: number;
}

/** Raised for a file that is not a well-formed safetensors file; the message names the file and the fault. */
export class SafetensorsError extends Error {
  override name = "SafetensorsError";
}

/** Refuses absurd headers before decoding them (real adapter headers are a few KiB to a few MiB). */
export const maxHeaderBytes = 100 * 1024 * 1024;

const entrySchema = z.object({
  dtype: z.string(),
  shape: z.array(z.number().int().nonnegative()),
  data_offsets: z.tuple([z.number().int().nonnegative(), z.number().int().nonnegative()]),
});
const metadataSchema = z.record(z.string(), z.string());

/** The fault of a file that ends before its 8-byte header length does. */
export const tooShort = (file: string, bytes: number) =>
  new SafetensorsError(`${file}: file is ${bytes} bytes, too short for the 8-byte header length; upload a safetensors file`);

/** The fault of a header length past the end of a file of `bytes` bytes (or past the 100 MB any header may take). */
export const headerPastEnd = (file: string, declared: number, bytes: number) =>
  new SafetensorsError(`${file}: header length ${declared} exceeds the ${bytes - 8} bytes after it; the file is truncated or not a safetensors file`);

/**
 * Decodes a header (the JSON after the 8-byte length) and checks each entry on its own: dtype, and byte range
 * against shape × dtype size. Where the ranges lie in the data section is checkDataSection's, once its length is
 * known (a streamed file's only at its end).
 */
export function decodeSafetensorsHeader(json: Uint8Array, file: string): SafetensorsHeader {
  const fail = (msg: string): never => {
    throw new SafetensorsError(`${file}: ${msg}`);
  };
  let raw: unknown;
  try {
    raw = JSON.parse(new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(json));
  } catch {
    return fail(`header is not valid UTF-8 JSON; the file is corrupt or not a safetensors file`);
  }
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) fail("header must be a JSON object of tensor name → {dtype, shape, data_offsets}");

  const tensors = new Map<string, TensorInfo>();
  let metadata: Record<string, string> = {};
  for (const [name, value] of Object.entries(raw as Record<string, unknown>)) {
    if (name === "__metadata__") {
      const m = metadataSchema.safeParse(value);
      if (!m.success) fail("__metadata__ must map strings to strings");
      metadata = m.data!;
      continue;
    }
    const e = entrySchema.safeParse(value);
    if (!e.success) {
      const { param, message } = describeIssue(e.error.issues[0], "tensor entry");
      return fail(`${name}: ${param ?? "entry"}: ${message}; each tensor needs dtype, shape and data_offsets [start, end]`);
    }
    const { dtype, shape, data_offsets } = e.data;
    if (!(dtype in dtypeBytes)) fail(`${name} has dtype ${dtype}; save LoRA weights as ${Object.keys(dtypeBytes).join(", ")}`);
    const [start, end] = data_offsets;
    const expected = shape.reduce((a, b) => a * b, 1) * dtypeBytes[dtype as SafetensorsDtype];
    // A range that ends before it starts is named by checkDataSection, as one outside the data.
    if (start <= end && end - start !== expected) {
      fail(`${name} spans ${end - start} bytes but shape [${shape.join(",")}] of ${dtype} needs ${expected}`);
    }
    tensors.set(name, { dtype: dtype as SafetensorsDtype, shape, offsets: [start, end] });
  }
  return { tensors, metadata, dataStart: 8 + json.length };
}

/** Checks that the tensors' byte ranges lie inside a data section of `dataLen` bytes and tile it exactly. */
export function checkDataSection(header: SafetensorsHeader, dataLen: number, file: string): void {
  const fail = (msg: string): never => {
    throw new SafetensorsError(`${file}: ${msg}`);
  };
  for (const [name, t] of header.tensors) {
    const [start, end] = t.offsets;
    if (start > end || end > dataLen) fail(`${name} has data_offsets [${start},${end}] outside the ${dataLen} data bytes`);
  }
  // The format requires the ranges to cover the data section with no gap or overlap.
  const ranges = [...header.tensors.entries()].sort((a, b) => a[1].offsets[0] - b[1].offsets[0] || a[1].offsets[1] - b[1].offsets[1]);
  let pos = 0;
  for (const [name, t] of ranges) {
    if (t.offsets[0] !== pos) {
      fail(`${name} starts at byte ${t.offsets[0]} but the previous tensor ends at ${pos}; tensor data must be contiguous without overlaps`);
    }
    pos = t.offsets[1];
  }
  if (pos !== dataLen) fail(`tensors end at byte ${pos} but the data section has ${dataLen} bytes; the file is truncated or padded`);
}
