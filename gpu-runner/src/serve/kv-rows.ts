// The KV cache of a continuous batch: one buffer per layer [R, kvH, C, d] whose rows are sequences that
// joined at different times. Row r's tokens sit packed in slots [0, lens[r]) and each decode step writes
// a row's new token at its own slot lens[r] (keys are cached after RoPE, so a token's slot need not be
// its position). Active rows are kept packed at the front, so a step feeds a zero-copy view of the first
// n rows. Every step reads all C slots of those rows (masked past each row's length), so C follows the
// longest live row: the next power-of-two size when a row needs more, smaller when the longest uses under
// a quarter of it.
// (Before, rows shared one write position that only a compaction reset, so C drifted up to the largest
// context: measured on the serving benchmark, 32 rows at C = 512 cost 2.0 ms a step against 1.2 ms at 128.)
import type { ModelConfig } from "../engine/model/config.js";
import { pastNames } from "../engine/model/names.js";
import type { KvCache } from "../engine/runtime/kv-cache.js";
import { ort } from "../engine/runtime/session.js";
import type { FloatArray } from "../engine/graph/types.js";


export class RowKv {
  /** Live slots of each row: its tokens are in slots [0, lens[r]). */
  readonly lens: Int32Array;
  keys: FloatArray[];
  values: FloatArray[];
  /** [R, C]: 1 where the slot holds a live token of that row (slots below lens[r]). */
  mask: Uint8Array;
  /** C, the time slots per row now. */
  capacity: number;

  constructor(
    readonly cfg: ModelConfig,
    readonly rows: number,
    readonly maxCapacity: number,
    readonly dtype: "float32" | "float64" = "float32",
    readonly minCapacity = Math.min(64, maxCapacity),
  ) {
    this.lens = new Int32Array(rows);
    this.capacity = this.minCapacity;
    this.keys = this.alloc(this.capacity);
    this.values = this.alloc(this.capacity);
    this.mask = new Uint8Array(rows * this.capacity);
  }

  private alloc(C: number): FloatArray[] {
    const size = this.rows * this.cfg.kvHeads * C * this.cfg.headDim;
    return Array.from({ length: this.cfg.layers }, () => (this.dtype === "float64" ? new Float64Array(size) : new Float32Array(size)));
  }

  /** Re-lays the buffers out with C slots per row (C ≥ every row's length), keeping each row's slots. */
  private resize(C: number): void {
    const { kvHeads, headDim: d } = this.cfg;
    const keys = this.alloc(C);
    const values = this.alloc(C);
    const mask = new Uint8Array(this.rows * C);
    for (let r = 0; r < this.rows; r++) {
      const L = this.lens[r] * d;
      if (L === 0) continue;
      for (let i = 0; i < this.cfg.layers; i++) {
        for (let h = r * kvHeads; h < (r + 1) * kvHeads; h++) {
          keys[i].set(this.keys[i].subarray(h * this.capacity * d, h * this.capacity * d + L), h * C * d);
          values[i].set(this.values[i].subarray(h * this.capacity * d, h * this.capacity * d + L), h * C * d);
        }
      }
      mask.fill(1, r * C, r * C + this.lens[r]);
    }
    this.keys = keys;
    this.values = values;
    this.mask = mask;
    this.capacity = C;
  }

  /** The longest of the first n rows. */
  longest(n: number): number {
    let m = 0;
    for (let r = 0; r < n; r++) m = Math.max(m, this.lens[r]);
    return m;
  }

  /** The capacity for `need` slots: the smallest minCapacity·2^k that holds them, at most maxCapacity. */
  private sizeFor(need: number): number {
    let C = this.minCapacity;
    while (C < need) C *= 2;
    return Math.min(C, this.maxCapacity);
  }

  /**
   * Makes room for `slots` more slots in each of the first n rows: grows to the next power-of-two size
   * (up to maxCapacity) when they do not fit, shrinks when the longest row would use under a quarter.
   */
  reserve(n: number, slots: number): void {
    const need = this.longest(n) + slots;
    if (need > this.maxCapacity) throw new Error(`row KV cache: ${need} slots exceed the largest capacity ${this.maxCapacity}`);
    if (need <= this.capacity && 4 * need > this.capacity) return;
    const C = this.sizeFor(need);
    if (C !== this.capacity) this.resize(C);
  }

  private get rowSize(): number {
    return this.cfg.kvHeads * this.capacity * this.cfg.headDim;
  }

