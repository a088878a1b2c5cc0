// Backward rules for the shape and indexing ops of shape.ts: moves of data are undone (reshape back,
// inverse transpose, split a concat, pad a slice) and a Gather scatters-adds into zeros.
import type { RuleTable } from "../../autodiff/types.js";
import { reshapeLike, zerosLike } from "../../autodiff/util.js";
import { dimAdd, normAxis } from "../dims.js";
import type { Tensor } from "../graph.js";
import type { Dim } from "../types.js";
import { add, less, max, min, sub, where } from "./elementwise.js";
import { reshape, shapeOf, transpose, unsqueeze } from "./shape.js";

const int = (n: { kind: string; value: unknown } | undefined, dflt: number): number => (n?.kind === "int" ? (n.value as number) : dflt);

/** The size of axis `a` of x as an int64 [1]: a constant when known, else read from x's shape. */
function sizeOf(x: Tensor, a: number): Tensor {
  const d = x.shape[a];
  if (typeof d === "number") return x.graph.ints([d]);
  return x.graph.node("Shape", [x], [{ dtype: "int64", shape: [1] }], { start: { kind: "int", value: a }, end: { kind: "int", value: a + 1 } })[0];
}

/** Concatenates the gradients of a Split's outputs along its axis. */
function joinPieces(dy: Tensor[], axis: number): Tensor {
  const a = normAxis(axis, dy[0].rank, "Split");
  const shape = dy[0].shape.map((d, i) => (i === a ? dy.reduce<Dim>((acc, t) => dimAdd(acc, t.shape[i]), 0) : d));
  return dy[0].graph.node("Concat", dy, [{ dtype: dy[0].dtype, shape }], { axis: { kind: "int", value: a } })[0];
}

export const shapeGrads: RuleTable = {
  // Pure reinterpretations of the same data: reshape dy back to x's run-time shape.
  Reshape: ({ x: [x], dy: [d] }) => [reshapeLike(d, x!), null],
  Unsqueeze: ({ x: [x], dy: [d] }) => [reshapeLike(d, x!), null],
  Squeeze: ({ x: [x], dy: [d] }) => [reshapeLike(d, x!), null],
  // y = transpose(x, perm): dx = transpose(dy, perm⁻¹)
  Transpose: ({ node, x: [x], dy: [d] }) => {
    const perm = node.attrs.perm?.kind === "ints" ? node.attrs.perm.value : x!.shape.map((_, i) => x!.rank - 1 - i);
    const inv = perm.map((_, i) => perm.indexOf(i));
    return [transpose(d, inv)];
  },
  // y = expand(x, shape): dy already has the broadcast shape; the generator sums it down to x.
  Expand: ({ dy: [d] }) => [d, null],
  // y = concat(xs, axis): split dy back into pieces the sizes of the inputs along the axis.
  Concat: ({ node, x, dy: [d], needs }) => {
    const g = d.graph;
    const axis = normAxis(int(node.attrs.axis, 0), d.rank, "Concat");
    const xs = x as Tensor[];
    const sizes = xs.map((t) => t.shape[axis]);
    const split = sizes.every((s) => typeof s === "number")
      ? g.ints(sizes as number[])
      : g.node("Concat", xs.map((t) => sizeOf(t, axis)), [{ dtype: "int64", shape: [xs.length] }], { axis: { kind: "int", value: 0 } })[0];
    const outs = g.node(
      "Split",
      [d, split],
      xs.map((t) => ({ dtype: d.dtype, shape: d.shape.map((s, i) => (i === axis ? t.shape[axis] : s)) })),
      { axis: { kind: "int", value: axis } },
    );
    return outs.map((o, i) => (needs[i] ? o : null));
  },
  // ys = split(x, axis): dx = concat(dys) (the generator fills zeros for outputs the loss does not use).
  Split: ({ node, x, dy }) => [joinPieces(dy, int(node.attrs.axis, 0)), ...x.slice(1).map(() => null)],
  // y = x[start:end] along the sliced axes (step 1): pad dy with zeros back to x's extent.
  Slice: ({ node, x: [x, starts, , axesT, steps], dy: [d], ints }) => {
    const g = d.graph;
    const axes = axesT ? ints(axesT).map((a) => normAxis(a, x!.rank, "Slice")) : x!.shape.map((_, i) => i);
    if (steps && ints(steps).some((s) => s !== 1)) throw new Error(`autodiff: Slice node ${node.name} has steps ≠ 1, which its gradient rule does not support`);
    const before: Tensor[] = [];
    const after: Tensor[] = [];
    for (let r = 0; r < x!.rank; r++) {
      const j = axes.indexOf(r);
      if (j < 0) {
        before.push(g.ints([0]));
        after.push(g.ints([0]));
        continue;
      }
      const dim = sizeOf(x!, r);
      let s = g.node("Slice", [starts!, g.ints([j]), g.ints([j + 1])], [{ dtype: "int64", shape: [1] }])[0];
      s = where(less(s, 0), add(s, dim), s); // negative starts count from the end
      s = max(min(s, dim), g.ints([0])); // then clamp to [0, dim]
      before.push(s);
      after.push(sub(sub(dim, s), sizeOf(d, r)));
    }
    const pads = g.node("Concat", [...before, ...after], [{ dtype: "int64", shape: [2 * x!.rank] }], { axis: { kind: "int", value: 0 } })[0];
    const dx = g.node("Pad", [d, pads], [{ dtype: d.dtype, shape: x!.shape }], { mode: { kind: "string", value: "constant" } })[0];
    return node.inputs.map((_, i) => (i === 0 ? dx : null));
  },
  // y = gather(data, idx, axis): dy: data[:a] + idx.shape + data[a+1:]; scatter-add it into zeros(data).
  Gather: ({ node, x: [data, idx], dy: [d] }) => {
    const g = d.graph;
    const a = normAxis(int(node.attrs.axis, 0), data!.rank, "Gather");
    const flatShape: Dim[] = [...data!.shape.slice(0, a), -1, ...data!.shape.slice(a + 1)];
    const upd = reshape(d, flatShape); // [..., n, ...]
    let ix = reshape(idx!, [-1]); // [n]
    const lead = Array.from({ length: a }, (_, i) => i);
    const tail = Array.from({ length: data!.rank - a - 1 }, (_, i) => a + 1 + i);
    if (lead.length + tail.length) ix = unsqueeze(ix, [...lead, ...tail]);
    ix = g.node("Expand", [ix, shapeOf(upd)], [{ dtype: ix.dtype, shape: upd.shape }])[0];
    const dx = g.node("ScatterElements", [zerosLike(data!), ix, upd], [{ dtype: d.dtype, shape: data!.shape }], {
      axis: { kind: "int", value: a },
      reduction: { kind: "string", value: "add" },
    })[0];
    return [dx, null];
  },
  // y = gatherElements(data, idx, axis) (idx shaped like y): scatter-add dy into zeros(data) at idx.
  GatherElements: ({ node, x: [data, idx], dy: [d] }) => {
    const a = normAxis(int(node.attrs.axis, 0), data!.rank, "GatherElements");
    const dx = d.graph.node("ScatterElements", [zerosLike(data!), idx!, d], [{ dtype: d.dtype, shape: data!.shape }], {
      axis: { kind: "int", value: a },
      reduction: { kind: "string", value: "add" },
    })[0];
    return [dx, null];
  },
};

