// Every backward rule against central finite differences in float64: L = Σ w ⊙ op(inputs), inputs
// small and random, broadcast cases included. Tolerance 1e-6 relative to the largest gradient.
import { describe, expect, it } from "vitest";
import { Graph, op, type Tensor } from "../../../../gpu-runner/src/engine/graph/index.js";
import { dimMul } from "../../../../gpu-runner/src/engine/graph/dims.js";
import { gradients } from "../../../../gpu-runner/src/engine/autodiff/index.js";
import { rand, type Arr } from "../graph/ref.js";
import { gradCheck, type CheckOptions } from "./gradcheck.js";

const TOL = 1e-6;
const pos = (shape: number[], seed: number): Arr => {
  const a = rand(shape, seed);
  return { shape, data: a.data.map((v) => Math.abs(v) + 0.5) };
};
type Case = [string, Record<string, Arr>, (t: Record<string, Tensor>) => Tensor, CheckOptions?];

async function expectGood(inputs: Record<string, Arr>, f: (t: Record<string, Tensor>) => Tensor, o?: CheckOptions, tol = TOL): Promise<void> {
  const r = await gradCheck(inputs, f, o);
  expect(r.worst).toBeLessThan(tol);
}

const a23 = rand([2, 3], 1);
const b3 = rand([3], 2);
const c213 = rand([2, 1, 3], 3);
const d41 = rand([4, 1], 4);

describe("elementwise rules", () => {
  const cases: Case[] = [
    ["Add [2,3]+[3]", { a: a23, b: b3 }, (t) => op.add(t.a, t.b)],
    ["Sub [2,1,3]−[4,1]", { a: c213, b: d41 }, (t) => op.sub(t.a, t.b)],
    ["Mul [2,1,3]·[4,1]", { a: c213, b: d41 }, (t) => op.mul(t.a, t.b)],
    ["Div [2,3]/[3]", { a: a23, b: pos([3], 5) }, (t) => op.div(t.a, t.b)],
    ["Pow tensor^tensor", { a: pos([2, 3], 6), b: b3 }, (t) => op.pow(t.a, t.b)],
    ["Pow x^2", { a: a23 }, (t) => op.pow(t.a, 2)],
    ["Pow x^3 and x^1 (constant exponents)", { a: a23 }, (t) => op.add(op.pow(t.a, 3), op.pow(t.a, 1))],
    ["Pow x^-0.5", { a: pos([2, 3], 12) }, (t) => op.pow(t.a, -0.5)],
    ["Max", { a: a23, b: b3 }, (t) => op.max(t.a, t.b)],
    ["Min", { a: a23, b: b3 }, (t) => op.min(t.a, t.b)],
    ["Neg", { a: a23 }, (t) => op.neg(t.a)],
    ["Exp", { a: a23 }, (t) => op.exp(t.a)],
    ["Log", { a: pos([2, 3], 7) }, (t) => op.log(t.a)],
    ["Sqrt", { a: pos([2, 3], 8) }, (t) => op.sqrt(t.a)],
    ["Reciprocal", { a: pos([2, 3], 9) }, (t) => op.reciprocal(t.a)],
    ["Sigmoid", { a: a23 }, (t) => op.sigmoid(t.a)],
    ["Tanh", { a: a23 }, (t) => op.tanh(t.a)],
    ["Cos", { a: a23 }, (t) => op.cos(t.a)],
    ["Sin", { a: a23 }, (t) => op.sin(t.a)],
    ["Abs", { a: a23 }, (t) => op.abs(t.a)],
    ["Identity", { a: a23 }, (t) => t.a.graph.node("Identity", [t.a], [{ dtype: "float64", shape: t.a.shape }])[0]],
    ["Sum (variadic) with broadcast", { a: a23, b: b3 }, (t) => t.a.graph.node("Sum", [t.a, t.b, t.a], [{ dtype: "float64", shape: [2, 3] }])[0]],
    ["Where with broadcast branches", { a: a23, b: b3 }, (t) => op.where(op.greater(t.a, 0), t.a, t.b)],
    ["silu", { a: a23 }, (t) => op.silu(t.a)],
    ["rmsNorm", { x: rand([2, 3, 5], 10), w: rand([5], 11) }, (t) => op.rmsNorm(t.x, t.w, 1e-5)],
    // Ties: central differences of max(a, b) at a = b give ½ to each side, the split the rule makes.
    ["Max with ties, broadcast", { a: { shape: [2, 3], data: [0.5, -0.2, 0.3, 0.1, 0.7, -0.4] }, b: { shape: [3], data: [0.5, 0.1, 0.3] } }, (t) => op.max(t.a, t.b)],
    ["Min with ties, broadcast", { a: { shape: [2, 3], data: [0.5, -0.2, 0.3, 0.1, 0.7, -0.4] }, b: { shape: [3], data: [0.5, 0.1, 0.3] } }, (t) => op.min(t.a, t.b)],
    // |x| at 0: the rule's sign(0) = 0 is what central differences give.
    ["Abs at 0", { a: { shape: [4], data: [0, 0.3, -0.2, 0] } }, (t) => op.abs(t.a)],
    ["Mul by a rank-0 input (gradient summed to a scalar)", { a: a23, s: { shape: [], data: [0.7] } }, (t) => op.mul(t.a, t.s)],
    ["Div, both operands broadcast [2,1,3]/[4,1]", { a: c213, b: pos([4, 1], 13) }, (t) => op.div(t.a, t.b)],
    ["Pow with a broadcast base [3]^[2,3]", { a: pos([3], 14), b: a23 }, (t) => op.pow(t.a, t.b)],
    ["Where: condition broader than both branches", { x: a23, a: b3, b: rand([2, 1], 15) }, (t) => op.where(op.greater(t.x, 0), t.a, t.b), { wrt: ["a", "b"] }],
    ["Sum with one input not differentiated", { a: a23, b: b3 }, (t) => t.a.graph.node("Sum", [t.a, t.b], [{ dtype: "float64", shape: [2, 3] }])[0], { wrt: ["b"] }],
  ];
  it.each(cases)("%s", async (_n, inputs, f, o) => expectGood(inputs, f, o));
  it("Cast float64 → float32 → float64 passes the gradient through", async () => {
    // float32 rounding in the forward pass limits the finite difference, hence the larger step.
    await expectGood({ a: a23 }, (t) => op.mul(op.cast(op.cast(t.a, "float32"), "float64"), t.a), { h: 1e-3 }, 1e-4);
  });
});

