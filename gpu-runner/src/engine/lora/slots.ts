// Stacked LoRA inputs for one decoder session, per layer and projection group (q|k|v, o, gate|up,
// down): A [slots, in, Σr] with each member's A transposed side by side, B [slots, Σr, Σout]
// block-diagonal, scale folded into B. Slot 0 is the zero "no adapter" slot; a lower-rank adapter is
// zero-padded to the slot rank, which changes nothing in x·A·B. A batch gets per-row tensors [B, …]
// assembled from the slots once (or a zero-copy [1, …] view when all rows share one slot), not a
// gather per decode step.
import type { LoraGraphSpec } from "../model/decoder.js";
import type { ModelConfig } from "../model/config.js";
import { PROJECTION_GROUPS, loraGroupLayout, loraInputNames, type Projection } from "../model/names.js";
import { ort } from "../runtime/session.js";
import { loraKey, type LoraAdapter } from "./peft.js";
import type { FloatArray } from "../graph/types.js";

type GroupBuffers = { layer: number; group: string; layout: ReturnType<typeof loraGroupLayout>; a: FloatArray; b: FloatArray };

/** Session inputs for a batch, given each row's slot. */
export type LoraFeedSource = (slotPerRow: readonly number[]) => Record<string, ort.Tensor>;

export class LoraSlots {
  readonly spec: LoraGraphSpec;
  private readonly groups: GroupBuffers[] = [];
  /** Adapter name held by each slot (slot 0 stays empty). */
  readonly held: (string | null)[];

  constructor(
    readonly cfg: ModelConfig,
    slots: number,
    rank: number,
    targets: readonly Projection[],
    readonly dtype: "float32" | "float64" = "float32",
  ) {
    if (slots < 2) throw new Error(`LoRA slots: ${slots} slots leave no room for an adapter; need ≥ 2 (slot 0 is "no adapter")`);
    if (!Number.isInteger(rank) || rank < 1) throw new Error(`LoRA slots: rank=${rank} must be an integer ≥ 1`);
    this.spec = { slots, rank, targets: new Set(targets) };
    this.held = Array(slots).fill(null);
    const make = (n: number) => (dtype === "float64" ? new Float64Array(n) : new Float32Array(n));
    for (let layer = 0; layer < cfg.layers; layer++) {
      for (const group of PROJECTION_GROUPS) {
        const layout = loraGroupLayout(cfg, group, rank, this.spec.targets);
        if (layout.blocks.length === 0) continue;
        const a = make(slots * layout.inF * layout.rankTotal);
        const b = make(slots * layout.rankTotal * layout.outTotal);
        this.groups.push({ layer, group: group.name, layout, a, b });
      }
    }
  }

  /**
   * Per-row LoRA inputs for a batch. When every row uses the same slot, one [1, …] view of that slot's
   * buffers (no copy; later `load`s show through) that the graph broadcasts over the rows; otherwise
   * fresh [B, …] copies, so load adapters before forming a batch.
   */
  feeds(slotPerRow: readonly number[]): Record<string, ort.Tensor> {
    for (const s of slotPerRow) {
      if (!Number.isInteger(s) || s < 0 || s >= this.spec.slots) throw new Error(`LoRA slots: adapter slot ${s} is out of range 0..${this.spec.slots - 1}`);
    }
    const shared = slotPerRow.every((s) => s === slotPerRow[0]);
    const B = shared ? 1 : slotPerRow.length;
    const out: Record<string, ort.Tensor> = {};
    for (const { layer, group, layout, a, b } of this.groups) {
      const aSize = layout.inF * layout.rankTotal;
      const bSize = layout.rankTotal * layout.outTotal;
      const rows = (buf: FloatArray, size: number): FloatArray => {
        if (shared) return buf.subarray(slotPerRow[0] * size, (slotPerRow[0] + 1) * size);
        const dst = this.dtype === "float64" ? new Float64Array(B * size) : new Float32Array(B * size);
        slotPerRow.forEach((s, r) => dst.set(buf.subarray(s * size, (s + 1) * size), r * size));
        return dst;
      };
      const names = loraInputNames(layer, group);
      out[names.a] = new ort.Tensor(this.dtype, rows(a, aSize) as never, [B, layout.inF, layout.rankTotal]);
      out[names.b] = new ort.Tensor(this.dtype, rows(b, bSize) as never, [B, layout.rankTotal, layout.outTotal]);
    }
    return out;
  }

  /** Puts `adapter` into `slot` (A transposed, rank zero-padded, B scaled); null empties the slot. */
  load(slot: number, adapter: LoraAdapter | null): void {
    if (!Number.isInteger(slot) || slot < 1 || slot >= this.spec.slots) throw new Error(`LoRA slots: slot ${slot} is out of range 1..${this.spec.slots - 1}`);
    const r = this.spec.rank;
    if (adapter) {
      if (adapter.rank > r) throw new Error(`LoRA adapter ${adapter.name}: r=${adapter.rank} exceeds the session's slot rank ${r}; reload with a larger rank`);
      const missing = adapter.targets.filter((m) => !this.spec.targets.has(m));
      if (missing.length) throw new Error(`LoRA adapter ${adapter.name}: targets ${missing.join(", ")} have no slot inputs in this session`);
    }
    for (const { layer, layout, a, b } of this.groups) {
      const { inF, rankTotal: R, outTotal: OUT } = layout;
      const aSlot = a.subarray(slot * inF * R, (slot + 1) * inF * R); // [in, Σr]
      const bSlot = b.subarray(slot * R * OUT, (slot + 1) * R * OUT); // [Σr, Σout]
      aSlot.fill(0);
      bSlot.fill(0);
      if (!adapter) continue;
      const ar = adapter.rank;
      // Load-time repacking (not a hot path): A [ar, in] → columns [rankStart, +ar) of [in, Σr];
      // scale·B [out, ar] → rows [rankStart, +ar), columns [outStart, +out) of [Σr, Σout].
      for (const blk of layout.blocks) {
        const wts = adapter.weights.get(loraKey(layer, blk.module));
        if (!wts) continue;
        for (let k = 0; k < ar; k++) {
          const col = blk.rankStart + k;
          for (let i = 0; i < inF; i++) aSlot[i * R + col] = wts.a[k * inF + i];
          for (let o = 0; o < blk.out; o++) bSlot[col * OUT + blk.outStart + o] = adapter.scale * wts.b[o * ar + k];
        }
      }
    }
    this.held[slot] = adapter ? adapter.name : null;
  }
}
