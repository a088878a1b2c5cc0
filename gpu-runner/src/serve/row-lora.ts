// Per-row LoRA inputs of the running batch, kept in place: each row's slot tensors are copied into the
// row's position once, when the sequence joins (and moved when rows are repacked), so a decode step feeds
// zero-copy views of the first n rows instead of re-gathering every row's adapter whenever the batch changes.
// When every fed row uses the same slot, the step gets that slot's [1, …] view instead: MatMul broadcasts
// it, one GEMM over all rows rather than one per row.
import type { LoraSlots } from "../engine/lora/slots.js";
import { ort } from "../engine/runtime/session.js";
import type { FloatArray } from "../engine/graph/types.js";

type Input = { name: string; buf: FloatArray; size: number; dims: readonly number[] };

export class RowLora {
  private readonly inputs: Input[] = [];
  /** The slot each row was filled from (slots of running rows are pinned, so their contents stay). */
  private readonly rowSlot: Int32Array;

  constructor(
    private readonly slots: LoraSlots,
    rows: number,
  ) {
    this.rowSlot = new Int32Array(rows);
    // One row's view of slot 0 gives each input's per-row size and shape.
    for (const [name, t] of Object.entries(slots.feeds([0]))) {
      const size = (t.data as FloatArray).length;
      const buf = slots.dtype === "float64" ? new Float64Array(rows * size) : new Float32Array(rows * size);
      this.inputs.push({ name, buf, size, dims: t.dims.slice(1) });
    }
  }

  /** Copies `slot`'s tensors into `row` (a sequence joined with that adapter). */
  setRow(row: number, slot: number): void {
    const one = this.slots.feeds([slot]);
    for (const inp of this.inputs) inp.buf.set(one[inp.name].data as FloatArray, row * inp.size);
    this.rowSlot[row] = slot;
  }

  /** Copies row `from` over row `to` (keeps running rows packed). */
  moveRow(from: number, to: number): void {
    if (from === to) return;
    for (const inp of this.inputs) inp.buf.copyWithin(to * inp.size, from * inp.size, (from + 1) * inp.size);
    this.rowSlot[to] = this.rowSlot[from];
  }

  /** Feeds for rows [start, start + n): views, no copy; one [1, …] slot view when they share a slot. */
  feeds(n: number, start = 0): Record<string, ort.Tensor> {
    const slot = this.rowSlot[start];
    let shared = true;
    for (let r = start + 1; r < start + n && shared; r++) shared = this.rowSlot[r] === slot;
    if (shared) return this.slots.feeds([slot]);
    const out: Record<string, ort.Tensor> = {};
    for (const inp of this.inputs) out[inp.name] = new ort.Tensor(this.slots.dtype, inp.buf.subarray(start * inp.size, (start + n) * inp.size) as never, [n, ...inp.dims]);
    return out;
  }
}