describe("matmul rules", () => {
  const cases: Case[] = [
    ["MatMul [2,3,4]×[4,5] (weight-like)", { a: rand([2, 3, 4], 12), b: rand([4, 5], 13) }, (t) => op.matmul(t.a, t.b)],
    ["MatMul batch broadcast [2,1,3,4]×[5,4,2]", { a: rand([2, 1, 3, 4], 14), b: rand([5, 4, 2], 15) }, (t) => op.matmul(t.a, t.b)],
    ["MatMul [3,4]×[2,4,5]", { a: rand([3, 4], 16), b: rand([2, 4, 5], 17) }, (t) => op.matmul(t.a, t.b)],
    ["MatMul vector×matrix", { a: rand([4], 18), b: rand([4, 5], 19) }, (t) => op.matmul(t.a, t.b)],
    ["MatMul batch×vector", { a: rand([2, 3, 4], 20), b: rand([4], 21) }, (t) => op.matmul(t.a, t.b)],
    ["MatMul vector·vector", { a: rand([4], 22), b: rand([4], 23) }, (t) => op.matmul(t.a, t.b)],
    ["MatMul 4-D attention scores [2,2,3,4]×[2,2,4,3]", { a: rand([2, 2, 3, 4], 50), b: rand([2, 2, 4, 3], 51) }, (t) => op.matmul(t.a, t.b)],
    ["MatMul [4,5]×[2,5,3] (left operand 2-D, shared by the batch)", { a: rand([4, 5], 52), b: rand([2, 5, 3], 53) }, (t) => op.matmul(t.a, t.b)],
    ["Gemm without bias", { a: rand([3, 4], 54), b: rand([4, 5], 55) }, (t) => op.gemm(t.a, t.b)],
    ["Gemm beta 1, column bias [3,1]", { a: rand([3, 4], 56), b: rand([5, 4], 57), c: rand([3, 1], 58) }, (t) => op.gemm(t.a, t.b, t.c, { transB: true })],
    ["Gemm full bias [3,5], alpha −2", { a: rand([3, 4], 59), b: rand([4, 5], 60), c: rand([3, 5], 61) }, (t) => op.gemm(t.a, t.b, t.c, { alpha: -2 })],
    ["Gemm scalar bias, beta 2", { a: rand([4, 3], 62), b: rand([5, 4], 63), c: { shape: [], data: [0.3] } }, (t) => op.gemm(t.a, t.b, t.c, { transA: true, transB: true, beta: 2 })],
  ];
  it.each(cases)("%s", async (_n, inputs, f) => expectGood(inputs, f));
  it.each([
    [false, false],
    [false, true],
    [true, false],
    [true, true],
  ])("Gemm transA=%s transB=%s with alpha, beta and a broadcast bias", async (transA, transB) => {
    const a = rand(transA ? [4, 3] : [3, 4], 24);
    const b = rand(transB ? [5, 4] : [4, 5], 25);
    await expectGood({ a, b, c: rand([5], 26) }, (t) => op.gemm(t.a, t.b, t.c, { transA, transB, alpha: 1.5, beta: 0.5 }));
  });
});

