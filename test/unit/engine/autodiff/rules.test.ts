// Every backward rule against central finite differences in float64: L = Σ w ⊙ op(inputs), inputs
// small and random, broadcast cases included. Tolerance 1e-6 relative to the largest gradient.
import { describe, expect, it } from "vitest";
import { op, type Tensor } from "../../../../gpu-runner/src/engine/graph/index.js";
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
  ];
  it.each(cases)("%s", async (_n, inputs, f) => expectGood(inputs, f));
  it("ReduceMean over a symbolic axis counts at run time", async () => {
    await expectGood({ x }, (t) => op.reduceMean(t.x, [0, 1]), { shapes: { x: ["B", "T", 4] }, outShape: [1, 1, 4] });
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
  ];
  it.each(cases)("%s", async (_n, inputs, f) => expectGood(inputs, f));
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
  it("Gather with a fed int64 index tensor", async () => {
    await expectGood({ e: rand([5, 3], 32) }, (t) => op.gather(t.e, t.ids), { ints: { ids: { shape: [2, 3], data: [4, 0, 4, 2, 2, 1] } } });
  });
});
