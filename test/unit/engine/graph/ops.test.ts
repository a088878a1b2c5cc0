// Every builder op run on onnxruntime against an independent plain-JS computation, in float32 and float64.
import { describe, expect, it } from "vitest";
import { Graph, op, type Tensor } from "../../../../gpu-runner/src/engine/graph/index.js";
import * as R from "./ref.js";
import { runGraph } from "./run.js";

type FD = "float32" | "float64";

async function check(dtype: FD, inputs: Record<string, R.Arr>, build: (g: Graph, t: Record<string, Tensor>) => Tensor, expected: R.Arr): Promise<void> {
  const g = new Graph("test");
  const t: Record<string, Tensor> = {};
  for (const [name, a] of Object.entries(inputs)) t[name] = g.input(name, dtype, a.shape);
  const y = build(g, t);
  g.output(y, "y");
  const out = (await runGraph(g, inputs, dtype === "float64")).y;
  expect(out.shape).toEqual(expected.shape);
  const scale = Math.max(1, ...expected.data.map(Math.abs));
  expect(R.maxAbsDiff(out.data, expected.data)).toBeLessThan((dtype === "float64" ? 1e-12 : 2e-6) * scale);
}

const a23 = R.rand([2, 3], 1);
const b3 = R.rand([3], 2);
const pos23 = { shape: [2, 3], data: a23.data.map((v) => Math.abs(v) + 0.5) };

