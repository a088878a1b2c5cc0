// Sums a gradient that has a broadcast shape back down to the shape of the input it belongs to:
// ReduceSum over the axes numpy broadcasting stretched, then Squeeze of the prepended axes.
import type { Tensor } from "../graph/graph.js";
import { op } from "../graph/index.js";
import type { Shape } from "../graph/types.js";

/** The axes of `from` that broadcasting created or stretched relative to `to`; throws when undecidable. */
export function broadcastAxes(from: Shape, to: Shape, what: string): { lead: number; stretched: number[] } {
  if (to.length > from.length) throw new Error(`${what}: gradient of rank ${from.length} cannot reduce to rank ${to.length}`);
  const lead = from.length - to.length;
  const stretched: number[] = [];
  to.forEach((d, i) => {
    const f = from[i + lead];
    if (d === f) return;
    if (d === 1) stretched.push(i + lead);
    else if (typeof d === "number" && typeof f === "number") throw new Error(`${what}: gradient axis ${i + lead} has size ${f}, input has ${d}`);
    // A symbol against a different symbol or a number: broadcasting only accepted it because the two are
    // equal at run time (a size-1 symbol would have been ambiguous, which the builder rejects).
  });
  return { lead, stretched };
}

/** Reduces gradient `dx` (broadcast shape) to the shape of `x`. */
export function unbroadcast(dx: Tensor, x: Tensor): Tensor {
  const { lead, stretched } = broadcastAxes(dx.shape, x.shape, `gradient of ${x.name}`);
  const axes = [...Array.from({ length: lead }, (_, i) => i), ...stretched];
  if (axes.length === 0) return dx;
  let r = op.reduceSum(dx, axes, true);
  if (lead > 0) r = op.squeeze(r, Array.from({ length: lead }, (_, i) => i));
  return r;
}
