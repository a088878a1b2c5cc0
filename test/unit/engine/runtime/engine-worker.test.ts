// The worker thread host: the same results as in-thread generation, streamed tokens, logits with
// transferred buffers, adapter slots loaded on request, and errors carried back as rejections.
import { readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EngineWorker } from "../../../../gpu-runner/src/engine/runtime/engine-worker.js";
import { fixturesDir } from "../../../helpers/fixtures.js";

const FX = `${fixturesDir}/micro-llama`;
const ref = JSON.parse(readFileSync(`${FX}/reference.json`, "utf8"));

describe("EngineWorker", () => {
  const worker = new EngineWorker();
  afterAll(async () => worker.close());
  let handle: number;
  beforeAll(async () => {
    handle = (await worker.load(`${FX}/base`, { slots: 3 })).handle;
  });

  it("generates in the worker, streaming each token", async () => {
    await worker.loadAdapter(handle, 2, `${FX}/adapter`);
    const streamed: number[] = [];
    const { results, timings } = await worker.generate(handle, [{ tokens: ref.greedy_prompt, maxTokens: 12, adapterSlot: 2 }], (row, token) => {
      expect(row).toBe(0);
      streamed.push(token);
    });
    expect(results[0].tokens).toEqual(ref.greedy_tokens);
    expect(streamed).toEqual(ref.greedy_tokens);
    expect(timings.decodeSteps).toBe(11);
    const base = await worker.generate(handle, [{ tokens: ref.greedy_prompt, maxTokens: 12, adapterSlot: 0 }]);
    expect(base.results[0].tokens).toEqual(ref.greedy_tokens_base);
  });

  it("returns full logits without padding", async () => {
    const all = await worker.load(`${FX}/base`, { logits: "all", adapter: `${FX}/adapter` });
    const logits = await worker.logits(all.handle, [ref.input_ids[0].slice(0, 5), ref.input_ids[1]], [1, 1]);
    expect(logits.map((r) => r.length)).toEqual([5, 16]);
    let m = 0;
    ref.logits_first2[1][1].forEach((v: number, i: number) => (m = Math.max(m, Math.abs(logits[1][1][i] - v))));
    expect(m).toBeLessThan(1e-4);
    await worker.unload(all.handle);
  });

  it("reports errors from the worker as rejections", async () => {
    await expect(worker.load("/nonexistent/model")).rejects.toThrow(/config.json: not found/);
    await expect(worker.generate(999, [{ tokens: [1], maxTokens: 1 }])).rejects.toThrow(/no model with handle 999/);
    // The worker survives errors.
    const ok = await worker.generate(handle, [{ tokens: [1, 2], maxTokens: 2 }]);
    expect(ok.results[0].tokens).toHaveLength(2);
  });
});