  /** Past, cache_mask and new_mask feeds for a step of T tokens over the first n rows (views, no copy). */
  feeds(n: number, newMask: Uint8Array, T: number): Record<string, ort.Tensor> {
    if (this.longest(n) + T > this.capacity) throw new Error(`row KV cache: a row's ${this.longest(n)} + ${T} slots exceed the capacity ${this.capacity}; reserve first`);
    const dims = [n, this.cfg.kvHeads, this.capacity, this.cfg.headDim];
    const out: Record<string, ort.Tensor> = {};
    for (let i = 0; i < this.cfg.layers; i++) {
      const names = pastNames(i);
      out[names.key] = new ort.Tensor(this.dtype, this.keys[i].subarray(0, n * this.rowSize) as never, dims);
      out[names.value] = new ort.Tensor(this.dtype, this.values[i].subarray(0, n * this.rowSize) as never, dims);
    }
    out.cache_mask = new ort.Tensor("bool", this.mask.subarray(0, n * this.capacity), [n, this.capacity]);
    out.new_mask = new ort.Tensor("bool", newMask, [n, T]);
    return out;
  }

  /** Writes one decode step's [n, kvH, 1, d] keys/values of every row whose newMask is set at that row's next slot. */
  appendStep(n: number, presentKeys: FloatArray[], presentValues: FloatArray[], newMask: Uint8Array): void {
    const { kvHeads, headDim: d } = this.cfg;
    const C = this.capacity;
    for (let r = 0; r < n; r++) {
      if (!newMask[r]) continue;
      const P = this.lens[r];
      if (P >= C) throw new Error(`row KV cache: row ${r} is full (${C} slots); reserve first`);
      for (let i = 0; i < this.cfg.layers; i++) {
        const k = this.keys[i];
        const v = this.values[i];
        const pk = presentKeys[i];
        const pv = presentValues[i];
        for (let h = r * kvHeads; h < (r + 1) * kvHeads; h++) {
          k.set(pk.subarray(h * d, (h + 1) * d), (h * C + P) * d);
          v.set(pv.subarray(h * d, (h + 1) * d), (h * C + P) * d);
        }
      }
      this.mask[r * C + P] = 1;
      this.lens[r] = P + 1;
    }
  }

  /**
   * Moves the live slots of row `srcRow` of a prefill cache (in order, padding dropped) into row `row`
   * at slots [0, L); the row's previous occupant is gone.
   */
  adoptPrefill(row: number, src: KvCache, srcRow: number): void {
    const srcMask = src.mask.subarray(srcRow * src.capacity, srcRow * src.capacity + src.length);
    let L = 0;
    for (const m of srcMask) L += m;
    this.clearRow(row);
    if (L > this.capacity) {
      if (L > this.maxCapacity) throw new Error(`row KV cache: a prompt of ${L} slots exceeds the largest capacity ${this.maxCapacity}`);
      this.resize(this.sizeFor(L));
    }
    const { kvHeads, headDim: d } = this.cfg;
    let w = 0;
    for (let s = 0; s < src.length; ) {
      if (!srcMask[s]) {
        s++;
        continue;
      }
      let e = s;
      while (e < src.length && srcMask[e]) e++;
      // One run of live slots [s, e) → [w, w + e − s), per layer and head.
      for (let i = 0; i < this.cfg.layers; i++) {
        for (let h = 0; h < kvHeads; h++) {
          const from = (srcRow * kvHeads + h) * src.capacity * d;
          const to = (row * kvHeads + h) * this.capacity * d;
          this.keys[i].set(src.keys[i].subarray(from + s * d, from + e * d), to + w * d);
          this.values[i].set(src.values[i].subarray(from + s * d, from + e * d), to + w * d);
        }
      }
      w += e - s;
      s = e;
    }
    this.mask.fill(1, row * this.capacity, row * this.capacity + L);
    this.lens[row] = L;
  }

  /** Copies row `from` over row `to`: keeps active rows packed when one leaves. */
  moveRow(from: number, to: number): void {
    if (from === to) return;
    const { kvHeads, headDim: d } = this.cfg;
    const L = this.lens[from] * d;
    for (let i = 0; i < this.cfg.layers; i++) {
      for (let h = 0; h < kvHeads; h++) {
        const a = (from * kvHeads + h) * this.capacity * d;
        const b = (to * kvHeads + h) * this.capacity * d;
        this.keys[i].copyWithin(b, a, a + L);
        this.values[i].copyWithin(b, a, a + L);
      }
    }
    this.mask.copyWithin(to * this.capacity, from * this.capacity, (from + 1) * this.capacity);
    this.lens[to] = this.lens[from];
  }

  /** Empties `row` (it holds no sequence now). */
  clearRow(row: number): void {
    this.mask.fill(0, row * this.capacity, (row + 1) * this.capacity);
    this.lens[row] = 0;
  }

  /** Empties every row. */
  clear(): void {
    this.mask.fill(0);
    this.lens.fill(0);
  }
}
