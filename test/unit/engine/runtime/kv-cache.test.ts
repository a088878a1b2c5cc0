// KvCache bookkeeping: appends land at the right (row, head, slot), the mask follows, growth keeps
// the filled slots, and the capacity limit is enforced.
import { describe, expect, it } from "vitest";
import { parseModelConfig } from "../../../../gpu-runner/src/engine/model/config.js";
import { KvCache } from "../../../../gpu-runner/src/engine/runtime/kv-cache.js";

const cfg = parseModelConfig({
  architectures: ["LlamaForCausalLM"], hidden_size: 8, intermediate_size: 8, num_hidden_layers: 1,
  num_attention_heads: 2, num_key_value_heads: 2, head_dim: 2, vocab_size: 10,
});

/** present tensor [B=2, kvH=2, T, d=2] whose value encodes (row, head, step, dim). */
const present = (T: number, step0: number) =>
  Float32Array.from({ length: 2 * 2 * T * 2 }, (_, i) => {
    const dd = i % 2, t = Math.floor(i / 2) % T, h = Math.floor(i / (2 * T)) % 2, b = Math.floor(i / (4 * T));
    return 1000 * b + 100 * h + 10 * (step0 + t) + dd;
  });

describe("KvCache", () => {
  it("appends, grows and keeps every filled slot in place", () => {
    const cache = new KvCache(cfg, 2, 3, "float32", 200);
    cache.append([present(3, 0)], [present(3, 0)], Uint8Array.from([0, 1, 1, 1, 1, 1]), 3);
    for (let s = 3; s < 80; s++) {
      const mask = Uint8Array.from([1, s % 2]);
      const feeds = cache.feeds(mask, 1); // may grow
      expect(feeds["past_key.0"].dims).toEqual([2, 2, cache.capacity, 2]);
      cache.append([present(1, s)], [present(1, s)], mask, 1);
    }
    expect(cache.length).toBe(80);
    expect(cache.capacity).toBeGreaterThanOrEqual(80);
    const C = cache.capacity;
    for (const [b, h, s, dd] of [[0, 0, 0, 0], [1, 1, 2, 1], [1, 0, 57, 1], [0, 1, 79, 0]]) {
      expect(cache.keys[0][((b * 2 + h) * C + s) * 2 + dd]).toBe(1000 * b + 100 * h + 10 * s + dd);
    }
    expect(cache.mask[0]).toBe(0); // row 0's first prompt slot was padding
    expect(cache.mask[1 * C + 4]).toBe(0); // row 1 at step 4 was masked
    expect(cache.mask[1 * C + 5]).toBe(1);
    expect(cache.mask[80]).toBe(0); // beyond length
  });

  it("feeds an empty past before the first step and refuses to pass maxCapacity", () => {
    const cache = new KvCache(cfg, 2, 4, "float32", 5);
    expect(cache.feeds(new Uint8Array(8), 4)["past_key.0"].dims).toEqual([2, 2, 0, 2]);
    cache.append([present(4, 0)], [present(4, 0)], new Uint8Array(8).fill(1), 4);
    expect(() => cache.feeds(new Uint8Array(4), 2)).toThrow(/exceed the capacity 5/);
    expect(() => cache.feeds(new Uint8Array(3), 1)).toThrow(/new_mask has 3 entries, expected B·T = 2/);
  });

  it("reserves room for a run's slots before they arrive: grows in place, then refuses past maxCapacity", () => {
    const cache = new KvCache(cfg, 2, 4, "float32", 40);
    cache.append([present(3, 0)], [present(3, 0)], new Uint8Array(6).fill(1), 3);
    cache.reserve(1); // fits: no growth
    expect(cache.capacity).toBe(4);
    cache.reserve(30);
    expect(cache.capacity).toBe(40); // 3 + 30 + GROW_SLOTS, capped at maxCapacity
    const C = cache.capacity;
    expect(cache.keys[0][((1 * 2 + 1) * C + 2) * 2 + 1]).toBe(1000 + 100 + 20 + 1);
    cache.append([present(30, 3)], [present(30, 3)], new Uint8Array(60).fill(1), 30);
    expect(cache.keys[0][((1 * 2 + 0) * C + 32) * 2]).toBe(1000 + 320);
    expect(() => cache.reserve(8)).toThrow(/33 \+ 8 slots exceed the capacity 40/);
    cache.reserve(7);
  });
});