describe("reduce rules", () => {
  const x = rand([2, 3, 4], 27);
  const cases: Case[] = [
    ["ReduceSum axis 1 keepdims", { x }, (t) => op.reduceSum(t.x, [1])],
    ["ReduceSum axes 0,2 no keepdims", { x }, (t) => op.reduceSum(t.x, [0, -1], false)],
    ["ReduceMean axes 1,2", { x }, (t) => op.reduceMean(t.x, [1, 2])],
    ["ReduceMean no keepdims", { x }, (t) => op.reduceMean(t.x, [0], false)],
    ["ReduceSumSquare", { x }, (t) => op.reduceSumSquare(t.x, [2])],
    ["ReduceMax", { x }, (t) => op.reduceMax(t.x, [1])],
    ["ReduceMax no keepdims", { x }, (t) => op.reduceMax(t.x, [2], false)],
    ["Softmax last axis", { x }, (t) => op.softmax(t.x)],
    ["Softmax axis 1", { x }, (t) => op.softmax(t.x, 1)],
    ["LogSoftmax last axis", { x }, (t) => op.logSoftmax(t.x)],
    ["LogSoftmax axis 0", { x }, (t) => op.logSoftmax(t.x, 0)],
    ["ReduceSum over every axis (no axes given)", { x }, (t) => op.reduceSum(t.x, [])],
    ["ReduceSumSquare negative axis, no keepdims", { x }, (t) => op.reduceSumSquare(t.x, [-3], false)],
    ["ReduceMax axes 0,2 no keepdims", { x }, (t) => op.reduceMax(t.x, [0, -1], false)],
    // A tie of two maxima: central differences give ½ to each, the even split of the rule.
    ["ReduceMax with a two-way tie", { x: { shape: [2, 3], data: [0.5, 0.5, 0.1, -0.3, 0.2, 0.2] } }, (t) => op.reduceMax(t.x, [1])],
    ["ReduceMax with a two-way tie, no keepdims", { x: { shape: [2, 3], data: [0.5, 0.5, 0.1, -0.3, 0.2, 0.2] } }, (t) => op.reduceMax(t.x, [-1], false)],
    ["Softmax axis −2", { x }, (t) => op.softmax(t.x, -2)],
    ["LogSoftmax axis −2", { x }, (t) => op.logSoftmax(t.x, -2)],
    // As attention masks scores: a large finite negative added, so masked entries get (almost) no weight.
    ["Softmax of masked scores (−1e9 added)", { x, m: { shape: [4], data: [0, -1e9, 0, -1e9] } }, (t) => op.softmax(op.add(t.x, t.m)), { wrt: ["x"] }],
    // LogSoftmax with a far-off entry (its output is ≈ −40, not −1e9: that would swamp the differences of L).
    ["LogSoftmax with a very unlikely entry (−40 added)", { x, m: { shape: [4], data: [0, -40, 0, 0] } }, (t) => op.logSoftmax(op.add(t.x, t.m)), { wrt: ["x"] }],
  ];
  it.each(cases)("%s", async (_n, inputs, f, o) => expectGood(inputs, f, o));
  it("ReduceMean over a symbolic axis counts at run time", async () => {
    await expectGood({ x }, (t) => op.reduceMean(t.x, [0, 1]), { shapes: { x: ["B", "T", 4] }, outShape: [1, 1, 4] });
  });
  it("ReduceMean over symbolic axes without keepdims", async () => {
    await expectGood({ x }, (t) => op.reduceMean(t.x, [-1, 1], false), { shapes: { x: ["B", "T", 4] }, outShape: [2] });
  });
});

