// The continuous batch's KV rows: prompts adopted from a prefill cache, steps appended, rows moved,
// compaction and capacity changes all keep each row's live keys/values (in order) and mask nothing else.
import { describe, expect, it } from "vitest";
import type { ModelConfig } from "../../../gpu-runner/src/engine/model/config.js";
import { KvCache } from "../../../gpu-runner/src/engine/runtime/kv-cache.js";
import { RowKv } from "../../../gpu-runner/src/serve/kv-rows.js";

const cfg = { layers: 2, kvHeads: 2, headDim: 3 } as ModelConfig;
const d = cfg.headDim;

/** The live key vectors of one row, layer and head, slot order (a value tags row, position and head). */
function liveKeys(kv: RowKv, row: number, layer: number, head: number): number[] {
  const out: number[] = [];
  for (let s = 0; s < kv.length; s++) {
    if (!kv.mask[row * kv.capacity + s]) continue;
    out.push(kv.keys[layer][((row * cfg.kvHeads + head) * kv.capacity + s) * d]);
  }
  return out;
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
  it("keeps every row's tokens through joins, steps, moves, compaction, growth and shrinking", () => {
    const kv = new RowKv(cfg, 3, 256, "float32", 8);
    const p1 = prefill([3, 5], [1, 2]);
    kv.adoptPrefill(0, p1, 0);
    kv.adoptPrefill(1, p1, 1);
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
    expect(kv.capacity).toBeGreaterThan(8);
    kv.moveRow(2, 0);
    kv.clearRow(2);
    tags.splice(0, 1, 3);
    tags.pop();
    lens.splice(0, 1, lens[2]);
    lens.pop();
    for (let r = 0; r < 2; r++) for (let layer = 0; layer < 2; layer++) for (let h = 0; h < 2; h++) expect(liveKeys(kv, r, layer, h)).toEqual(expected(tags[r], lens[r], h));
    // Both remaining rows finish: compaction to nothing, and a short newcomer shrinks the buffer again.
    kv.compact(0);
    expect(kv.length).toBe(0);
    const big = kv.capacity;
    kv.adoptPrefill(0, prefill([2], [9]), 0);
    for (let i = 0; i < big; i++) step(kv, [9], [2 + i]);
    expect(liveKeys(kv, 0, 1, 1)).toEqual(expected(9, 2 + big, 1));
    for (let s = kv.length; s < kv.capacity; s++) expect(kv.mask[s]).toBe(0);
    for (let s = 0; s < kv.capacity; s++) expect(kv.mask[kv.capacity + s]).toBe(0);
  });

  it("refuses more than its largest capacity", () => {
    const kv = new RowKv(cfg, 1, 16, "float32", 8);
    expect(() => kv.adoptPrefill(0, prefill([17], [1]), 0)).toThrow(/largest capacity 16/);
  });
});
