// The greedy decode loop against one decoder step per token on other models and loadings than decode-loop.test.ts's:
// micro-qwen2 (q/k/v bias, tied embeddings, GQA), a merged adapter (no LoRA inputs), no adapter, one adapter for
// every row (LoRA inputs with leading dim 1), rows already done when a loop run starts, and a random model with as
// many kv heads as query heads (no GQA: the attention mask is not folded over the query groups).
import { readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { generate, type GenerateRequest } from "../../../../gpu-runner/src/engine/generate/generator.js";
import { DecoderSession } from "../../../../gpu-runner/src/engine/runtime/decoder-session.js";
import { DecodeLoopSession } from "../../../../gpu-runner/src/engine/runtime/decode-loop-session.js";
import { LoadedModel, type LoadModelOptions } from "../../../../gpu-runner/src/engine/runtime/loaded-model.js";
import { getPreset } from "../../../../bench/presets.js";
import { writeRandomAdapter, writeRandomModel } from "../../../../bench/random-model.js";
import { fixturesDir } from "../../../helpers/fixtures.js";

const letters = { decode: (ids: number[]) => ids.map((i) => String.fromCharCode(97 + (i % 26))).join("") };

/** The same requests with and without the loop, each token's callback recorded. */
async function both(model: LoadedModel, reqs: GenerateRequest[]) {
  const run = async (loop: boolean) => {
    const heard: string[] = [];
    const r = await generate(model.session, reqs, { loraFeeds: model.loraFeeds(), tokenizer: letters, decodeLoop: loop ? model.decodeLoop : null, onToken: (b, t, text) => heard.push(`${b}:${t}:${text}`) });
    return { results: r.results, heard };
  };
  return { stepped: await run(false), looped: await run(true) };
}

describe.each([
  ["micro-qwen2 with its adapter", "micro-qwen2", { adapter: "adapter" }],
  ["micro-qwen2 without an adapter", "micro-qwen2", {}],
  ["micro-llama with its adapter merged", "micro-llama", { adapter: "adapter", merge: true }],
  ["micro-llama without an adapter", "micro-llama", {}],
])("the decode loop on %s", (_name, fixture, o: { adapter?: string; merge?: boolean }) => {
  const FX = `${fixturesDir}/${fixture}`;
  const ref = JSON.parse(readFileSync(`${FX}/reference.json`, "utf8"));
  let model: LoadedModel;
  beforeAll(async () => {
    const opts: LoadModelOptions = { adapter: o.adapter ? `${FX}/${o.adapter}` : undefined, merge: o.merge, decodeLoop: true };
    model = await LoadedModel.load(`${FX}/base`, opts);
  });
  afterAll(async () => model?.release());

  it("gives the stepped tokens for a padded batch of different lengths and max_tokens", async () => {
    const slot = model.defaultSlot;
    const reqs = [
      { tokens: ref.greedy_prompt, maxTokens: 12, adapterSlot: slot },
      { tokens: ref.input_ids[1].slice(0, 3), maxTokens: 45, adapterSlot: 0 },
      { tokens: ref.input_ids[0].slice(0, 5), maxTokens: 7, adapterSlot: slot },
    ];
    const { stepped, looped } = await both(model, reqs);
    expect(looped.results).toEqual(stepped.results);
    expect(looped.heard).toEqual(stepped.heard);
    expect(looped.results[0].tokens).toEqual(o.adapter ? ref.greedy_tokens : ref.greedy_tokens_base);
  });

  it("gives the stepped tokens when every row uses one slot, and with rows done before the loop starts", async () => {
    const slot = model.defaultSlot;
    const reqs = [
      { tokens: ref.greedy_prompt, maxTokens: 1, adapterSlot: slot },
      { tokens: ref.input_ids[1].slice(0, 6), maxTokens: 20, adapterSlot: slot, stopTokens: [] },
      { tokens: ref.input_ids[0].slice(0, 4), maxTokens: 2, adapterSlot: slot },
    ];
    const { stepped, looped } = await both(model, reqs);
    expect(looped.results).toEqual(stepped.results);
    expect(looped.heard).toEqual(stepped.heard);
    expect(looped.results.map((r) => r.tokens.length)).toEqual([1, 20, 2]);
  });
});

describe("the decode loop on a model without GQA (kv heads = heads)", () => {
  let dir: string;
  let model: LoadedModel;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "tuneserve-loop-mha-"));
    const p = { ...getPreset("micro"), kvHeads: 4 };
    await writeRandomModel(join(dir, "base"), p, { seed: 11 });
    await writeRandomAdapter(join(dir, "adapter"), p, { seed: 12, bStd: 0.2 });
    model = await LoadedModel.load(join(dir, "base"), { adapter: join(dir, "adapter"), decodeLoop: true });
    expect(model.cfg.kvHeads).toBe(model.cfg.heads);
  });
  afterAll(async () => {
    await model?.release();
    await rm(dir, { recursive: true, force: true });
  });

  it("gives the stepped tokens for a padded batch of mixed adapters", async () => {
    const reqs = [
      { tokens: [5, 17, 200, 3, 9], maxTokens: 40, adapterSlot: 1 },
      { tokens: [42, 7], maxTokens: 25, adapterSlot: 0 },
      { tokens: [1, 2, 3, 4, 5, 6, 7, 8], maxTokens: 3, adapterSlot: 1 },
    ];
    const { stepped, looped } = await both(model, reqs);
    expect(looped.results).toEqual(stepped.results);
    expect(looped.heard).toEqual(stepped.heard);
  });
});