describe.each(["float32", "float64"] as FD[])("ops in %s", (dtype) => {
  const binaries: [string, (x: Tensor, y: Tensor) => Tensor, (x: number, y: number) => number][] = [
    ["add", op.add, (x, y) => x + y],
    ["sub", op.sub, (x, y) => x - y],
    ["mul", op.mul, (x, y) => x * y],
    ["div", op.div, (x, y) => x / y],
    ["max", op.max, Math.max],
    ["min", op.min, Math.min],
  ];
  it.each(binaries)("%s broadcasts [2,3] with [3]", async (_n, f, ref) => {
    await check(dtype, { a: a23, b: b3 }, (_g, t) => f(t.a, t.b), R.broadcast([a23, b3], ref));
  });
  it("pow with a scalar exponent", async () => {
    await check(dtype, { a: pos23 }, (_g, t) => op.pow(t.a, 2.5), R.broadcast([pos23], (x) => x ** 2.5));
  });
  const unaries: [string, (x: Tensor) => Tensor, (x: number) => number, R.Arr][] = [
    ["neg", op.neg, (x) => -x, a23],
    ["abs", op.abs, Math.abs, a23],
    ["exp", op.exp, Math.exp, a23],
    ["log", op.log, Math.log, pos23],
    ["sqrt", op.sqrt, Math.sqrt, pos23],
    ["reciprocal", op.reciprocal, (x) => 1 / x, pos23],
    ["sigmoid", op.sigmoid, (x) => 1 / (1 + Math.exp(-x)), a23],
    ["tanh", op.tanh, Math.tanh, a23],
    ["cos", op.cos, Math.cos, a23],
    ["sin", op.sin, Math.sin, a23],
    ["silu", op.silu, (x) => x / (1 + Math.exp(-x)), a23],
  ];
  it.each(unaries)("%s", async (_n, f, ref, input) => {
    await check(dtype, { a: input }, (_g, t) => f(t.a), R.broadcast([input], ref));
  });
  it("where(less(a, b), a, -7)", async () => {
    await check(dtype, { a: a23, b: b3 }, (_g, t) => op.where(op.less(t.a, t.b), t.a, -7), R.broadcast([a23, b3], (x, y) => (x < y ? x : -7)));
  });
  const comparisons: [string, (x: Tensor, y: Tensor) => Tensor, (x: number, y: number) => boolean][] = [
    ["equal", op.equal, (x, y) => x === y],
    ["less", op.less, (x, y) => x < y],
    ["lessOrEqual", op.lessOrEqual, (x, y) => x <= y],
    ["greater", op.greater, (x, y) => x > y],
  ];
  it.each(comparisons)("%s (cast to 0/1)", async (_n, f, ref) => {
    // Inputs with exact ties so equal/lessOrEqual differ from less.
    const x = { shape: [2, 3], data: [1, 2, 3, 4, 5, 6] };
    const z = { shape: [3], data: [2, 2, 7] };
    await check(dtype, { x, z }, (_g, t) => op.cast(f(t.x, t.z), dtype), R.broadcast([x, z], (p, q) => (ref(p, q) ? 1 : 0)));
  });
  it("and of two comparisons", async () => {
    await check(dtype, { a: a23, b: b3 }, (_g, t) => op.cast(op.and(op.greater(t.a, 0), op.less(t.b, 0)), dtype), R.broadcast([a23, b3], (x, y) => (x > 0 && y < 0 ? 1 : 0)));
  });
  it("split into unequal pieces", async () => {
    const x = R.rand([2, 5], 11);
    const pick = (from: number, to: number): R.Arr => ({ shape: [2, to - from], data: [0, 1].flatMap((r) => x.data.slice(r * 5 + from, r * 5 + to)) });
    await check(dtype, { x }, (_g, t) => op.split(t.x, 1, [2, 3])[0], pick(0, 2));
    await check(dtype, { x }, (_g, t) => op.split(t.x, -1, [2, 3])[1], pick(2, 5));
  });
  it("slice with run-time bounds and shapeOf", async () => {
    const x = R.rand([2, 5], 12);
    // Bounds computed in-graph from x's own shape: [1, 5 − 1).
    const sliced = { shape: [2, 3], data: [0, 1].flatMap((r) => x.data.slice(r * 5 + 1, r * 5 + 4)) };
    await check(dtype, { x }, (g, t) => op.slice(t.x, 1, g.ints([1]), op.sub(op.slice(op.shapeOf(t.x), 0, 1, 2), g.ints([1])), 3), sliced);
    await check(dtype, { x }, (_g, t) => op.cast(op.shapeOf(t.x), dtype), { shape: [2], data: [2, 5] });
  });
  it("cast to int64 and back truncates toward zero", async () => {
    const big = { shape: [2, 3], data: a23.data.map((v) => v * 10) };
    await check(dtype, { a: big }, (_g, t) => op.cast(op.cast(t.a, "int64"), dtype), R.broadcast([big], Math.trunc));
  });
  it("matmul with broadcast batch dims", async () => {
    const x = R.rand([2, 1, 3, 4], 3);
    const w = R.rand([5, 4, 2], 4);
    await check(dtype, { x, w }, (_g, t) => op.matmul(t.x, t.w), R.matmul(x, w));
  });
  it("gemm with transB, alpha, beta and bias", async () => {
    const x = R.rand([3, 4], 5);
    const w = R.rand([6, 4], 6);
    const c = R.rand([6], 7);
    const ref = R.broadcast([R.matmul(x, R.transpose(w, [1, 0])), c], (p, q) => 1.5 * p + 2 * q);
    await check(dtype, { x, w, c }, (_g, t) => op.gemm(t.x, t.w, t.c, { transB: true, alpha: 1.5, beta: 2 }), ref);
  });
  const x345 = R.rand([3, 4, 5], 8);
  const reductions: [string, (x: Tensor) => Tensor, (xs: number[]) => number][] = [
    ["reduceSum", (x) => op.reduceSum(x, [1]), (xs) => xs.reduce((p, q) => p + q, 0)],
    ["reduceMean", (x) => op.reduceMean(x, [1]), (xs) => xs.reduce((p, q) => p + q, 0) / xs.length],
    ["reduceMax", (x) => op.reduceMax(x, [1]), (xs) => Math.max(...xs)],
    ["reduceSumSquare", (x) => op.reduceSumSquare(x, [1]), (xs) => xs.reduce((p, q) => p + q * q, 0)],
  ];
  it.each(reductions)("%s over axis 1", async (_n, f, ref) => {
    await check(dtype, { x: x345 }, (_g, t) => f(t.x), R.reduce(x345, 1, ref));
  });
  it("reduce without keepdims drops the axis", async () => {
    const r = R.reduce(x345, 2, (xs) => xs.reduce((p, q) => p + q, 0));
    await check(dtype, { x: x345 }, (_g, t) => op.reduceSum(t.x, [-1], false), { shape: [3, 4], data: r.data });
  });
  it("softmax and logSoftmax over the last axis", async () => {
    const sm = (xs: number[], i: number) => Math.exp(xs[i]) / xs.reduce((p, q) => p + Math.exp(q), 0);
    const ref = (log: boolean): R.Arr => {
      const rows = x345.data.length / 5;
      const data: number[] = [];
      for (let r = 0; r < rows; r++) {
        const xs = x345.data.slice(r * 5, r * 5 + 5);
        for (let i = 0; i < 5; i++) data.push(log ? Math.log(sm(xs, i)) : sm(xs, i));
      }
      return { shape: x345.shape, data };
    };
    await check(dtype, { x: x345 }, (_g, t) => op.softmax(t.x), ref(false));
    await check(dtype, { x: x345 }, (_g, t) => op.logSoftmax(t.x), ref(true));
  });
  it("argMax takes the first index on ties", async () => {
    const x = { shape: [2, 4], data: [1, 3, 3, 0, -1, -1, -2, -1] };
    await check(dtype, { x }, (_g, t) => op.cast(op.argMax(t.x), dtype), { shape: [2], data: [1, 0] });
  });
  it("rmsNorm", async () => {
    const w = R.rand([5], 9);
    const ms = R.reduce(x345, 2, (xs) => xs.reduce((p, q) => p + q * q, 0) / xs.length);
    const ref = R.broadcast([x345, ms, w], (x, m, s) => (s * x) / Math.sqrt(m + 1e-5));
    await check(dtype, { x: x345, w }, (_g, t) => op.rmsNorm(t.x, t.w, 1e-5), ref);
  });
  it("transpose", async () => {
    await check(dtype, { x: x345 }, (_g, t) => op.transpose(t.x, [2, 0, 1]), R.transpose(x345, [2, 0, 1]));
  });
  it("reshape with a symbolic dim, unsqueeze and squeeze", async () => {
    await check(dtype, { x: x345 }, (_g, t) => op.squeeze(op.unsqueeze(op.reshape(t.x, [12, 5]), [0]), [0]), { shape: [12, 5], data: x345.data });
    const g = new Graph("sym");
    const x = g.input("x", dtype, ["B", 4, 5]);
    const y = op.reshape(x, ["B", 20]);
    expect(y.shape).toEqual(["B", 20]);
    g.output(y, "y");
    const out = (await runGraph(g, { x: x345 }, dtype === "float64")).y;
    expect(out).toEqual({ shape: [3, 20], data: x345.data.map((v) => (dtype === "float32" ? Math.fround(v) : v)) });
  });
  it("concat, slice and gather", async () => {
    const y = R.rand([3, 2, 5], 10);
    const cat = { shape: [3, 6, 5], data: [] as number[] };
    for (let i = 0; i < 3; i++) cat.data.push(...x345.data.slice(i * 20, i * 20 + 20), ...y.data.slice(i * 10, i * 10 + 10));
    await check(dtype, { x: x345, z: y }, (_g, t) => op.concat([t.x, t.z], 1), cat);
    const sl = { shape: [3, 2, 5], data: [] as number[] };
    for (let i = 0; i < 3; i++) sl.data.push(...x345.data.slice(i * 20 + 5, i * 20 + 15));
    await check(dtype, { x: x345 }, (_g, t) => op.slice(t.x, 1, 1, 3), sl);
    const gat = { shape: [2, 2, 4, 5], data: [2, 0, 0, 1].flatMap((r) => x345.data.slice(r * 20, r * 20 + 20)) };
    await check(dtype, { x: x345 }, (g, t) => op.gather(t.x, op.reshape(g.ints([2, 0, 0, 1]), [2, 2]), 0), gat);
  });
  it("expand and range", async () => {
    await check(dtype, { b: b3 }, (_g, t) => op.expand(t.b, [2, 3]), R.broadcast([b3, { shape: [2, 3], data: Array(6).fill(0) }], (x) => x));
    await check(dtype, { b: b3 }, (g, t) => op.add(t.b, op.cast(op.range(g, 0, 3, 3), dtype)), { shape: [3], data: b3.data.map((x, i) => x + i) });
  });
});