describe("shape rules", () => {
  const x = rand([2, 3, 4], 28);
  const cases: Case[] = [
    ["Reshape", { x }, (t) => op.reshape(t.x, [6, 4])],
    ["Transpose", { x }, (t) => op.transpose(t.x, [2, 0, 1])],
    ["Unsqueeze", { x }, (t) => op.unsqueeze(t.x, [1, 4])],
    ["Squeeze", { x: rand([2, 1, 4], 29) }, (t) => op.squeeze(t.x, [1])],
    ["Expand [3]→[4,3] plus [2,1,3]→[2,4,3]", { b: b3, c: c213 }, (t) => op.add(op.expand(t.b, [4, 3]), op.expand(t.c, [2, 4, 3]))],
    ["Concat axis 1", { x, y: rand([2, 2, 4], 30) }, (t) => op.concat([t.x, t.y, t.x], 1)],
    ["Split axis 2, one piece unused", { x }, (t) => op.split(t.x, 2, [1, 2, 1])[1]],
    [
      "Split axis 1, pieces recombined",
      { x },
      (t) => {
        const [p, q] = op.split(t.x, 1, [2, 1]);
        return op.mul(op.reduceSum(p, [1]), q);
      },
    ],
    ["Slice middle of axis 1", { x }, (t) => op.slice(t.x, 1, 1, 3)],
    ["Slice negative start, end past the axis", { x }, (t) => op.slice(t.x, 2, -3, 100)],
    ["Gather axis 0 with repeats", { x }, (t) => op.gather(t.x, op.reshape(t.x.graph.ints([1, 0, 1, 1]), [2, 2]), 0)],
    ["Gather axis 2", { x }, (t) => op.gather(t.x, t.x.graph.ints([3, 0, 3]), 2)],
    ["Gather on a middle axis with 2-D indices", { x }, (t) => op.gather(t.x, op.reshape(t.x.graph.ints([2, 0, 2, 1]), [2, 2]), 1)],
    ["Transpose [0,2,1,3] (heads to the front)", { x: rand([2, 3, 2, 4], 34) }, (t) => op.transpose(t.x, [0, 2, 1, 3])],
    ["Transpose [0,2,3,1] (keys for scores)", { x: rand([2, 3, 2, 4], 35) }, (t) => op.transpose(t.x, [0, 2, 3, 1])],
    ["Unsqueeze negative axes", { x }, (t) => op.unsqueeze(t.x, [-1, 0])],
    ["Squeeze negative axis", { x: rand([2, 4, 1], 36) }, (t) => op.squeeze(t.x, [-1])],
    ["Concat negative axis, only one input differentiated", { x, y: rand([2, 3, 2], 37) }, (t) => op.concat([t.y, t.x], -1), { wrt: ["x"] }],
    ["Split negative axis, every piece used", { x }, (t) => op.concat(op.split(t.x, -1, [3, 1]).reverse(), -1)],
    ["Slice start below −size, negative end", { x }, (t) => op.slice(t.x, 2, -100, -1)],
    ["Slice that selects nothing", { x }, (t) => op.add(op.reduceSum(op.slice(t.x, 2, 3, 1), [2]), op.slice(t.x, 2, 0, 1))],
    [
      "Slice node over two axes, given in reverse and negative",
      { x },
      (t) => {
        const g = t.x.graph;
        return g.node("Slice", [t.x, g.ints([1, -2]), g.ints([3, 100]), g.ints([-1, 1])], [{ dtype: "float64", shape: [2, 2, 2] }])[0];
      },
    ],
    [
      "Slice node without axes (every axis, in order)",
      { x },
      (t) => {
        const g = t.x.graph;
        return g.node("Slice", [t.x, g.ints([1, 0, 2]), g.ints([2, 2, 4])], [{ dtype: "float64", shape: [1, 2, 2] }])[0];
      },
    ],
  ];
  it.each(cases)("%s", async (_n, inputs, f, o) => expectGood(inputs, f, o));
  it("Reshape to composite symbolic sizes as GQA folds heads ([B,T,4,2] → [B,2,2·T,2] → back)", async () => {
    await expectGood(
      { q: rand([2, 3, 4, 2], 38) },
      (t) => {
        const heads = op.transpose(t.q, [0, 2, 1, 3]); // [B, 4, T, 2]
        const folded = op.reshape(heads, ["B", 2, dimMul(2, "T"), 2]); // [B, kvH, rep·T, d]
        const scaled = op.mul(folded, op.reshape(op.range(t.q.graph, 1, 3, 2, "float64"), [1, 2, 1, 1])); // per kv head
        return op.reshape(op.transpose(op.reshape(scaled, ["B", 4, "T", 2]), [0, 2, 1, 3]), ["B", "T", 8]);
      },
      { shapes: { q: ["B", "T", 4, 2] }, outShape: [2, 3, 8] },
    );
  });
  it("Expand to a symbolic shape", async () => {
    await expectGood({ b: rand([1, 3], 39), x: rand([2, 3], 40) }, (t) => op.mul(op.expand(t.b, ["B", 3]), t.x), { shapes: { x: ["B", 3] }, outShape: [2, 3] });
  });
  it("Gather with negative fed indices", async () => {
    await expectGood({ e: rand([5, 3], 41) }, (t) => op.gather(t.e, t.ids), { ints: { ids: { shape: [4], data: [-1, 0, -5, 4] } } });
  });
  it("GatherElements along axis 0 with a negative index", async () => {
    await expectGood(
      { e: rand([3, 2], 42) },
      (t) => t.e.graph.node("GatherElements", [t.e, t.ids], [{ dtype: "float64", shape: [2, 2] }], { axis: { kind: "int", value: 0 } })[0],
      { ints: { ids: { shape: [2, 2], data: [-1, 0, 2, 2] } } },
    );
  });
  it("Slice with run-time bounds and Concat/Reshape of symbolic shapes", async () => {
    await expectGood(
      { x, y: rand([2, 2, 4], 31) },
      (t) => {
        const g = t.x.graph;
        const cat = op.concat([t.x, t.y], 1); // [B, T+2, 4]
        const end = g.node("Shape", [t.x], [{ dtype: "int64", shape: [1] }], { start: { kind: "int", value: 1 }, end: { kind: "int", value: 2 } })[0];
        const s = op.slice(cat, 1, g.ints([1]), op.add(end, g.ints([1])), "T"); // rows 1..T
        return op.reshape(s, ["B", -1]);
      },
      { shapes: { x: ["B", "T", 4], y: ["B", 2, 4] }, outShape: [2, 12] },
    );
  });
  it("GatherElements along the last axis with repeats", async () => {
    await expectGood(
      { e: rand([2, 4], 33) },
      (t) => t.e.graph.node("GatherElements", [t.e, t.ids], [{ dtype: "float64", shape: [2, 3] }], { axis: { kind: "int", value: 1 } })[0],
      { ints: { ids: { shape: [2, 3], data: [3, 3, 0, 1, 2, 1] } } },
    );
  });
  it("Slice with a step other than 1 is refused by name, not differentiated wrongly", () => {
    const g = new Graph("t");
    const x = g.input("x", "float64", [6]);
    const y = g.node("Slice", [x, g.ints([0]), g.ints([6]), g.ints([0]), g.ints([2])], [{ dtype: "float64", shape: [3] }])[0];
    expect(() => gradients(op.reduceSum(y, [0], false), [x])).toThrow(/Slice node n_Slice_\d+ has steps ≠ 1/);
  });
  it("Gather with a fed int64 index tensor", async () => {
    await expectGood({ e: rand([5, 3], 32) }, (t) => op.gather(t.e, t.ids), { ints: { ids: { shape: [2, 3], data: [4, 0, 4, 2, 2, 1] } } });
  });
});
