// Every builder op run on onnxruntime against an independent plain-JS computation, in float32 and float64.
import { describe, expect, it } from "vitest";
import { Graph, op, type Tensor } from "../../../../gpu-runner/src/engine/graph/index.js";
import { dimAdd, dimMul } from "../../../../gpu-runner/src/engine/graph/dims.js";
import * as R from "./ref.js";
import { runGraph } from "./run.js";

type FD = "float32" | "float64";

async function check(dtype: FD, inputs: Record<string, R.Arr>, build: (g: Graph, t: Record<string, Tensor>) => Tensor, expected: R.Arr): Promise<void> {
  const g = new Graph("test");
  const t: Record<string, Tensor> = {};
  for (const [name, a] of Object.entries(inputs)) t[name] = g.input(name, dtype, a.shape);
  const y = build(g, t);
  // The builder's shape inference must agree with what onnxruntime computes (symbolic dims aside).
  if (y.shape.every((d) => typeof d === "number")) expect(y.shape, "inferred shape").toEqual(expected.shape);
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
  it("or and not of comparisons", async () => {
    await check(dtype, { a: a23, b: b3 }, (_g, t) => op.cast(op.or(op.greater(t.a, 0), op.not(op.less(t.b, 0))), dtype), R.broadcast([a23, b3], (x, y) => (x > 0 || !(y < 0) ? 1 : 0)));
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
    ["reduceMin", (x) => op.reduceMin(x, [1]), (xs) => Math.min(...xs)],
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
  it("isNan and isInf (either sign, or one)", async () => {
    const x = { shape: [5], data: [1, NaN, Infinity, -Infinity, -0] };
    const flags = (t: Tensor) => op.cast(t, dtype);
    await check(dtype, { x }, (_g, t) => flags(op.isNan(t.x)), { shape: [5], data: [0, 1, 0, 0, 0] });
    await check(dtype, { x }, (_g, t) => flags(op.isInf(t.x)), { shape: [5], data: [0, 0, 1, 1, 0] });
    await check(dtype, { x }, (_g, t) => flags(op.isInf(t.x, { negative: false })), { shape: [5], data: [0, 0, 1, 0, 0] });
    await check(dtype, { x }, (_g, t) => flags(op.isInf(t.x, { positive: false })), { shape: [5], data: [0, 0, 0, 1, 0] });
  });
  it("rmsNorm", async () => {
    const w = R.rand([5], 9);
    const ms = R.reduce(x345, 2, (xs) => xs.reduce((p, q) => p + q * q, 0) / xs.length);
    const ref = R.broadcast([x345, ms, w], (x, m, s) => (s * x) / Math.sqrt(m + 1e-5));
    await check(dtype, { x: x345, w }, (_g, t) => op.rmsNorm(t.x, t.w, 1e-5), ref);
  });
  it("skipRmsNorm: the sum and its rmsNorm (ORT's fused kernel in float32), with a small epsilon kept", async () => {
    const w = R.rand([5], 9);
    const skip = R.rand([3, 4, 5], 10);
    const sum = R.broadcast([x345, skip], (p, q) => p + q);
    const ms = R.reduce(sum, 2, (xs) => xs.reduce((p, q) => p + q * q, 0) / xs.length);
    // eps large against mean(s²) of a tiny input, so a dropped or rounded epsilon shows.
    const tiny = { shape: sum.shape, data: sum.data.map((v) => v * 1e-3) };
    const msTiny = R.reduce(tiny, 2, (xs) => xs.reduce((p, q) => p + q * q, 0) / xs.length);
    const half = { shape: x345.shape, data: x345.data.map((v) => v * 1e-3) };
    const halfSkip = { shape: skip.shape, data: skip.data.map((v) => v * 1e-3) };
    await check(dtype, { x: x345, s: skip, w }, (_g, t) => op.skipRmsNorm(t.x, t.s, t.w, 1e-5).sum, sum);
    await check(dtype, { x: x345, s: skip, w }, (_g, t) => op.skipRmsNorm(t.x, t.s, t.w, 1e-5).normed, R.broadcast([sum, ms, w], (x, m, v) => (v * x) / Math.sqrt(m + 1e-5)));
    await check(dtype, { x: half, s: halfSkip, w }, (_g, t) => op.skipRmsNorm(t.x, t.s, t.w, 1e-6).normed, R.broadcast([tiny, msTiny, w], (x, m, v) => (v * x) / Math.sqrt(m + 1e-6)));
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
  it("range in the float dtype with run-time bounds; expand to a symbolic shape", async () => {
    const x = R.rand([2, 4], 13);
    // Range(1, 4) from x's own width: [1, 2, 3].
    await check(dtype, { x }, (g, t) => op.range(g, 1, op.cast(op.reshape(op.slice(op.shapeOf(t.x), 0, 1, 2), []), dtype), 3, dtype), { shape: [3], data: [1, 2, 3] });
    const g = new Graph("sym");
    const xs = g.input("x", dtype, ["B", 4]);
    const e = op.expand(g.input("b", dtype, [1, 4]), ["B", 4]);
    expect(e.shape).toEqual(["B", 4]);
    g.output(op.add(e, op.mul(xs, 0)), "y");
    const b14 = R.rand([1, 4], 14);
    const out = (await runGraph(g, { x, b: b14 }, dtype === "float64")).y;
    expect(out.shape).toEqual([2, 4]);
    expect(R.maxAbsDiff(out.data, [...b14.data, ...b14.data])).toBeLessThan(1e-6);
  });
  it("pow with a broadcast tensor exponent", async () => {
    await check(dtype, { a: pos23, b: b3 }, (_g, t) => op.pow(t.a, t.b), R.broadcast([pos23, b3], (x, y) => x ** y));
  });
  it("cast between float32 and float64 keeps the values", async () => {
    const other = dtype === "float64" ? "float32" : "float64";
    const want = { shape: a23.shape, data: a23.data.map((v) => Math.fround(v)) };
    await check(dtype, { a: want }, (_g, t) => op.cast(op.cast(t.a, other), dtype), want);
  });
  it("where with a condition broader than both branches", async () => {
    // cond [2,3], a [3], b [2,1] → [2,3]
    const b21 = R.rand([2, 1], 15);
    await check(dtype, { x: a23, a: b3, b: b21 }, (_g, t) => op.where(op.greater(t.x, 0), t.a, t.b), R.broadcast([a23, b3, b21], (c, p, q) => (c > 0 ? p : q)));
  });
  it.each([
    ["vector × matrix", [4], [4, 5], [5]],
    ["batch × vector", [2, 3, 4], [4], [2, 3]],
    ["vector · vector", [4], [4], []],
    ["matrix × batch", [3, 4], [2, 4, 5], [2, 3, 5]],
  ])("matmul %s squeezes promoted axes as numpy does", async (_n, sa, sb, want) => {
    const a = R.rand(sa as number[], 16);
    const b = R.rand(sb as number[], 17);
    // numpy: a rank-1 left operand is a row [1, K], a rank-1 right operand a column [K, 1]; both are dropped after.
    const a2 = sa.length === 1 ? { shape: [1, ...a.shape], data: a.data } : a;
    const b2 = sb.length === 1 ? { shape: [...b.shape, 1], data: b.data } : b;
    const full = R.matmul(a2, b2);
    await check(dtype, { a, b }, (_g, t) => {
      const y = op.matmul(t.a, t.b);
      expect(y.shape).toEqual(want);
      return y;
    }, { shape: want as number[], data: full.data });
  });
  it("gemm with transA and no bias, and with a column bias", async () => {
    const a = R.rand([4, 3], 18);
    const w = R.rand([4, 5], 19);
    await check(dtype, { a, w }, (_g, t) => op.gemm(t.a, t.w, null, { transA: true, alpha: -0.5 }), R.broadcast([R.matmul(R.transpose(a, [1, 0]), w)], (p) => -0.5 * p));
    const c = R.rand([3, 1], 20);
    await check(dtype, { a, w, c }, (_g, t) => op.gemm(t.a, t.w, t.c, { transA: true }), R.broadcast([R.matmul(R.transpose(a, [1, 0]), w), c], (p, q) => p + q));
  });
  it("reductions over several axes, negative axes, with and without keepdims", async () => {
    const sum = (xs: number[]) => xs.reduce((p, q) => p + q, 0);
    const s02 = R.reduce(R.reduce(x345, 0, sum), 2, sum); // [1, 4, 1]
    await check(dtype, { x: x345 }, (_g, t) => op.reduceSum(t.x, [0, -1]), s02);
    await check(dtype, { x: x345 }, (_g, t) => op.reduceSum(t.x, [-1, 0], false), { shape: [4], data: s02.data });
    await check(dtype, { x: x345 }, (_g, t) => op.reduceMean(t.x, [0, 2], false), { shape: [4], data: s02.data.map((v) => v / 15) });
    const mx = R.reduce(R.reduce(x345, 1, (xs) => Math.max(...xs)), 2, (xs) => Math.max(...xs));
    await check(dtype, { x: x345 }, (_g, t) => op.reduceMax(t.x, [-2, -1], false), { shape: [3], data: mx.data });
    const sq = R.reduce(x345, 0, (xs) => sum(xs.map((v) => v * v)));
    await check(dtype, { x: x345 }, (_g, t) => op.reduceSumSquare(t.x, [-3], false), { shape: [4, 5], data: sq.data });
  });
  it("reduce with no axes reduces every axis, as ONNX defines it", async () => {
    const all = x345.data.reduce((p, q) => p + q, 0);
    await check(dtype, { x: x345 }, (_g, t) => op.reduceSum(t.x, []), { shape: [1, 1, 1], data: [all] });
    await check(dtype, { x: x345 }, (_g, t) => op.reduceMean(t.x, [], false), { shape: [], data: [all / 60] });
  });
  it.each([0, 1, -2])("softmax and logSoftmax over axis %i", async (axis) => {
    const a = axis < 0 ? axis + 3 : axis;
    const mx = R.reduce(x345, a, (xs) => Math.max(...xs));
    const se = R.reduce(R.broadcast([x345, mx], (v, m) => Math.exp(v - m)), a, (xs) => xs.reduce((p, q) => p + q, 0));
    const sm = R.broadcast([x345, mx, se], (v, m, s) => Math.exp(v - m) / s);
    await check(dtype, { x: x345 }, (_g, t) => op.softmax(t.x, axis), sm);
    await check(dtype, { x: x345 }, (_g, t) => op.logSoftmax(t.x, axis), R.broadcast([x345, mx, se], (v, m, s) => v - m - Math.log(s)));
  });
  it("softmax of a row with large negative (masked) entries", async () => {
    const x = { shape: [2, 3], data: [0.5, -1e9, 0.1, -1e9, -1e9, 0.3] };
    const e = (v: number) => Math.exp(v);
    await check(dtype, { x }, (_g, t) => op.softmax(t.x), { shape: [2, 3], data: [e(0.5) / (e(0.5) + e(0.1)), 0, e(0.1) / (e(0.5) + e(0.1)), 0, 0, 1] });
  });
  it("gather on a middle axis with 2-D indices, a negative axis and negative indices", async () => {
    // x [3, 4, 5], idx [2, 2] on axis 1 → [3, 2, 2, 5]; idx −1 is the last row.
    const idx = [3, 0, -1, 1];
    const want: number[] = [];
    for (let i = 0; i < 3; i++) for (const j of idx) want.push(...x345.data.slice(i * 20 + ((j + 4) % 4) * 5, i * 20 + ((j + 4) % 4) * 5 + 5));
    await check(dtype, { x: x345 }, (g, t) => op.gather(t.x, op.reshape(g.ints(idx), [2, 2]), -2), { shape: [3, 2, 2, 5], data: want });
  });
  it("slice bounds are clamped as ONNX does: negative starts, ends past the axis, starts below −size", async () => {
    const rows = (from: number, to: number): R.Arr => ({ shape: [3, 4, to - from], data: Array.from({ length: 12 }, (_, r) => x345.data.slice(r * 5 + from, r * 5 + to)).flat() });
    await check(dtype, { x: x345 }, (_g, t) => op.slice(t.x, -1, -3, 100), rows(2, 5));
    await check(dtype, { x: x345 }, (_g, t) => op.slice(t.x, 2, -100, -1), rows(0, 4));
    await check(dtype, { x: x345 }, (_g, t) => op.slice(t.x, 2, 4, 2), rows(0, 0));
  });
  it("concat, unsqueeze and squeeze with negative axes", async () => {
    const y = R.rand([3, 4, 2], 21);
    const cat = { shape: [3, 4, 7], data: Array.from({ length: 12 }, (_, r) => [...x345.data.slice(r * 5, r * 5 + 5), ...y.data.slice(r * 2, r * 2 + 2)]).flat() };
    await check(dtype, { x: x345, z: y }, (_g, t) => op.concat([t.x, t.z], -1), cat);
    await check(dtype, { x: x345 }, (_g, t) => {
      const u = op.unsqueeze(t.x, [-1, 1]);
      expect(u.shape).toEqual([3, 1, 4, 5, 1]);
      return op.squeeze(op.squeeze(u, [-1]), [-3]);
    }, x345);
  });
  it("transpose of a rank-11 tensor (perm check sorts numerically)", async () => {
    const x = R.rand([2, 1, 1, 1, 1, 1, 1, 1, 1, 1, 3], 22);
    const perm = [10, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0];
    await check(dtype, { x }, (_g, t) => op.transpose(t.x, perm), R.transpose(x, perm));
  });
  it("reshape to composite symbolic sizes (B·T, rep·T) computes them at run time", async () => {
    const g = new Graph("dims");
    const x = g.input("x", dtype, ["B", "T", 4]);
    const flat = op.reshape(x, [dimMul("B", "T"), 4]);
    const folded = op.reshape(op.mul(flat, 3), ["B", dimMul(2, "T"), 2]);
    expect(folded.shape).toEqual(["B", dimMul(2, "T"), 2]);
    const padded = op.concat([folded, op.slice(folded, 1, 0, 1)], 1); // [B, 2T+1, 2]
    expect(padded.shape).toEqual(["B", dimAdd(dimMul(2, "T"), 1), 2]);
    g.output(op.reshape(padded, ["B", dimAdd(dimMul(2, "T"), 1), 2]), "y");
    const xv = R.rand([2, 3, 4], 23);
    const out = (await runGraph(g, { x: xv }, dtype === "float64")).y;
    expect(out.shape).toEqual([2, 7, 2]);
    const want = [0, 1].flatMap((b) => {
      const row = xv.data.slice(b * 12, b * 12 + 12).map((v) => 3 * v);
      return [...row, ...row.slice(0, 2)];
    });
    expect(R.maxAbsDiff(out.data, want)).toBeLessThan(1e-5);
  });
});
