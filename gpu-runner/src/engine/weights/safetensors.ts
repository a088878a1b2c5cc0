// safetensors reader and writer: header validation, F32/F16/BF16 → Float32Array, and the byte ranges
// that let ONNX external data point straight into the file instead of copying weights into protobuf.
import { readFile, writeFile } from "node:fs/promises";
import { z } from "zod";

/** Bytes per element for the dtypes we read. */
const DTYPE_BYTES: Record<string, number> = { F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, BOOL: 1 };

export type SafetensorsTensorInfo = { dtype: string; shape: number[]; dataOffsets: [number, number] };
export type SafetensorsHeader = {
  /** Absolute byte offset of the data section (8 + header length). */
  dataStart: number;
  tensors: Record<string, SafetensorsTensorInfo>;
  metadata: Record<string, string>;
};

const entrySchema = z.object({
  dtype: z.string(),
  shape: z.array(z.number().int().nonnegative()),
  data_offsets: z.tuple([z.number().int().nonnegative(), z.number().int().nonnegative()]),
});
const metadataSchema = z.record(z.string(), z.string());

/** Parses and validates the header of a safetensors file held in `bytes` (pure; no file system). */
export function parseSafetensorsHeader(bytes: Uint8Array, fileName = "safetensors"): SafetensorsHeader {
  if (bytes.byteLength < 8) throw new Error(`${fileName}: file is ${bytes.byteLength} bytes, too short for the 8-byte header length`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLen = Number(view.getBigUint64(0, true));
  if (headerLen > bytes.byteLength - 8) {
    throw new Error(`${fileName}: header length ${headerLen} exceeds the file size ${bytes.byteLength}; the file is truncated or not safetensors`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + headerLen)));
  } catch (err) {
    throw new Error(`${fileName}: header is not valid JSON (${(err as Error).message})`);
  }
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) throw new Error(`${fileName}: header must be a JSON object`);
  const dataStart = 8 + headerLen;
  const dataLen = bytes.byteLength - dataStart;
  const tensors: Record<string, SafetensorsTensorInfo> = {};
  let metadata: Record<string, string> = {};
  for (const [name, value] of Object.entries(raw as Record<string, unknown>)) {
    if (name === "__metadata__") {
      const m = metadataSchema.safeParse(value);
      if (!m.success) throw new Error(`${fileName}: __metadata__ must map strings to strings`);
      metadata = m.data;
      continue;
    }
    const e = entrySchema.safeParse(value);
    if (!e.success) throw new Error(`${fileName}: tensor "${name}" needs dtype, shape and data_offsets [start, end] (${e.error.issues[0]?.message})`);
    const { dtype, shape, data_offsets: [start, end] } = e.data;
    const width = DTYPE_BYTES[dtype];
    if (width === undefined) throw new Error(`${fileName}: tensor "${name}" has unsupported dtype ${dtype}`);
    if (end < start) throw new Error(`${fileName}: tensor "${name}" data_offsets [${start}, ${end}] end before start`);
    if (end > dataLen) throw new Error(`${fileName}: tensor "${name}" data_offsets end ${end} is past the data section (${dataLen} bytes)`);
    const expected = shape.reduce((a, b) => a * b, 1) * width;
    if (end - start !== expected) {
      throw new Error(`${fileName}: tensor "${name}" has ${end - start} bytes but shape [${shape}] × ${dtype} needs ${expected}`);
    }
    tensors[name] = { dtype, shape, dataOffsets: [start, end] };
  }
  // Overlap check: sort by start and compare neighbours.
  const spans = Object.entries(tensors).sort((a, b) => a[1].dataOffsets[0] - b[1].dataOffsets[0]);
  for (let i = 1; i < spans.length; i++) {
    const [prevName, prev] = spans[i - 1];
    const [name, cur] = spans[i];
    if (cur.dataOffsets[0] < prev.dataOffsets[1] && cur.dataOffsets[1] > cur.dataOffsets[0]) {
      throw new Error(`${fileName}: tensors "${prevName}" and "${name}" overlap in the data section`);
    }
  }
  return { dataStart, tensors, metadata };
}

/** IEEE half → float (bit-exact, including subnormals, inf and NaN). */
function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 31) return frac ? NaN : sign * Infinity;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

