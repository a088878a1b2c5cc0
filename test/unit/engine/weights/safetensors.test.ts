// safetensors: round trip, the fixture layout, dtype conversion and header validation errors.
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { decodeToFloat32, encodeSafetensors, parseSafetensorsHeader, readSafetensors, writeSafetensors } from "../../../../gpu-runner/src/engine/weights/safetensors.js";
import { fixturesDir } from "../../../helpers/fixtures.js";

/** Builds a file from a raw header object and a data section. */
function rawFile(header: unknown, data: Uint8Array): Uint8Array {
  const json = new TextEncoder().encode(JSON.stringify(header));
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}

describe("safetensors", () => {
  it("round-trips tensors, sorts names and pads the header to 8 bytes with spaces", async () => {
    const a = Float32Array.from([1, -2.5, 3e-8, 4, 5, 6]);
    const b = Float32Array.from([7]);
    const bytes = encodeSafetensors({ "z.w": { shape: [2, 3], data: a }, "a.b": { shape: [1], data: b } }, { format: "pt" });
    const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
    expect(n % 8).toBe(0);
    const headerText = new TextDecoder().decode(bytes.subarray(8, 8 + n));
    expect(headerText.trimEnd().length).toBeLessThanOrEqual(n);
    expect(headerText.indexOf('"a.b"')).toBeLessThan(headerText.indexOf('"z.w"'));
    const h = parseSafetensorsHeader(bytes);
    expect(h.dataStart).toBe(8 + n);
    expect(h.metadata).toEqual({ format: "pt" });
    expect(h.tensors["a.b"].dataOffsets).toEqual([0, 4]);
    expect(h.tensors["z.w"]).toEqual({ dtype: "F32", shape: [2, 3], dataOffsets: [4, 28] });
    const dir = mkdtempSync(join(tmpdir(), "st-"));
    await writeSafetensors(join(dir, "m.safetensors"), { "z.w": { shape: [2, 3], data: a }, "a.b": { shape: [1], data: b } });
    const f = await readSafetensors(join(dir, "m.safetensors"));
    expect(f.names()).toEqual(["a.b", "z.w"]);
    expect(Array.from(f.tensor("z.w"))).toEqual(Array.from(a));
    expect(f.shape("z.w")).toEqual([2, 3]);
  });

  it("reads the fixture model with its documented layout", async () => {
    const f = await readSafetensors(`${fixturesDir}/micro-llama/base/model.safetensors`);
    expect(f.header.metadata).toEqual({ format: "pt" });
    expect(f.shape("model.embed_tokens.weight")).toEqual([256, 64]);
    expect(f.shape("model.layers.1.self_attn.k_proj.weight")).toEqual([32, 64]);
    expect(f.names()).toHaveLength(2 * 9 + 3);
    const norm = f.tensor("model.norm.weight");
    expect(norm).toHaveLength(64);
    // Norm weights are random values near 1.
    expect(Math.abs(norm.reduce((s, v) => s + v, 0) / 64 - 1)).toBeLessThan(0.5);
  });

  it("converts F16 and BF16 to float32 exactly", () => {
    // F16: 1.0 = 0x3c00, -2.0 = 0xc000, smallest subnormal 0x0001 = 2^-24, inf 0x7c00.
    const f16 = new Uint8Array(new Uint16Array([0x3c00, 0xc000, 0x0001, 0x7c00, 0x3555]).buffer);
    expect(Array.from(decodeToFloat32(f16, "F16", "t"))).toEqual([1, -2, 2 ** -24, Infinity, Math.fround(0.333251953125)]);
    // BF16: the high 16 bits of a float32.
    const src = Float32Array.from([1.5, -3.25, 1e-3]);
    const hi = new Uint16Array(new Uint32Array(src.buffer).map((b) => b >>> 16));
    const want = new Float32Array(new Uint32Array(src.buffer).map((b) => b & 0xffff0000).buffer);
    expect(Array.from(decodeToFloat32(new Uint8Array(hi.buffer), "BF16", "t"))).toEqual(Array.from(want));
    expect(() => decodeToFloat32(new Uint8Array(8), "I64", "ids")).toThrow(/ids.*I64/);
  });

  it.each([
    ["a file shorter than 8 bytes", new Uint8Array(4), /too short/],
    ["a header length past the end", (() => { const b = new Uint8Array(16); new DataView(b.buffer).setBigUint64(0, 100n, true); return b; })(), /exceeds the file size/],
    ["a header that is not JSON", (() => { const b = rawFile({}, new Uint8Array(0)); b[8] = 0x7b; b[9] = 0x7b; return b; })(), /not valid JSON/],
    ["offsets past the data", rawFile({ t: { dtype: "F32", shape: [2], data_offsets: [0, 8] } }, new Uint8Array(4)), /past the data section/],
    ["a size that does not match shape × dtype", rawFile({ t: { dtype: "F32", shape: [3], data_offsets: [0, 8] } }, new Uint8Array(8)), /shape \[3\] × F32 needs 12/],
    ["overlapping tensors", rawFile({ a: { dtype: "F32", shape: [2], data_offsets: [0, 8] }, b: { dtype: "F32", shape: [2], data_offsets: [4, 12] } }, new Uint8Array(12)), /overlap/],
    ["an unknown dtype", rawFile({ t: { dtype: "F8", shape: [1], data_offsets: [0, 1] } }, new Uint8Array(1)), /unsupported dtype F8/],
    ["a tensor entry without offsets", rawFile({ t: { dtype: "F32", shape: [1] } }, new Uint8Array(4)), /needs dtype, shape and data_offsets/],
  ])("rejects %s with a message naming it", (_what, bytes, msg) => {
    expect(() => parseSafetensorsHeader(bytes, "bad.safetensors")).toThrow(msg);
    expect(() => parseSafetensorsHeader(bytes, "bad.safetensors")).toThrow(/bad\.safetensors/);
  });
});
