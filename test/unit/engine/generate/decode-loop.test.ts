// The greedy decode loop (many steps in one session.run) against one decoder step per token on the micro-llama
// fixture: the same tokens, texts, finish reasons and streamed pieces, and the same cache afterwards.
import { readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { generate, LOOP_STEPS, type GenerateRequest } from "../../../../gpu-runner/src/engine/generate/generator.js";
import { LoadedModel } from "../../../../gpu-runner/src/engine/runtime/loaded-model.js";
import { GROW_SLOTS } from "../../../../gpu-runner/src/engine/runtime/kv-cache.js";
import { fixturesDir } from "../../../helpers/fixtures.js";

const FX = `${fixturesDir}/micro-llama`;
const ref = JSON.parse(readFileSync(`${FX}/reference.json`, "utf8"));
const letters = { decode: (ids: number[]) => ids.map((i) => String.fromCharCode(97 + (i % 26))).join("") };

describe("generate with the decode loop", () => {
  let model: LoadedModel;
  beforeAll(async () => {
    model = await LoadedModel.load(`${FX}/base`, { adapter: `${FX}/adapter`, decodeLoop: true });
  });
  afterAll(async () => model?.release());

  /** The same requests with and without the loop, each token's callback recorded. */
  async function both(reqs: GenerateRequest[]) {
    const run = async (loop: boolean) => {
      const heard: string[] = [];
      const r = await generate(model.session, reqs, { loraFeeds: model.loraFeeds(), tokenizer: letters, decodeLoop: loop ? model.decodeLoop : null, onToken: (b, t, text) => heard.push(`${b}:${t}:${text}`) });
      return { ...r, heard };
    };
    return { stepped: await run(false), looped: await run(true) };
  }

  it("gives the stepped tokens for a padded batch of mixed adapters and lengths, over several runs and a cache growth", async () => {
    const reqs = [
      { tokens: ref.greedy_prompt, maxTokens: 12, adapterSlot: 1 },
      { tokens: ref.input_ids[1].slice(0, 3), maxTokens: LOOP_STEPS + GROW_SLOTS + 5, adapterSlot: 0 },
      { tokens: ref.input_ids[0].slice(0, 5), maxTokens: 40, adapterSlot: 1 },
    ];
    const runs = vi.spyOn(model.decodeLoop!, "run");
    const { stepped, looped } = await both(reqs);
    // The longest row takes LOOP_STEPS + GROW_SLOTS + 4 = 100 tokens after the prefill's: runs of 32, 32, 32 and 4.
    expect(runs).toHaveBeenCalledTimes(4);
    runs.mockRestore();
    expect(looped.results).toEqual(stepped.results);
    expect(looped.results[0].tokens).toEqual(ref.greedy_tokens);
    expect(looped.heard).toEqual(stepped.heard);
    expect(looped.timings.decodeSteps).toBe(stepped.timings.decodeSteps);
  });

  it("ends rows at their own stop tokens and stop strings as the stepped run does", async () => {
    const full = letters.decode(ref.greedy_tokens);
    const reqs = [
      { tokens: ref.greedy_prompt, maxTokens: 12, adapterSlot: 1, stopTokens: [ref.greedy_tokens[5]] },
      { tokens: ref.greedy_prompt, maxTokens: 12, adapterSlot: 1, stop: [full.slice(3, 5)] },
      { tokens: ref.input_ids[1].slice(0, 4), maxTokens: 30, adapterSlot: 0, stopTokens: [255] },
    ];
    const { stepped, looped } = await both(reqs);
    expect(looped.results).toEqual(stepped.results);
    expect(looped.results[0].finishReason).toBe("stop");
    expect(looped.results[0].tokens).toEqual(ref.greedy_tokens.slice(0, ref.greedy_tokens.indexOf(ref.greedy_tokens[5])));
    expect(looped.results[1].text).toBe(full.slice(0, 3));
    expect(looped.heard).toEqual(stepped.heard);
  });

  it("ends a row at a stop string that spans two loop runs, with hidden tokens and a continued prompt, as the stepped run does", async () => {
    const long = { tokens: ref.input_ids[0].slice(0, 5), maxTokens: 60, adapterSlot: 1 };
    const tokens: number[] = (await generate(model.session, [long], { loraFeeds: model.loraFeeds() })).results[0].tokens;
    // The prefill picks tokens[0] and the first run tokens[1..LOOP_STEPS]: the stop string's first letter comes
    // from that run and the rest from the next. The shortest such string not found earlier in the text.
    const text = letters.decode(tokens);
    const stop = [2, 3, 4, 5, 6, 7, 8].map((n) => text.slice(LOOP_STEPS, LOOP_STEPS + n)).find((s) => text.indexOf(s) === LOOP_STEPS)!;
    expect(stop).toBeDefined();
    const hidden = new Set([tokens[2], tokens[LOOP_STEPS + 1]]);
    const reqs = [
      { ...long, stop: [stop], continuesPrompt: true },
      { ...long, maxTokens: 50, hiddenTokens: hidden, stop: [stop], stopTokens: [tokens[45]] },
      { tokens: ref.greedy_prompt, maxTokens: 12, adapterSlot: 0, stop: ["zz"], continuesPrompt: true },
    ];
    const { stepped, looped } = await both(reqs);
    expect(looped.results).toEqual(stepped.results);
    expect(looped.heard).toEqual(stepped.heard);
    expect(looped.results[0]).toMatchObject({ finishReason: "stop", text: text.slice(0, LOOP_STEPS) });
  });

  it("ends a row only at its own stop ids, not at another row's pick or stop ids", async () => {
    // Row 0 is done after the prefill; rows 0 and 1 would go on with ref.greedy_tokens, which row 2 stops at.
    const stopAt = ref.greedy_tokens.slice(1, 4);
    const reqs = [
      { tokens: ref.greedy_prompt, maxTokens: 1, adapterSlot: 1, stopTokens: [] },
      { tokens: ref.greedy_prompt, maxTokens: 12, adapterSlot: 1 },
      { tokens: ref.input_ids[1].slice(0, 4), maxTokens: 30, adapterSlot: 0, stopTokens: stopAt },
    ];
    const { stepped, looped } = await both(reqs);
    expect(looped.results).toEqual(stepped.results);
    expect(looped.heard).toEqual(stepped.heard);
    expect(looped.results[1].tokens).toEqual(ref.greedy_tokens);
  });

  it("leaves the loop to the stepped path while a row samples, and the results stay the same", async () => {
    const reqs = [
      { tokens: ref.greedy_prompt, maxTokens: 10, adapterSlot: 1 },
      { tokens: ref.input_ids[1], maxTokens: 9, adapterSlot: 1, temperature: 0.8, seed: 5 },
      { tokens: ref.input_ids[0].slice(0, 6), maxTokens: 8, adapterSlot: 0, logitBias: { "7": 3 } },
    ];
    const { stepped, looped } = await both(reqs);
    expect(looped.results).toEqual(stepped.results);
  });

  it("leaves a cache from which the next step's logits equal the stepped cache's", async () => {
    const req = { tokens: ref.input_ids[0].slice(0, 6) as number[], maxTokens: 20, adapterSlot: 1 };
    const feeds = model.loraFeeds()([1]);
    const tokens = (await generate(model.session, [req], { loraFeeds: model.loraFeeds() })).results[0].tokens;
    const logitsAfter = async (loop: boolean) => {
      const cache = model.session.newCache(1, 64);
      const ids = (xs: number[]) => BigInt64Array.from(xs, BigInt);
      const T = req.tokens.length;
      await model.session.step(cache, { ids: ids(req.tokens), positions: ids(req.tokens.map((_, i) => i)), mask: new Uint8Array(T).fill(1), T }, feeds);
      // Feed tokens[0..18] (19 steps), by the loop or one step each, then one more step to read the logits.
      if (loop) {
        const picks = await model.decodeLoop!.run(cache, { ids: ids([tokens[0]]), positions: ids([T]), live: Uint8Array.of(1), stopIds: [[]], budget: [19] }, 19, feeds);
        expect(picks.map((p) => p[0])).toEqual(tokens.slice(1, 20));
      } else {
        for (let s = 0; s < 19; s++) await model.session.step(cache, { ids: ids([tokens[s]]), positions: ids([T + s]), mask: Uint8Array.of(1), T: 1 }, feeds);
      }
      expect(cache.length).toBe(T + 19);
      return Float32Array.from(await model.session.step(cache, { ids: ids([tokens[19]]), positions: ids([T + 19]), mask: Uint8Array.of(1), T: 1 }, feeds));
    };
    const a = await logitsAfter(false);
    const b = await logitsAfter(true);
    expect(Math.max(...a.map((v, i) => Math.abs(v - b[i])))).toBeLessThan(1e-5);
  });
});
