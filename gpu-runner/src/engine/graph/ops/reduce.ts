// Reductions over axes (opset 18+: axes are an int64 input) and the softmax family.
import { normAxis } from "../dims.js";
import type { Tensor } from "../graph.js";
import type { Dim } from "../types.js";
import { requireFloat } from "./util.js";

function reduce(op: string, x: Tensor, axes: number[], keepDims: boolean): Tensor {
  // No axes means every axis, as ONNX defines it (noop_with_empty_axes = 0); spelled out so the node says so.
  const norm = axes.length ? axes.map((a) => normAxis(a, x.rank, op)) : x.shape.map((_, i) => i);
  const shape: Dim[] = [];
  x.shape.forEach((d, i) => {
    if (!norm.includes(i)) shape.push(d);
    else if (keepDims) shape.push(1);
  });
  return x.graph.node(op, [x, x.graph.ints(norm)], [{ dtype: x.dtype, shape }], { keepdims: { kind: "int", value: keepDims ? 1 : 0 } })[0];
}

// x: [..] → reduced over `axes` (kept as size 1 when keepDims; [] = every axis)
export const reduceSum = (x: Tensor, axes: number[], keepDims = true): Tensor => reduce("ReduceSum", x, axes, keepDims);
export const reduceMean = (x: Tensor, axes: number[], keepDims = true): Tensor => reduce("ReduceMean", x, axes, keepDims);
export const reduceMax = (x: Tensor, axes: number[], keepDims = true): Tensor => reduce("ReduceMax", x, axes, keepDims);
export const reduceMin = (x: Tensor, axes: number[], keepDims = true): Tensor => reduce("ReduceMin", x, axes, keepDims);
export const reduceSumSquare = (x: Tensor, axes: number[], keepDims = true): Tensor => reduce("ReduceSumSquare", x, axes, keepDims);

/** Softmax along `axis` (default last): x: [..., N] → same shape. */
export function softmax(x: Tensor, axis = -1): Tensor {
  requireFloat("Softmax", x);
  return x.graph.node("Softmax", [x], [{ dtype: x.dtype, shape: x.shape }], { axis: { kind: "int", value: normAxis(axis, x.rank, "Softmax") } })[0];
}

/** LogSoftmax along `axis` (default last). */
export function logSoftmax(x: Tensor, axis = -1): Tensor {
  requireFloat("LogSoftmax", x);
  return x.graph.node("LogSoftmax", [x], [{ dtype: x.dtype, shape: x.shape }], { axis: { kind: "int", value: normAxis(axis, x.rank, "LogSoftmax") } })[0];
}

/** ArgMax along `axis` → int64 (first index on ties, as ONNX specifies by default). */
export function argMax(x: Tensor, axis = -1, keepDims = false): Tensor {
  const a = normAxis(axis, x.rank, "ArgMax");
  const shape = x.shape.flatMap((d, i) => (i === a ? (keepDims ? [1] : []) : [d]));
  return x.graph.node("ArgMax", [x], [{ dtype: "int64", shape }], { axis: { kind: "int", value: a }, keepdims: { kind: "int", value: keepDims ? 1 : 0 } })[0];
}
