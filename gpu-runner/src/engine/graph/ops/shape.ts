// Shape and indexing ops: Reshape, Transpose, (Un)Squeeze, Concat, Slice, Gather, Expand, Shape.
// Target shapes may hold symbols; the graph computes those sizes at run time from where they appear.
import { broadcastShapes, dimAdd, dimProduct, dimsConflict, normAxis, shapeStr } from "../dims.js";
import type { Graph, Tensor } from "../graph.js";
import type { Dim, Shape } from "../types.js";

/** An int64 [n] tensor holding the sizes of `dims` (constants, or Shape-derived for symbols). */
export function shapeTensor(g: Graph, dims: Shape): Tensor {
  if (dims.every((d) => typeof d === "number")) return g.ints(dims as number[]);
  const parts: Tensor[] = [];
  let run: number[] = [];
  for (const d of dims) {
    if (typeof d === "number") run.push(d);
    else {
      if (run.length) parts.push(g.ints(run));
      run = [];
      parts.push(g.dim(d));
    }
  }
  if (run.length) parts.push(g.ints(run));
  return parts.length === 1 ? parts[0] : g.node("Concat", parts, [{ dtype: "int64", shape: [dims.length] }], { axis: { kind: "int", value: 0 } })[0];
}

/** Reshape to `target` (numbers, symbols, or one -1 inferred when the sizes are known). */
export function reshape(x: Tensor, target: Shape): Tensor {
  const g = x.graph;
  const neg = target.filter((d) => d === -1).length;
  if (neg > 1) throw new Error(`Reshape ${x}: at most one -1 in ${shapeStr(target)}`);
  const out: Dim[] = [...target];
  if (neg === 1) {
    const total = dimProduct(x.shape);
    const known = dimProduct(target.filter((d) => d !== -1));
    const i = target.indexOf(-1);
    if (typeof total === "number" && typeof known === "number") {
      if (total % known !== 0) throw new Error(`Reshape ${x}: ${total} elements do not fit ${shapeStr(target)}`);
      out[i] = total / known;
    } else out[i] = total === known ? 1 : g.fresh("reshaped");
  } else {
    const a = dimProduct(x.shape);
    const b = dimProduct(target);
    if (typeof a === "number" && typeof b === "number" && a !== b) throw new Error(`Reshape ${x}: ${a} elements cannot become ${shapeStr(target)} (${b})`);
  }
  const spec = neg === 1 ? target.map((d) => (d === -1 ? -1 : d)) : target;
  return g.node("Reshape", [x, shapeTensor(g, spec)], [{ dtype: x.dtype, shape: out }])[0];
}

/** Transpose by `perm`. */
export function transpose(x: Tensor, perm: number[]): Tensor {
  if (perm.length !== x.rank || [...perm].sort((p, q) => p - q).some((p, i) => p !== i)) throw new Error(`Transpose ${x}: perm [${perm}] is not a permutation of rank ${x.rank}`);
  return x.graph.node("Transpose", [x], [{ dtype: x.dtype, shape: perm.map((p) => x.shape[p]) }], { perm: { kind: "ints", value: perm } })[0];
}

/** Inserts size-1 axes at `axes` (positions in the output). */
export function unsqueeze(x: Tensor, axes: number[]): Tensor {
  const rank = x.rank + axes.length;
  const norm = axes.map((a) => normAxis(a, rank, "Unsqueeze")).sort((a, b) => a - b);
  const out: Dim[] = [];
  let j = 0;
  for (let i = 0; i < rank; i++) out.push(norm.includes(i) ? 1 : x.shape[j++]);
  return x.graph.node("Unsqueeze", [x, x.graph.ints(norm)], [{ dtype: x.dtype, shape: out }])[0];
}

/** Removes size-1 axes. */
export function squeeze(x: Tensor, axes: number[]): Tensor {
  const norm = axes.map((a) => normAxis(a, x.rank, "Squeeze"));
  for (const a of norm) if (x.shape[a] !== 1 && typeof x.shape[a] === "number") throw new Error(`Squeeze ${x}: axis ${a} has size ${x.shape[a]}, not 1`);
  return x.graph.node("Squeeze", [x, x.graph.ints(norm)], [{ dtype: x.dtype, shape: x.shape.filter((_, i) => !norm.includes(i)) }])[0];
}

