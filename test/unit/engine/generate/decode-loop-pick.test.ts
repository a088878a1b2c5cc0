// The decode loop's pick (ONNX ArgMax in model/decode-loop.ts) against sampling.ts's greedy pick on the same rows:
// ties, masked (−Infinity) logits, and the invalid values the stepped path refuses.
import { readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Graph, op } from "../../../../gpu-runner/src/engine/graph/index.js";
import { sampleToken } from "../../../../gpu-runner/src/engine/generate/sampling.js";
import { generate } from "../../../../gpu-runner/src/engine/generate/generator.js";
import { LoadedModel } from "../../../../gpu-runner/src/engine/runtime/loaded-model.js";
import type { ort } from "../../../../gpu-runner/src/engine/runtime/session.js";
import { fixturesDir } from "../../../helpers/fixtures.js";
import { runGraph } from "../graph/run.js";

const greedy = (row: number[]) => sampleToken(Float32Array.from(row), { temperature: 0 }, { next: () => 0.5 });

async function argMax(row: number[]): Promise<number> {
  const g = new Graph("pick");
  g.output(op.argMax(g.input("logits", "float32", [1, row.length]), -1, true), "picked");
  return (await runGraph(g, { logits: { shape: [1, row.length], data: row } })).picked.data[0];
}

describe("the decode loop's ArgMax and the greedy pick", () => {
  it.each([
    ["ties", [0.5, 2, -1, 2, 2]],
    ["−Infinity logits", [-Infinity, -3, -Infinity, -3, -7]],
    ["a max after −Infinity", [-Infinity, -Infinity, 1e-30, -Infinity]],
    ["the largest finite float32", [3.4028234663852886e38, 3.4028234663852886e38, 0]],
    ["signed zeros", [-0, 0, -1]],
    ["a subnormal above zero", [0, 1.401298464324817e-45, -0]],
  ])("agree on %s", async (_n, row) => {
    expect(await argMax(row)).toBe(greedy(row));
  });
});

describe("a model whose logits turn invalid mid-generation", () => {
  const FX = `${fixturesDir}/micro-llama`;
  const ref = JSON.parse(readFileSync(`${FX}/reference.json`, "utf8"));
  let model: LoadedModel;
  beforeAll(async () => {
    model = await LoadedModel.load(`${FX}/base`, { adapter: `${FX}/adapter`, decodeLoop: true });
  });
  afterAll(async () => model?.release());

  // The rows' adapter slots differ, so the batch's LoRA inputs are its own copies: once the prefill's tokens are
  // taken they are filled with NaN, and every later step's logits are NaN.
  it.each([false, true])("fails as the greedy pick does (decode loop: %s)", async (loop) => {
    let feeds: Record<string, ort.Tensor> = {};
    const reqs = [0, 1].map((slot) => ({ tokens: ref.greedy_prompt as number[], maxTokens: 6, adapterSlot: slot }));
    const run = generate(model.session, reqs, {
      loraFeeds: (slots) => (feeds = model.loraFeeds()(slots)),
      decodeLoop: loop ? model.decodeLoop : null,
      onToken: () => Object.values(feeds).forEach((t) => (t.data as Float32Array).fill(NaN)),
    });
    await expect(run).rejects.toThrow(/invalid values/);
  });
});
