// Per-row LoRA inputs of the running batch, kept in place: each row's slot tensors are copied into the
// row's position once, when the sequence joins (and moved when rows are repacked), so a decode step feeds
// zero-copy views of the first n rows instead of re-gathering every row's adapter whenever the batch changes.
import type { LoraSlots } from "../engine/lora/slots.js";
import { ort } from "../engine/runtime/session.js";

type FloatArray = Float32Array | Float64Array;
type Input = { name: string; buf: FloatArray; size: number; dims: readonly number[] };

export class RowLora {
  private readonly inputs: Input[] = [];

  constructor(
    private readonly slots: LoraSlots,
    rows: number,
  ) {
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
  }

  /** Copies row `from` over row `to` (keeps running rows packed). */
  moveRow(from: number, to: number): void {
    if (from === to) return;
    for (const inp of this.inputs) inp.buf.copyWithin(to * inp.size, from * inp.size, (from + 1) * inp.size);
  }

  /** Feeds for rows [start, start + n): views, no copy. */
  feeds(n: number, start = 0): Record<string, ort.Tensor> {
    const out: Record<string, ort.Tensor> = {};
    for (const inp of this.inputs) out[inp.name] = new ort.Tensor(this.slots.dtype, inp.buf.subarray(start * inp.size, (start + n) * inp.size) as never, [n, ...inp.dims]);
    return out;
  }
}
