// The KV cache of a continuous batch: one buffer per layer [R, kvH, C, d] whose rows are sequences that
// joined at different times. Active rows are kept packed at the front, so a decode step feeds a
// zero-copy view of the first n rows. A row's tokens may sit in any time slots (keys are cached after
// RoPE, so attention does not care about slot order); `length` is only the shared write position.
// Every step reads the whole [n, kvH, C, d] buffer, so C follows the longest live row (grown and shrunk
// by halves between maxCapacity and a floor) instead of sitting at the largest context ever allowed.
import type { ModelConfig } from "../engine/model/config.js";
import { pastNames } from "../engine/model/names.js";
import type { KvCache } from "../engine/runtime/kv-cache.js";
import { ort } from "../engine/runtime/session.js";

type FloatArray = Float32Array | Float64Array;

export class RowKv {
  /** Slots [0, length) may hold live tokens; every slot ≥ length is masked in every row. */
  length = 0;
  keys: FloatArray[];
  values: FloatArray[];
  /** [R, C]: 1 where the slot holds a live token of that row. */
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
    this.capacity = this.minCapacity;
    this.keys = this.alloc(this.capacity);
    this.values = this.alloc(this.capacity);
    this.mask = new Uint8Array(rows * this.capacity);
  }

  private alloc(C: number): FloatArray[] {
    const size = this.rows * this.cfg.kvHeads * C * this.cfg.headDim;
    return Array.from({ length: this.cfg.layers }, () => (this.dtype === "float64" ? new Float64Array(size) : new Float32Array(size)));
  }

  /** Re-lays the buffers out with C slots per row (C ≥ length), keeping slots [0, length). */
  private resize(C: number): void {
    const { kvHeads, headDim: d } = this.cfg;
    const keys = this.alloc(C);
    const values = this.alloc(C);
    const mask = new Uint8Array(this.rows * C);
    const L = this.length * d;
    for (let i = 0; i < this.cfg.layers; i++) {
      for (let rh = 0; rh < this.rows * kvHeads; rh++) {
        keys[i].set(this.keys[i].subarray(rh * this.capacity * d, rh * this.capacity * d + L), rh * C * d);
        values[i].set(this.values[i].subarray(rh * this.capacity * d, rh * this.capacity * d + L), rh * C * d);
      }
    }
    for (let r = 0; r < this.rows; r++) mask.set(this.mask.subarray(r * this.capacity, r * this.capacity + this.length), r * C);
    this.keys = keys;
    this.values = values;
    this.mask = mask;
    this.capacity = C;
  }

  /**
   * Makes room for `slots` more slots after `length` for the first n rows: compacts when full, grows by
   * doubling (up to maxCapacity), and halves when the rows use under a quarter of it.
   */
  reserve(n: number, slots: number): void {
    if (this.length + slots <= this.capacity) return;
    this.compact(n);
    let C = this.capacity;
    while (this.length + slots > C && C < this.maxCapacity) C = Math.min(this.maxCapacity, 2 * C);
    while (C / 2 >= this.minCapacity && 4 * (this.length + slots) <= C) C = C / 2;
    if (this.length + slots > C) throw new Error(`row KV cache: ${this.length} + ${slots} slots exceed the largest capacity ${this.maxCapacity}`);
    if (C !== this.capacity) this.resize(C);
  }

  private get rowSize(): number {
    return this.cfg.kvHeads * this.capacity * this.cfg.headDim;
  }

  /** Past, cache_mask and new_mask feeds for a step of T tokens over the first n rows (views, no copy). */
  feeds(n: number, newMask: Uint8Array, T: number): Record<string, ort.Tensor> {
    if (this.length + T > this.capacity) throw new Error(`row KV cache: ${this.length} + ${T} slots exceed the capacity ${this.capacity}; compact first`);
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

  /** Writes one decode step's [n, kvH, 1, d] keys/values at slot `length` of the first n rows. */
  appendStep(n: number, presentKeys: FloatArray[], presentValues: FloatArray[], newMask: Uint8Array): void {
    const { kvHeads, headDim: d } = this.cfg;
    const P = this.length;
    for (let i = 0; i < this.cfg.layers; i++) {
      for (let bh = 0; bh < n * kvHeads; bh++) {
        const dst = (bh * this.capacity + P) * d;
        this.keys[i].set(presentKeys[i].subarray(bh * d, (bh + 1) * d), dst);
        this.values[i].set(presentValues[i].subarray(bh * d, (bh + 1) * d), dst);
      }
    }
    for (let r = 0; r < n; r++) this.mask[r * this.capacity + P] = newMask[r];
    this.length++;
  }

  /**
   * Moves row `src` of a prefill cache (its slots [0, src.length)) into row `row` at slots
   * [0, src.length): the row's previous occupant is gone, so its slots are free; later slots are masked.
   */
  adoptPrefill(row: number, src: KvCache, srcRow: number): void {
    const T = src.length;
    if (T > this.capacity) {
      let C = this.capacity;
      while (C < T && C < this.maxCapacity) C = Math.min(this.maxCapacity, 2 * C);
      if (C < T) throw new Error(`row KV cache: a prompt of ${T} slots exceeds the largest capacity ${this.maxCapacity}`);
      this.resize(C);
    }
    const { kvHeads, headDim: d } = this.cfg;
    for (let i = 0; i < this.cfg.layers; i++) {
      for (let h = 0; h < kvHeads; h++) {
        const from = (srcRow * kvHeads + h) * src.capacity * d;
        const to = (row * kvHeads + h) * this.capacity * d;
        this.keys[i].set(src.keys[i].subarray(from, from + T * d), to);
        this.values[i].set(src.values[i].subarray(from, from + T * d), to);
      }
    }
    const m = this.mask.subarray(row * this.capacity, (row + 1) * this.capacity);
    m.fill(0);
    m.set(src.mask.subarray(srcRow * src.capacity, srcRow * src.capacity + T));
    this.length = Math.max(this.length, T);
  }

  /** Copies row `from` over row `to` (slots [0, length)): keeps active rows packed when one leaves. */
  moveRow(from: number, to: number): void {
    if (from === to) return;
    const { kvHeads, headDim: d } = this.cfg;
    const L = this.length * d;
    for (let i = 0; i < this.cfg.layers; i++) {
      for (let h = 0; h < kvHeads; h++) {
        const a = (from * kvHeads + h) * this.capacity * d;
        const b = (to * kvHeads + h) * this.capacity * d;
        this.keys[i].copyWithin(b, a, a + L);
        this.values[i].copyWithin(b, a, a + L);
      }
    }
    this.mask.copyWithin(to * this.capacity, from * this.capacity, (from + 1) * this.capacity);
  }

  /** Masks every slot of `row` (it holds no sequence now). */
  clearRow(row: number): void {
    this.mask.fill(0, row * this.capacity, (row + 1) * this.capacity);
  }

  /** Packs each of the first n rows' live slots to the front (runs copied whole); length = the longest row. */
  compact(n: number): void {
    const { kvHeads, headDim: d } = this.cfg;
    const C = this.capacity;
    let longest = 0;
    for (let r = 0; r < n; r++) {
      const m = this.mask.subarray(r * C, (r + 1) * C);
      let w = 0;
      let s = 0;
      while (s < this.length) {
        if (!m[s]) {
          s++;
          continue;
        }
        let e = s;
        while (e < this.length && m[e]) e++;
        if (s !== w) {
          for (let i = 0; i < this.cfg.layers; i++) {
            for (let h = 0; h < kvHeads; h++) {
              const base = (r * kvHeads + h) * C * d;
              this.keys[i].copyWithin(base + w * d, base + s * d, base + e * d);
              this.values[i].copyWithin(base + w * d, base + s * d, base + e * d);
            }
          }
        }
        w += e - s;
        s = e;
      }
      m.fill(1, 0, w);
      m.fill(0, w);
      longest = Math.max(longest, w);
    }
    for (let r = n; r < this.rows; r++) this.clearRow(r);
    this.length = longest;
  }

  /** Live slots of a row (tests and accounting). */
  live(row: number): number {
    let n = 0;
    for (let s = 0; s < this.length; s++) n += this.mask[row * this.capacity + s];
    return n;
  }
}
