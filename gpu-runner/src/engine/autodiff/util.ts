// Small graph helpers the backward rules share: zeros shaped like a tensor, reshapes to a tensor's
// run-time shape, and reading constant int64 inputs (axes, perms) at build time.
import type { Graph, Tensor } from "../graph/graph.js";
import { op } from "../graph/index.js";

/** Zeros with the run-time shape of `t`. */
export function zerosLike(t: Tensor): Tensor {
  const zero = t.graph.scalar(0, t.dtype);
  if (t.rank === 0) return t.graph.node("Identity", [zero], [{ dtype: t.dtype, shape: [] }])[0];
  return t.graph.node("Expand", [zero, op.shapeOf(t)], [{ dtype: t.dtype, shape: t.shape }])[0];
}

/** Reshapes `d` to the run-time shape of `like` (for Reshape/Squeeze/Unsqueeze backward). */
export function reshapeLike(d: Tensor, like: Tensor): Tensor {
  return d.graph.node("Reshape", [d, op.shapeOf(like)], [{ dtype: d.dtype, shape: like.shape }])[0];
}

/** Broadcasts `d` to the run-time shape of `like`. */
export function expandLike(d: Tensor, like: Tensor): Tensor {
  return d.graph.node("Expand", [d, op.shapeOf(like)], [{ dtype: d.dtype, shape: like.shape }])[0];
}

/** The values of a constant int64 tensor (an initializer), or an error naming `what`. */
export function constInts(g: Graph, t: Tensor | null, what: string): number[] {
  if (!t) return [];
  const init = g.initializers.find((i) => i.tensor === t);
  if (!init || init.kind !== "data" || !(init.data instanceof BigInt64Array)) {
    throw new Error(`autodiff: ${what} needs ${t.name} to be a constant int64 initializer to take a gradient`);
  }
  return Array.from(init.data, Number);
}

/** The value of a constant float scalar (an initializer with one element), or undefined. */
export function constScalar(g: Graph, t: Tensor | null): number | undefined {
  if (!t || t.rank > 1) return undefined;
  const init = g.initializers.find((i) => i.tensor === t);
  if (!init || init.kind !== "data" || !(init.data instanceof Float32Array || init.data instanceof Float64Array) || init.data.length !== 1) return undefined;
  return init.data[0];
}