/** Decodes one tensor's raw little-endian bytes to float32 (load time only, not a hot path). */
export function decodeToFloat32(raw: Uint8Array, dtype: string, name: string): Float32Array {
  const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  switch (dtype) {
    case "F32": {
      const out = new Float32Array(raw.byteLength / 4);
      new Uint8Array(out.buffer).set(raw);
      return out;
    }
    case "F64": {
      const out = new Float32Array(raw.byteLength / 8);
      for (let i = 0; i < out.length; i++) out[i] = view.getFloat64(i * 8, true);
      return out;
    }
    case "F16": {
      const out = new Float32Array(raw.byteLength / 2);
      for (let i = 0; i < out.length; i++) out[i] = halfToFloat(view.getUint16(i * 2, true));
      return out;
    }
    case "BF16": {
      // bf16 is the top half of a float32: shift the bits into place.
      const out = new Float32Array(raw.byteLength / 2);
      const bits = new Uint32Array(out.buffer);
      for (let i = 0; i < out.length; i++) bits[i] = view.getUint16(i * 2, true) << 16;
      return out;
    }
    default:
      throw new Error(`tensor "${name}": dtype ${dtype} cannot be read as float; expected F32, F16 or BF16`);
  }
}

export interface SafetensorsFile {
  path: string;
  /** The whole file; F32 tensors are handed to ONNX Runtime as external data from these bytes. */
  bytes: Uint8Array;
  header: SafetensorsHeader;
  names(): string[];
  has(name: string): boolean;
  shape(name: string): number[];
  dtype(name: string): string;
  /** Absolute [start, end) byte range of a tensor inside `bytes`. */
  byteRange(name: string): [number, number];
  tensor(name: string): Float32Array;
}

/** Reads a safetensors file and validates its header. */
export async function readSafetensors(path: string): Promise<SafetensorsFile> {
  const buf = await readFile(path);
  const bytes = new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
  const header = parseSafetensorsHeader(bytes, path);
  const info = (name: string): SafetensorsTensorInfo => {
    const t = header.tensors[name];
    if (!t) throw new Error(`${path}: no tensor named "${name}"`);
    return t;
  };
  const byteRange = (name: string): [number, number] => {
    const [s, e] = info(name).dataOffsets;
    return [header.dataStart + s, header.dataStart + e];
  };
  return {
    path,
    bytes,
    header,
    names: () => Object.keys(header.tensors).sort(),
    has: (name) => name in header.tensors,
    shape: (name) => [...info(name).shape],
    dtype: (name) => info(name).dtype,
    byteRange,
    tensor: (name) => {
      const [s, e] = byteRange(name);
      return decodeToFloat32(bytes.subarray(s, e), info(name).dtype, name);
    },
  };
}

export type TensorToWrite = { dtype?: "F32"; shape: number[]; data: Float32Array };

/** Encodes float32 tensors as safetensors: names sorted, no gaps, header space-padded to 8 bytes. */
export function encodeSafetensors(tensors: Record<string, TensorToWrite>, metadata?: Record<string, string>): Uint8Array {
  const names = Object.keys(tensors).sort();
  const header: Record<string, unknown> = {};
  if (metadata) header.__metadata__ = metadata;
  let offset = 0;
  for (const name of names) {
    const t = tensors[name];
    const count = t.shape.reduce((a, b) => a * b, 1);
    if (count !== t.data.length) throw new Error(`safetensors: tensor "${name}" has ${t.data.length} values but shape [${t.shape}] needs ${count}`);
    header[name] = { dtype: "F32", shape: t.shape, data_offsets: [offset, offset + t.data.byteLength] };
    offset += t.data.byteLength;
  }
  let json = JSON.stringify(header);
  const enc = new TextEncoder();
  const pad = (8 - (enc.encode(json).byteLength % 8)) % 8;
  json += " ".repeat(pad);
  const headerBytes = enc.encode(json);
  const out = new Uint8Array(8 + headerBytes.byteLength + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerBytes.byteLength), true);
  out.set(headerBytes, 8);
  let pos = 8 + headerBytes.byteLength;
  for (const name of names) {
    const d = tensors[name].data;
    out.set(new Uint8Array(d.buffer, d.byteOffset, d.byteLength), pos);
    pos += d.byteLength;
  }
  return out;
}

/** Writes float32 tensors to a safetensors file. */
export async function writeSafetensors(path: string, tensors: Record<string, TensorToWrite>, metadata?: Record<string, string>): Promise<void> {
  await writeFile(path, encodeSafetensors(tensors, metadata));
}
