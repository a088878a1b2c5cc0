// Backward rules for the reductions and the softmax family of reduce.ts. A reduction's gradient is dy
// put back on the reduced axes (size 1) and broadcast over the input's run-time shape.
import type { GradContext, RuleTable } from "../../autodiff/types.js";
import { expandLike } from "../../autodiff/util.js";
import { normAxis } from "../dims.js";
import type { Tensor } from "../graph.js";
import { cast, div, equal, exp, mul, sub } from "./elementwise.js";
import { reduceSum } from "./reduce.js";
import { shapeOf, unsqueeze } from "./shape.js";

/** The reduced axes of a Reduce* node, normalized (empty axes = all axes, as ONNX defines it). */
function axesOf(c: GradContext): number[] {
  const x = c.x[0]!;
  const axes = c.x[1] ? c.ints(c.x[1]) : [];
  return axes.length ? axes.map((a) => normAxis(a, x.rank, c.node.op)) : x.shape.map((_, i) => i);
}

/** dy of a Reduce* broadcast back to the input's shape: [..reduced..] → x-shaped. */
function spread(c: GradContext): Tensor {
  const x = c.x[0]!;
  const keep = c.node.attrs.keepdims?.kind !== "int" || c.node.attrs.keepdims.value !== 0;
  let d = c.dy[0];
  if (!keep) d = unsqueeze(d, axesOf(c).sort((p, q) => p - q));
  return expandLike(d, x);
}

/** How many elements each output of a Reduce* averaged (a constant, or computed from shapes at run time). */
function count(c: GradContext, like: Tensor): Tensor {
  const x = c.x[0]!;
  const dims = axesOf(c).map((a) => x.shape[a]);
  if (dims.every((d) => typeof d === "number")) return like.graph.scalar((dims as number[]).reduce((p, q) => p * q, 1), like.dtype);
  const g = x.graph;
  const n = g.node("ReduceProd", [g.node("Gather", [shapeOf(x), g.ints(axesOf(c))], [{ dtype: "int64", shape: [dims.length] }], { axis: { kind: "int", value: 0 } })[0]], [{ dtype: "int64", shape: [] }], {
    keepdims: { kind: "int", value: 0 },
  })[0];
  return cast(n, like.dtype);
}

export const reduceGrads: RuleTable = {
  // x: [...] → y: reduced; dx = dy broadcast back
  ReduceSum: (c) => [spread(c), null],
  ReduceMean: (c) => {
    const s = spread(c);
    return [div(s, count(c, s)), null];
  },
  // y = Σ x²: dx = 2x·dy
  ReduceSumSquare: (c) => [mul(mul(spread(c), c.x[0]!), 2), null],
  // The maxima share dy evenly when several elements tie.
  ReduceMax: (c) => {
    const x = c.x[0]!;
    const keep = c.node.attrs.keepdims?.kind !== "int" || c.node.attrs.keepdims.value !== 0;
    const y = keep ? c.y[0] : unsqueeze(c.y[0], axesOf(c).sort((p, q) => p - q));
    const hit = cast(equal(x, y), x.dtype); // x-shaped 0/1
    const ties = reduceSum(hit, axesOf(c), true);
    return [mul(spread(c), div(hit, ties)), null];
  },
  // y = softmax(x): dx = y ⊙ (dy − Σ dy⊙y)
  Softmax: ({ node, y: [y], dy: [d] }) => {
    const axis = normAxis(node.attrs.axis?.kind === "int" ? node.attrs.axis.value : -1, y.rank, "Softmax");
    return [mul(y, sub(d, reduceSum(mul(d, y), [axis], true)))];
  },
  // y = log softmax(x): dx = dy − softmax(x)·Σ dy
  LogSoftmax: ({ node, y: [y], dy: [d] }) => {
    const axis = normAxis(node.attrs.axis?.kind === "int" ? node.attrs.axis.value : -1, y.rank, "LogSoftmax");
    return [sub(d, mul(exp(y), reduceSum(d, [axis], true)))];
  },
};
