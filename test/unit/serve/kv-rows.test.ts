// The continuous batch's KV rows: prompts adopted from a prefill cache, steps appended, rows moved,
// growth and shrinking all keep each row's keys/values packed in order at slots [0, lens[r]), and the mask
// marks exactly those slots.
import { describe, expect, it } from "vitest";
import type { ModelConfig } from "../../../gpu-runner/src/engine/model/config.js";
import { KvCache } from "../../../gpu-runner/src/engine/runtime/kv-cache.js";
import { RowKv } from "../../../gpu-runner/src/serve/kv-rows.js";

const cfg = { layers: 2, kvHeads: 2, headDim: 3 } as ModelConfig;
const d = cfg.headDim;

/** The live key vectors of one row, layer and head, slot order (a value tags row, position and head). */
function liveKeys(kv: RowKv, row: number, layer: number, head: number): number[] {
  for (let s = 0; s < kv.capacity; s++) expect(kv.mask[row * kv.capacity + s]).toBe(s < kv.lens[row] ? 1 : 0);
  return Array.from({ length: kv.lens[row] }, (_, s) => kv.keys[layer][((row * cfg.kvHeads + head) * kv.capacity + s) * d]);
}

/** A prefill cache with `lens[b]` real tokens left-padded in row b; key value = 1000·tag + 10·pos + head. */
function prefill(lens: number[], tags: number[]): KvCache {
  const T = Math.max(...lens);
  const c = new KvCache(cfg, lens.length, T);
  const mask = new Uint8Array(lens.length * T);
  const keys = [0, 1].map(() => new Float32Array(lens.length * cfg.kvHeads * T * d));
  lens.forEach((len, b) => {
    for (let t = T - len; t < T; t++) {
      mask[b * T + t] = 1;
      for (let h = 0; h < cfg.kvHeads; h++) for (const k of keys) k.fill(1000 * tags[b] + 10 * (t - (T - len)) + h, ((b * cfg.kvHeads + h) * T + t) * d, ((b * cfg.kvHeads + h) * T + t + 1) * d);
    }
  });
  c.append(keys, keys, mask, T);
  return c;
}

/** One decode step for rows 0..n-1 with key value 1000·tag + 10·pos + head. */
function step(kv: RowKv, tags: number[], pos: number[]): void {
  const n = tags.length;
  kv.reserve(n, 1);
  const keys = [0, 1].map(() => new Float32Array(n * cfg.kvHeads * d));
  for (let r = 0; r < n; r++) for (let h = 0; h < cfg.kvHeads; h++) for (const k of keys) k.fill(1000 * tags[r] + 10 * pos[r] + h, (r * cfg.kvHeads + h) * d, (r * cfg.kvHeads + h + 1) * d);
  kv.appendStep(n, keys, keys, new Uint8Array(n).fill(1));
}

const expected = (tag: number, len: number, head: number) => Array.from({ length: len }, (_, p) => 1000 * tag + 10 * p + head);

describe("RowKv", () => {
  it("keeps every row's tokens through joins, steps, moves, growth and shrinking", () => {
    const kv = new RowKv(cfg, 3, 256, "float32", 8);
    const p1 = prefill([3, 5], [1, 2]);
    kv.adoptPrefill(0, p1, 0);
    kv.adoptPrefill(1, p1, 1);
    expect([...kv.lens]).toEqual([3, 5, 0]);
    const lens = [3, 5];
    const tags = [1, 2];
    for (let i = 0; i < 6; i++) {
      step(kv, tags, lens);
      lens[0]++;
      lens[1]++;
    }
    // A third sequence joins late with a long prompt (forces growth), then row 0 leaves.
    kv.adoptPrefill(2, prefill([20], [3]), 0);
    tags.push(3);
    lens.push(20);
    for (let i = 0; i < 30; i++) {
      step(kv, tags, lens);
      lens.forEach((_, r) => lens[r]++);
    }
    expect(kv.capacity).toBe(64); // the longest row holds 50 slots
    kv.moveRow(2, 0);
    kv.clearRow(2);
    tags.splice(0, 1, 3);
    tags.pop();
    lens.splice(0, 1, lens[2]);
    lens.pop();
    for (let r = 0; r < 2; r++) for (let layer = 0; layer < 2; layer++) for (let h = 0; h < 2; h++) expect(liveKeys(kv, r, layer, h)).toEqual(expected(tags[r], lens[r], h));
    expect(liveKeys(kv, 2, 0, 0)).toEqual([]);
    // Both remaining rows finish; a short newcomer shrinks the buffer to what it needs.
    kv.clear();
    kv.adoptPrefill(0, prefill([2], [9]), 0);
    for (let i = 0; i < 5; i++) step(kv, [9], [2 + i]);
    expect(kv.capacity).toBe(8);
    expect(liveKeys(kv, 0, 1, 1)).toEqual(expected(9, 7, 1));
    expect(liveKeys(kv, 1, 0, 0)).toEqual([]);
  });

  it("writes each row at its own length, and skips rows whose new_mask is 0", () => {
    const kv = new RowKv(cfg, 2, 64, "float32", 8);
    const p = prefill([2, 6], [1, 2]);
    kv.adoptPrefill(0, p, 0);
    kv.adoptPrefill(1, p, 1);
    kv.reserve(2, 1);
    const keys = [0, 1].map(() => new Float32Array(2 * cfg.kvHeads * d).fill(7));
    kv.appendStep(2, keys, keys, Uint8Array.of(0, 1));
    expect([...kv.lens]).toEqual([2, 7]);
    expect(liveKeys(kv, 1, 0, 0)).toEqual([...expected(2, 6, 0), 7]);
    expect(liveKeys(kv, 0, 0, 0)).toEqual(expected(1, 2, 0));
  });

  it("keeps whole capacities when the largest is not a power of two", () => {
    const kv = new RowKv(cfg, 2, 258, "float32", 64);
    kv.adoptPrefill(0, prefill([200], [1]), 0);
    for (let i = 0; i < 57; i++) step(kv, [1], [200 + i]);
    expect(kv.capacity).toBe(258);
    kv.clearRow(0);
    kv.adoptPrefill(0, prefill([5], [2]), 0);
    kv.reserve(1, 1);
    expect(kv.capacity).toBe(64);
    expect(liveKeys(kv, 0, 0, 1)).toEqual(expected(2, 5, 1));
  });

  it("refuses more than its largest capacity", () => {
    const kv = new RowKv(cfg, 1, 16, "float32", 8);
    expect(() => kv.adoptPrefill(0, prefill([17], [1]), 0)).toThrow(/largest capacity 16/);
    kv.adoptPrefill(0, prefill([16], [1]), 0);
    expect(() => kv.reserve(1, 1)).toThrow(/17 slots exceed the largest capacity 16/);
  });
});