/** Concatenates along `axis`; the other axes must agree. */
export function concat(xs: Tensor[], axis: number): Tensor {
  if (xs.length === 0) throw new Error("Concat: needs at least one tensor");
  const first = xs[0];
  const a = normAxis(axis, first.rank, "Concat");
  for (const t of xs) {
    if (t.rank !== first.rank || t.dtype !== first.dtype) throw new Error(`Concat: ${t} does not match ${first}`);
    t.shape.forEach((d, i) => {
      if (i !== a && dimsConflict(d, first.shape[i])) throw new Error(`Concat on axis ${a}: ${t} and ${first} differ on axis ${i}`);
    });
  }
  const out = [...first.shape];
  out[a] = xs.slice(1).reduce<Dim>((acc, t) => dimAdd(acc, t.shape[a]), first.shape[a]);
  return first.graph.node("Concat", xs, [{ dtype: first.dtype, shape: out }], { axis: { kind: "int", value: a } })[0];
}

/** Slice [start, end) along one axis; numbers are constants, tensors ([1] int64) are run-time bounds. */
export function slice(x: Tensor, axis: number, start: number | Tensor, end: number | Tensor, outDim?: Dim): Tensor {
  const g = x.graph;
  const a = normAxis(axis, x.rank, "Slice");
  const out = [...x.shape];
  const d = x.shape[a];
  if (outDim !== undefined) out[a] = outDim;
  else if (typeof start === "number" && typeof end === "number" && typeof d === "number") {
    const clamp = (v: number) => Math.min(Math.max(v < 0 ? v + d : v, 0), d);
    out[a] = Math.max(0, clamp(end) - clamp(start));
  } else if (typeof start === "number" && typeof end === "number" && end > start && start >= 0) out[a] = end - start;
  else out[a] = g.fresh("sliced");
  const st = typeof start === "number" ? g.ints([start]) : start;
  const en = typeof end === "number" ? g.ints([end]) : end;
  return g.node("Slice", [x, st, en, g.ints([a])], [{ dtype: x.dtype, shape: out }])[0];
}

/** Gather along `axis`: data [..., N, ...] with int64 indices I → [..., I..., ...]. */
export function gather(data: Tensor, indices: Tensor, axis = 0): Tensor {
  if (indices.dtype !== "int64" && indices.dtype !== "int32") throw new Error(`Gather: indices ${indices} must be int64 or int32`);
  const a = normAxis(axis, data.rank, "Gather");
  const shape = [...data.shape.slice(0, a), ...indices.shape, ...data.shape.slice(a + 1)];
  return data.graph.node("Gather", [data, indices], [{ dtype: data.dtype, shape }], { axis: { kind: "int", value: a } })[0];
}

/** Broadcasts x to `shape` (Expand). */
export function expand(x: Tensor, shape: Shape): Tensor {
  const out = broadcastShapes(x.shape, shape, "Expand");
  return x.graph.node("Expand", [x, shapeTensor(x.graph, shape)], [{ dtype: x.dtype, shape: out }])[0];
}

/** The run-time shape of x as int64 [rank]. */
export const shapeOf = (x: Tensor): Tensor => x.graph.node("Shape", [x], [{ dtype: "int64", shape: [x.rank] }])[0];

/** Range(start, limit, delta) with int64 [] scalars or numbers → [n]. */
export function range(g: Graph, start: Tensor | number, limit: Tensor | number, outDim: Dim, dtype: "int64" | "float32" | "float64" = "int64"): Tensor {
  const s = typeof start === "number" ? g.scalar(start, dtype) : start;
  const l = typeof limit === "number" ? g.scalar(limit, dtype) : limit;
  return g.node("Range", [s, l, g.scalar(1, dtype)], [{ dtype, shape: [outDim] }])[0];
}

/** Splits x along `axis` into pieces of the given sizes. */
export function split(x: Tensor, axis: number, sizes: number[]): Tensor[] {
  const a = normAxis(axis, x.rank, "Split");
  const total = sizes.reduce((p, q) => p + q, 0);
  if (typeof x.shape[a] === "number" && x.shape[a] !== total) throw new Error(`Split ${x}: sizes [${sizes}] sum to ${total}, not ${x.shape[a]}`);
  const outs = sizes.map((n) => ({ dtype: x.dtype, shape: x.shape.map((d, i) => (i === a ? n : d)) }));
  return x.graph.node("Split", [x, x.graph.ints(sizes)], outs, { axis: { kind: "int", value: a } });
}
