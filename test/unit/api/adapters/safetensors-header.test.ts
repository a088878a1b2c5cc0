import { describe, expect, it } from "vitest";
import { SafetensorsError } from "../../../../api/src/adapters/safetensors-header.js";
import { parseSafetensorsHeader } from "../../../../api/src/adapters/safetensors-stream.js";
import { buildSafetensors, readFixture } from "./build.js";

const parse = (b: Uint8Array) => parseSafetensorsHeader(b, "x.safetensors");
const expectFault = (b: Uint8Array, pattern: RegExp) => {
  expect(() => parse(b)).toThrow(SafetensorsError);
  expect(() => parse(b)).toThrow(pattern);
};

describe("parseSafetensorsHeader", () => {
  it("reads the fixture adapter: 28 tensors, metadata, contiguous data", () => {
    const bytes = readFixture("micro-llama", "adapter_model.safetensors");
    const h = parse(bytes);
    expect(h.tensors.size).toBe(28);
    expect(h.metadata).toEqual({ format: "pt" });
    const t = h.tensors.get("base_model.model.model.layers.0.mlp.down_proj.lora_A.weight")!;
    expect(t).toEqual({ dtype: "F32", shape: [8, 172], offsets: [0, 5504] });
    expect(h.dataStart).toBe(8 + 3488);
  });

  it("accepts F16 and BF16 and a zero-size tensor", () => {
    const h = parse(buildSafetensors([{ name: "a", dtype: "F16", shape: [2, 3] }, { name: "b", dtype: "BF16", shape: [4] }, { name: "z", shape: [0, 5] }]));
    expect(h.tensors.get("a")!.offsets).toEqual([0, 12]);
    expect(h.tensors.get("b")!.offsets).toEqual([12, 20]);
  });

  it("refuses a file shorter than the length prefix", () => {
    expectFault(new Uint8Array(5), /x\.safetensors: file is 5 bytes, too short/);
  });

  it("refuses a header length past the end of the file", () => {
    const b = buildSafetensors([{ name: "a", shape: [2] }]);
    new DataView(b.buffer).setBigUint64(0, 1n << 40n, true);
    expectFault(b, /header length 1099511627776 exceeds/);
  });

  it("refuses a header that is not JSON", () => {
    const b = buildSafetensors([{ name: "a", shape: [2] }]);
    b[8] = 0x7a; // 'z' instead of '{'
    expectFault(b, /not valid UTF-8 JSON/);
  });

  it("refuses a JSON array as header", () => {
    const json = "[]      ";
    const b = new Uint8Array(8 + json.length);
    new DataView(b.buffer).setBigUint64(0, BigInt(json.length), true);
    b.set(new TextEncoder().encode(json), 8);
    expectFault(b, /header must be a JSON object/);
  });

  it("refuses an unsupported dtype", () => {
    expectFault(buildSafetensors([{ name: "a", dtype: "I64", shape: [2] }]), /a has dtype I64; save LoRA weights as F32, F16, BF16/);
  });

  it("refuses an entry without data_offsets", () => {
    expectFault(buildSafetensors([{ name: "a", shape: [2] }], { headerPatch: (h) => delete (h.a as Record<string, unknown>).data_offsets }), /a: data_offsets: missing; this field is required/);
  });

  it("refuses a byte range that does not match shape × dtype", () => {
    const b = buildSafetensors([{ name: "a", shape: [2, 2] }], { headerPatch: (h) => ((h.a as { shape: number[] }).shape = [2, 3]) });
    expectFault(b, /a spans 16 bytes but shape \[2,3\] of F32 needs 24/);
  });

  it("refuses offsets outside the data", () => {
    const b = buildSafetensors([{ name: "a", shape: [2] }], { headerPatch: (h) => ((h.a as { data_offsets: number[] }).data_offsets = [8, 16]) });
    expectFault(b, /data_offsets \[8,16\] outside the 8 data bytes/);
  });

  it("refuses a gap or an overlap between tensors", () => {
    const gap = buildSafetensors([{ name: "a", shape: [2] }, { name: "b", shape: [2] }], {
      extraData: 4,
      headerPatch: (h) => ((h.b as { data_offsets: number[] }).data_offsets = [12, 20]),
    });
    expectFault(gap, /b starts at byte 12 but the previous tensor ends at 8/);
    const overlap = buildSafetensors([{ name: "a", shape: [2] }, { name: "b", shape: [2] }], { headerPatch: (h) => ((h.b as { data_offsets: number[] }).data_offsets = [0, 8]) });
    expectFault(overlap, /starts at byte 0 but the previous tensor ends at 8/);
  });

  it("refuses trailing bytes after the last tensor", () => {
    expectFault(buildSafetensors([{ name: "a", shape: [2] }], { extraData: 3 }), /tensors end at byte 8 but the data section has 11 bytes/);
  });

  it("refuses non-string metadata", () => {
    expectFault(buildSafetensors([{ name: "a", shape: [2] }], { headerPatch: (h) => (h.__metadata__ = { n: 1 }) }), /__metadata__ must map strings to strings/);
  });
});
