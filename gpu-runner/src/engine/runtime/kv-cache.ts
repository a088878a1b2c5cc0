// The KV cache of one batch, held in JS: per layer one preallocated batch-major buffer
// [B, kvHeads, capacity, headDim]. The whole buffer is fed as the past (no copy in; unused slots are
// masked), attention reads it in place (q·Kᵀ as a transposed matmul), and each step's new keys and
// values come back as small [B, kvHeads, T, headDim] outputs written in with TypedArray.set.
// Attention reads every slot of the buffer, so it starts small and grows in steps of GROW_SLOTS
// up to maxCapacity (a large max_tokens costs nothing until it is used).
import type { ModelConfig } from "../model/config.js";
import { pastNames } from "../model/names.js";
import { ort } from "./session.js";
import type { FloatArray } from "../graph/types.js";


/** Slots added per growth: a copy every GROW_SLOTS steps, at most GROW_SLOTS unused slots read. */
export const GROW_SLOTS = 64;

export class KvCache {
  /** Number of filled time slots. */
  length = 0;
  /** Current slots per row; the buffers below are replaced when the cache grows. */
  capacity: number;
  keys: FloatArray[];
  values: FloatArray[];
  /** [B, capacity] — 1 where a slot holds a real token of that row, 0 for padding or unused. */
  mask: Uint8Array;
  private readonly empty: FloatArray;

  constructor(
    readonly cfg: ModelConfig,
    readonly batch: number,
    initialCapacity: number,
    readonly dtype: "float32" | "float64" = "float32",
    /** The most slots the cache may grow to (default: the initial capacity). */
    readonly maxCapacity = initialCapacity,
  ) {
    this.capacity = Math.min(initialCapacity, maxCapacity);
    this.keys = this.alloc(this.capacity);
    this.values = this.alloc(this.capacity);
    this.mask = new Uint8Array(batch * this.capacity);
    this.empty = this.make(0);
  }

  private make(n: number): FloatArray {
    return this.dtype === "float64" ? new Float64Array(n) : new Float32Array(n);
  }

  private alloc(capacity: number): FloatArray[] {
    return Array.from({ length: this.cfg.layers }, () => this.make(this.batch * this.cfg.kvHeads * capacity * this.cfg.headDim));
  }

  /** Re-lays the filled slots into buffers with room for `needed` slots plus GROW_SLOTS. */
  private grow(needed: number): void {
    const cap = Math.min(this.maxCapacity, needed + GROW_SLOTS);
    const { kvHeads, headDim: d } = this.cfg;
    const n = this.length * d;
    const move = (old: FloatArray[]) =>
      this.alloc(cap).map((buf, i) => {
        for (let bh = 0; bh < this.batch * kvHeads; bh++) buf.set(old[i].subarray(bh * this.capacity * d, bh * this.capacity * d + n), bh * cap * d);
        return buf;
      });
    this.keys = move(this.keys);
    this.values = move(this.values);
    const mask = new Uint8Array(this.batch * cap);
    for (let b = 0; b < this.batch; b++) mask.set(this.mask.subarray(b * this.capacity, b * this.capacity + this.length), b * cap);
    this.mask = mask;
    this.capacity = cap;
  }

  /** Makes room for `slots` more slots before a run whose new keys and values arrive only at its end (a decode loop). */
  reserve(slots: number): void {
    if (this.length + slots > this.maxCapacity) {
      throw new Error(`KV cache: ${this.length} + ${slots} slots exceed the capacity ${this.maxCapacity}; allocate a larger cache`);
    }
    if (this.length + slots > this.capacity) this.grow(this.length + slots);
  }

  /**
   * Feeds for the past of every layer, cache_mask, and new_mask ([B, T] row-major, 1 = real token)
   * for the `T` tokens about to run. An empty cache is fed with zero slots so a prefill skips it.
   */
  feeds(newMask: Uint8Array, T: number): Record<string, ort.Tensor> {
    if (this.length + T > this.maxCapacity) {
      throw new Error(`KV cache: ${this.length} + ${T} slots exceed the capacity ${this.maxCapacity}; allocate a larger cache`);
    }
    if (this.length + T > this.capacity) this.grow(this.length + T);
    if (newMask.length !== this.batch * T) throw new Error(`KV cache: new_mask has ${newMask.length} entries, expected B·T = ${this.batch * T}`);
    const C = this.length === 0 ? 0 : this.capacity;
    const dims = [this.batch, this.cfg.kvHeads, C, this.cfg.headDim];
    const out: Record<string, ort.Tensor> = {};
    for (let i = 0; i < this.cfg.layers; i++) {
      const n = pastNames(i);
      out[n.key] = new ort.Tensor(this.dtype, (C ? this.keys[i] : this.empty) as never, dims);
      out[n.value] = new ort.Tensor(this.dtype, (C ? this.values[i] : this.empty) as never, dims);
    }
    out.cache_mask = new ort.Tensor("bool", C ? this.mask : this.mask.subarray(0, 0), [this.batch, C]);
    out.new_mask = new ort.Tensor("bool", newMask, [this.batch, T]);
    return out;
  }

  /** Writes the new [B, kvH, T, d] keys/values of every layer and their mask at slots [length, length+T). */
  append(presentKeys: FloatArray[], presentValues: FloatArray[], newMask: Uint8Array, T: number): void {
    const { kvHeads, headDim: d } = this.cfg;
    const P = this.length;
    for (let i = 0; i < this.cfg.layers; i++) {
      for (let bh = 0; bh < this.batch * kvHeads; bh++) {
        // One memcpy per (row, head): T·d contiguous values into slots [P, P+T).
        const src = bh * T * d;
        const dst = (bh * this.capacity + P) * d;
        this.keys[i].set(presentKeys[i].subarray(src, src + T * d), dst);
        this.values[i].set(presentValues[i].subarray(src, src + T * d), dst);
      }
    }
    for (let b = 0; b < this.batch; b++) this.mask.set(newMask.subarray(b * T, (b + 1) * T), b * this.capacity + P);
    this.length += T;
  }
}