describe("loading the decode loop", () => {
  const base = `${fixturesDir}/micro-llama/base`;

  it("refuses float64 before it builds a session, which would be left unreleased", async () => {
    const create = vi.spyOn(DecoderSession, "create");
    try {
      await expect(LoadedModel.load(base, { dtype: "float64", decodeLoop: true })).rejects.toThrow(/float32 only/);
      expect(create).not.toHaveBeenCalled();
    } finally {
      create.mockRestore();
    }
  });

  it("releases the decoder session when the loop's session cannot be built", async () => {
    const create = vi.spyOn(DecodeLoopSession, "create").mockRejectedValue(new Error("no room for a second session"));
    const release = vi.spyOn(DecoderSession.prototype, "release");
    try {
      await expect(LoadedModel.load(base, { decodeLoop: true })).rejects.toThrow(/no room/);
      expect(release).toHaveBeenCalledTimes(1);
    } finally {
      create.mockRestore();
      release.mockRestore();
    }
  });

  it("releases the loop's session with the model", async () => {
    const model = await LoadedModel.load(base, { decodeLoop: true });
    const release = vi.spyOn(model.decodeLoop!, "release");
    await model.release();
    expect(release).toHaveBeenCalledTimes(1);
  });

  it("releases the loop's session when the decoder session's release fails", async () => {
    const model = await LoadedModel.load(base, { decodeLoop: true });
    const loopRelease = vi.spyOn(model.decodeLoop!, "release");
    const failing = vi.spyOn(model.session, "release").mockRejectedValueOnce(new Error("release failed"));
    await expect(model.release()).rejects.toThrow(/release failed/);
    expect(loopRelease).toHaveBeenCalledTimes(1);
    failing.mockRestore();
    await model.session.release();
  });

  it("generate refuses a decode loop beside a float64 session before it runs anything", async () => {
    const f64 = await LoadedModel.load(base, { dtype: "float64" });
    const f32 = await LoadedModel.load(base, { decodeLoop: true });
    try {
      const reqs = [{ tokens: [1, 2, 3], maxTokens: 4 }];
      await expect(generate(f64.session, reqs, { decodeLoop: f32.decodeLoop })).rejects.toThrow(/generate: the decode loop works in float32 only/);
    } finally {
      await f64.release();
      await f32.release();
    }
  });
});
