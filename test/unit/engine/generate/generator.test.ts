// The generation loop on the micro-llama fixture: batching with padding equals one-by-one runs,
// seeded sampling repeats, stop tokens and stop strings end a row, max tokens bounds it.
import { readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { generate } from "../../../../gpu-runner/src/engine/generate/generator.js";
import { LoadedModel } from "../../../../gpu-runner/src/engine/runtime/loaded-model.js";
import { GROW_SLOTS } from "../../../../gpu-runner/src/engine/runtime/kv-cache.js";
import { computeLogits } from "../../../../gpu-runner/src/engine/runtime/logits.js";
import { fixturesDir } from "../../../helpers/fixtures.js";

const FX = `${fixturesDir}/micro-llama`;
const ref = JSON.parse(readFileSync(`${FX}/reference.json`, "utf8"));
/** A stand-in text decoder for stop strings: token id → one letter (the fixture has no tokenizer.json). */
const letters = { decode: (ids: number[]) => ids.map((i) => String.fromCharCode(97 + (i % 26))).join("") };

describe("generate", () => {
  let model: LoadedModel;
  beforeAll(async () => {
    model = await LoadedModel.load(`${FX}/base`, { adapter: `${FX}/adapter` });
  });
  afterAll(async () => model?.release());
  const run = (reqs: Parameters<typeof generate>[1], tokenizer?: typeof letters) => generate(model.session, reqs, { loraFeeds: model.loraFeeds(), tokenizer });

  it("a padded batch with mixed adapters and lengths equals each row alone", async () => {
    const reqs = [
      { tokens: ref.greedy_prompt, maxTokens: 12, adapterSlot: 1 },
      { tokens: ref.input_ids[1].slice(0, 3), maxTokens: 7, adapterSlot: 0 },
      { tokens: ref.input_ids[1], maxTokens: 9, adapterSlot: 1, temperature: 0.8, seed: 5 },
    ];
    const batched = await run(reqs);
    expect(batched.results[0].tokens).toEqual(ref.greedy_tokens);
    for (let i = 0; i < reqs.length; i++) {
      const alone = await run([reqs[i]]);
      expect(batched.results[i].tokens).toEqual(alone.results[0].tokens);
      expect(batched.results[i].tokens).toHaveLength(reqs[i].maxTokens);
      expect(batched.results[i].finishReason).toBe("length");
    }
    expect(batched.timings.decodeSteps).toBe(11);
  });

  it("every cached decode step of a padded batch equals a full recompute, also after the cache grows", async () => {
    // Row 0 runs past GROW_SLOTS new tokens, so the cache is re-laid out mid-generation.
    const reqs = [
      { tokens: ref.input_ids[0].slice(0, 4), maxTokens: GROW_SLOTS + 6, adapterSlot: 1 },
      { tokens: ref.input_ids[1].slice(0, 9), maxTokens: 6, adapterSlot: 0 },
    ];
    const steps: Float32Array[] = [];
    const { results } = await generate(model.session, reqs, { loraFeeds: model.loraFeeds(), onLogits: (l) => steps.push(Float32Array.from(l)) });
    const full = await LoadedModel.load(`${FX}/base`, { logits: "all", adapter: `${FX}/adapter` });
    try {
      let m = 0;
      for (let b = 0; b < 2; b++) {
        const seq = [...reqs[b].tokens, ...results[b].tokens];
        const all = (await computeLogits(full.session, [seq], { adapterIndex: [reqs[b].adapterSlot], loraFeeds: full.loraFeeds() }))[0];
        steps.slice(0, reqs[b].maxTokens).forEach((l, s) => {
          const want = all[reqs[b].tokens.length - 1 + s];
          for (let v = 0; v < 256; v++) m = Math.max(m, Math.abs(l[b * 256 + v] - want[v]));
        });
      }
      expect(steps).toHaveLength(GROW_SLOTS + 6);
      expect(m).toBeLessThan(1e-5);
    } finally {
      await full.release();
    }
  });

  it("sampling with a seed repeats, and different seeds diverge", async () => {
    const req = (seed: number) => ({ tokens: ref.greedy_prompt, maxTokens: 16, temperature: 1.5, topK: 50, topP: 0.95, seed, adapterSlot: 1 });
    const a = await run([req(1)]);
    const b = await run([req(1)]);
    expect(a.results[0].tokens).toEqual(b.results[0].tokens);
    const others = await Promise.all([2, 3, 4].map((s) => run([req(s)])));
    expect(others.some((o) => o.results[0].tokens.join() !== a.results[0].tokens.join())).toBe(true);
  });

  it("stops at a stop token without emitting it", async () => {
    const stopAt = ref.greedy_tokens[2];
    const r = await run([{ tokens: ref.greedy_prompt, maxTokens: 12, adapterSlot: 1, stopTokens: [stopAt] }]);
    expect(r.results[0].tokens).toEqual(ref.greedy_tokens.slice(0, 2));
    expect(r.results[0].finishReason).toBe("stop");
  });

  it("stops at a stop string and cuts the text before it", async () => {
    const full = letters.decode(ref.greedy_tokens);
    const stop = full.slice(3, 5);
    const r = await run([{ tokens: ref.greedy_prompt, maxTokens: 12, adapterSlot: 1, stop: [stop] }], letters);
    expect(r.results[0].text).toBe(full.slice(0, full.indexOf(stop)));
    expect(r.results[0].finishReason).toBe("stop");
    const plain = await run([{ tokens: ref.greedy_prompt, maxTokens: 12, adapterSlot: 1 }], letters);
    expect(plain.results[0].text).toBe(full);
  });

  it("rejects bad requests by name", async () => {
    await expect(run([{ tokens: [1, 999], maxTokens: 2 }])).rejects.toThrow(/token 999 is outside the vocabulary 0..255/);
    await expect(run([{ tokens: [1], maxTokens: 0 }])).rejects.toThrow(/max_tokens=0/);
    await expect(run([{ tokens: [1], maxTokens: 2, stop: ["x"] }])).rejects.toThrow(/stop strings need a tokenizer/);
    await expect(run([{ tokens: [1], maxTokens: 2, adapterSlot: 5 }])).rejects.toThrow(/adapter slot 5 is out of range/);
  });
});
