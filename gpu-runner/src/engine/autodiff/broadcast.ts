// Sums a gradient that has a broadcast shape back down to the shape of the input it belongs to:
// ReduceSum over the axes numpy broadcasting stretched, then Squeeze of the prepended axes, and at run
// time over an "X|1" axis (an input that is X or 1 rows, graph/dims.ts) when it was fed with 1.
import type { Tensor } from "../graph/graph.js";
import { op } from "../graph/index.js";
import type { Dim, Shape } from "../graph/types.js";

/** "X|1" (dims.ts's dimOrOne): known at build time only to be X or 1. */
const isOrOne = (d: Dim): boolean => typeof d === "string" && d.endsWith("|1");

/**
 * The axes of `from` that broadcasting created (`lead`) or stretched (`stretched`) relative to `to`, and
 * the axes of `to` whose "X|1" size decides at run time whether they were stretched (`orOne`); throws
 * when the shapes cannot have come from broadcasting.
 */
export function broadcastAxes(from: Shape, to: Shape, what: string): { lead: number; stretched: number[]; orOne: number[] } {
  if (to.length > from.length) throw new Error(`${what}: gradient of rank ${from.length} cannot reduce to rank ${to.length}`);
  const lead = from.length - to.length;
  const stretched: number[] = [];
  const orOne: number[] = [];
  to.forEach((d, i) => {
    const f = from[i + lead];
    if (d === f) return;
    if (d === 1) stretched.push(i + lead);
    else if (isOrOne(d)) orOne.push(i);
    else if (typeof d === "number" && typeof f === "number") throw new Error(`${what}: gradient axis ${i + lead} has size ${f}, input has ${d}`);
    // A symbol against a different symbol or a number: broadcasting only accepted it because the two are
    // equal at run time (a plain symbol that may be 1 would be ambiguous; "X|1" says so and is handled above).
  });
  return { lead, stretched, orOne };
}

/**
 * Sums axis `a` of `d` down to x's run-time size there, which is d's size or 1: d is viewed as
 * [..., k, n, ...] with n = x's size and k = d's size / n, and the k axis summed away (k = 1 when x
 * has d's size, so nothing is summed).
 */
function sumToRuntimeSize(d: Tensor, x: Tensor, a: number): Tensor {
  const g = d.graph;
  const dShape = op.shapeOf(d); // [rank]
  const n = g.node("Shape", [x], [{ dtype: "int64", shape: [1] }], { start: { kind: "int", value: a }, end: { kind: "int", value: a + 1 } })[0];
  const k = op.div(op.slice(dShape, 0, a, a + 1), n);
  const parts = [...(a > 0 ? [op.slice(dShape, 0, 0, a)] : []), k, n, ...(a + 1 < d.rank ? [op.slice(dShape, 0, a + 1, d.rank)] : [])];
  const viewShape = [...d.shape.slice(0, a), g.fresh("k"), x.shape[a], ...d.shape.slice(a + 1)];
  const view = g.node("Reshape", [d, op.concat(parts, 0)], [{ dtype: d.dtype, shape: viewShape }])[0];
  return op.reduceSum(view, [a], false);
}

/** Reduces gradient `dx` (broadcast shape) to the shape of `x`. */
export function unbroadcast(dx: Tensor, x: Tensor): Tensor {
  const { lead, stretched, orOne } = broadcastAxes(dx.shape, x.shape, `gradient of ${x.name}`);
  const axes = [...Array.from({ length: lead }, (_, i) => i), ...stretched];
  let r = dx;
  if (axes.length > 0) r = op.reduceSum(dx, axes, true);
  if (lead > 0) r = op.squeeze(r, Array.from({ length: lead }, (_, i) => i));
  for (const a of orOne) r = sumToRuntimeSize(r, x, a);
  return r;
}
