// The streamed check of adapter_model.safetensors: fed in chunks of any size (headers, lengths and tensors
// straddling chunk boundaries), it accepts and refuses exactly what the whole-file validateAdapter does, with the
// same messages, while holding at most the header.
import { describe, expect, it } from "vitest";
import { adapterFacts, AdapterWeightsCheck, parseAdapterConfig, validateAdapter } from "../../../../api/src/adapters/validate.js";
import { ApiError } from "../../../../api/src/errors.js";
import { buildSafetensors, llamaSummary, readFixture } from "./build.js";

const goodWeights = readFixture("micro-llama", "adapter_model.safetensors");
const goodConfig = readFixture("micro-llama", "adapter_config.json");
const headerLength = (b: Uint8Array) => Number(new DataView(b.buffer, b.byteOffset).getBigUint64(0, true));

/** What the whole-file validator says: the facts, or the refusal's param and message. */
function whole(weights: Uint8Array) {
  try {
    return { facts: validateAdapter(goodConfig, weights, llamaSummary, 64) };
  } catch (e) {
    if (!(e instanceof ApiError)) throw e;
    return { param: e.param, message: e.message };
  }
}

/** The same through the streamed check, fed `chunk` bytes at a time; also reports the most bytes it kept at once. */
function streamed(weights: Uint8Array, chunk: number) {
  const { config, targets } = parseAdapterConfig(goodConfig, 64);
  const check = new AdapterWeightsCheck(llamaSummary);
  let facts;
  try {
    for (let i = 0; i < weights.length; i += chunk) {
      const header = check.push(weights.subarray(i, i + chunk));
      if (header) facts = adapterFacts(header, config, targets, llamaSummary);
    }
    const header = check.end();
    facts ??= adapterFacts(header, config, targets, llamaSummary);
    return { result: { facts }, held: check.mostHeld };
  } catch (e) {
    if (!(e instanceof ApiError)) throw e;
    return { result: { param: e.param, message: e.message }, held: check.mostHeld };
  }
}

const withHeaderPadded = (to: number) => {
  const n = headerLength(goodWeights);
  const out = new Uint8Array(goodWeights.length - n + to).fill(0x20);
  new DataView(out.buffer).setBigUint64(0, BigInt(to), true);
  out.set(goodWeights.subarray(8, 8 + n), 8);
  out.set(goodWeights.subarray(8 + n), 8 + to);
  return out;
};
const padded = new Uint8Array(goodWeights.length + 4);
padded.set(goodWeights);
const corrupt = goodWeights.slice();
corrupt[10] = 0xff;

const cases: [string, Uint8Array][] = [
  ["the fixture adapter", goodWeights],
  ["a truncated file (its last tensor cut short)", goodWeights.subarray(0, goodWeights.length - 4)],
  ["a padded file (bytes after the last tensor)", padded],
  ["a file cut inside its header", goodWeights.subarray(0, 100)],
  ["a file shorter than the length prefix", goodWeights.subarray(0, 5)],
  ["an empty file", new Uint8Array(0)],
  ["a corrupted header", corrupt],
  ["the qwen2 adapter", readFixture("micro-qwen2", "adapter_model.safetensors")],
  ["a header over what the base model needs", withHeaderPadded(1024 * 1024)],
  ["a text file", new TextEncoder().encode('{"messages":[{"role":"user","content":"hi"}]}\n')],
  ["a lone tensor of the wrong name", buildSafetensors([{ name: "a", shape: [2] }])],
];

describe("AdapterWeightsCheck", () => {
  for (const [what, bytes] of cases) {
    it(`says what validateAdapter says of ${what}, whatever the chunks`, () => {
      const want = whole(bytes);
      for (const chunk of [1, 3, 8, 13, 4096, bytes.length || 1]) expect(streamed(bytes, chunk).result, `chunks of ${chunk}`).toEqual(want);
    });
  }

  it("keeps no more than the header, however long the data", () => {
    const n = headerLength(goodWeights);
    const { result, held } = streamed(goodWeights, 1000);
    expect(result.facts?.tensorCount).toBe(28);
    // The 8-byte length and the header, plus at most the one chunk that completed them.
    expect(held).toBeLessThanOrEqual(8 + n + 1000);
    expect(goodWeights.length).toBeGreaterThan(8 + n + 10 * 1000);
  });

  it("only counts the rest of a file whose header is over the bound", () => {
    const { held } = streamed(withHeaderPadded(1024 * 1024), 4096);
    expect(held).toBeLessThanOrEqual(8 + 4096);
  });
});
