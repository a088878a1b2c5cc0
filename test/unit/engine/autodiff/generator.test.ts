// The gradient generator itself: pruning to paths that reach trainable tensors, the named error for an
// op without a rule or with an omitted output, the count check on rule results, accumulation over several uses, and zeros.
import { describe, expect, it } from "vitest";
import { Graph, op } from "../../../../gpu-runner/src/engine/graph/index.js";
import { gradients, MissingGradientRule, RULES } from "../../../../gpu-runner/src/engine/autodiff/index.js";
import { rand } from "../graph/ref.js";
import { gradCheck } from "./gradcheck.js";
import { runGraph } from "../graph/run.js";

const erf = (x: ReturnType<Graph["input"]>) => x.graph.node("Erf", [x], [{ dtype: x.dtype, shape: x.shape }])[0];

describe("gradients()", () => {
  it("throws MissingGradientRule naming the op and node on the trainable path", () => {
    const g = new Graph("t");
    const x = g.input("x", "float64", [3]);
    const loss = op.reduceSum(erf(x), [0], false);
    let err: unknown;
    try {
      gradients(loss, [x]);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(MissingGradientRule);
    expect((err as MissingGradientRule).op).toBe("Erf");
    expect((err as Error).message).toMatch(/no gradient rule for op Erf \(node n_Erf_\d+\)/);
  });

  it("never visits ops off the trainable path (a frozen branch may use ops without rules)", async () => {
    const g = new Graph("t");
    const x = g.input("x", "float64", [3]);
    const frozen = g.input("frozen", "float32", [3]); // ORT's Erf has no float64 kernel
    const y = op.mul(x, op.cast(erf(frozen), "float64")); // Erf feeds the loss but not from x
    const loss = op.reduceSum(op.mul(y, y), [0], false);
    const before = g.nodes.length;
    const dx = gradients(loss, [x]).get(x)!;
    expect(g.nodes.slice(before).some((n) => n.op === "Erf")).toBe(false);
    g.output(dx, "dx");
    const xs = [0.3, -0.2, 0.9];
    const fs = [0.1, 0.5, -0.4];
    const out = await runGraph(g, { x: { shape: [3], data: xs }, frozen: { shape: [3], data: fs } }, true);
    // d/dx Σ (x·e)² = 2x·e² with e = erf(f)
    const erfRef = (v: number) => {
      let s = 0;
      for (let k = 0; k < 20000; k++) {
        const t = (v * (k + 0.5)) / 20000;
        s += Math.exp(-t * t);
      }
      return (2 / Math.sqrt(Math.PI)) * s * (v / 20000);
    };
    out.dx.data.forEach((d, i) => expect(d).toBeCloseTo(2 * xs[i] * erfRef(fs[i]) ** 2, 5));
  });

  it("walks past a node with an omitted output off the trainable path, and names one on it", () => {
    const g = new Graph("t");
    const x = g.input("x", "float64", [3]);
    const frozen = g.input("frozen", "float64", [3]);
    const dropout = (t: typeof x) => g.node("Dropout", [t], [{ dtype: t.dtype, shape: t.shape }, null])[0]!;
    const rules = { ...RULES, Dropout: RULES.Identity };
    const loss = op.reduceSum(op.mul(x, dropout(frozen)), [0], false);
    expect(gradients(loss, [x], { rules }).get(x)!.shape).toEqual([3]);
    const through = op.reduceSum(dropout(x), [0], false);
    expect(() => gradients(through, [x], { rules })).toThrow(/node n_Dropout_\d+ \(Dropout\) omits output 1/);
  });

  it("checks that a rule returns one gradient per input", () => {
    const g = new Graph("t");
    const x = g.input("x", "float64", [3]);
    const loss = op.reduceSum(op.exp(x), [0], false);
    const rules = { ...RULES, Exp: () => [] };
    expect(() => gradients(loss, [x], { rules })).toThrow(/rule for Exp returned 0 gradients for 1 inputs/);
  });

  it("sums the contributions of a tensor used several times and gives zeros to unused ones", async () => {
    const x = rand([2, 3], 40);
    const r = await gradCheck({ x }, (t) => op.add(op.mul(op.exp(t.x), t.x), op.sigmoid(op.mul(t.x, t.x))));
    expect(r.worst).toBeLessThan(1e-6);
    const g = new Graph("t");
    const a = g.input("a", "float64", [2]);
    const unused = g.input("u", "float64", [2, 2]);
    const loss = op.reduceSum(op.mul(a, a), [0], false);
    const du = gradients(loss, [a, unused]).get(unused)!;
    g.output(du, "du");
    const out = await runGraph(g, { a: { shape: [2], data: [1, 2] }, u: { shape: [2, 2], data: [5, 6, 7, 8] } }, true);
    expect(out.du).toEqual({ shape: [2, 2], data: [0, 0, 0, 0] });
  });

  it("seeds a non-scalar loss with ones, and scales by a given seed", async () => {
    const g = new Graph("t");
    const x = g.input("x", "float64", [2, 3]);
    const s = g.input("s", "float64", []);
    const y = op.mul(x, x); // [2, 3]: the gradient of Σ y
    g.output(gradients(y, [x]).get(x)!, "dx");
    g.output(gradients(op.reduceSum(y, [0, 1], false), [x], { seed: s }).get(x)!, "dx_seeded");
    const xs = rand([2, 3], 42);
    const out = await runGraph(g, { x: xs, s: { shape: [], data: [-3] } }, true);
    expect(out.dx).toEqual({ shape: [2, 3], data: xs.data.map((v) => 2 * v) });
    expect(out.dx_seeded.data).toEqual(xs.data.map((v) => -6 * v));
  });

  it("refuses a loss that is not a float tensor", () => {
    const g = new Graph("t");
    const x = g.input("x", "float64", [3]);
    expect(() => gradients(op.argMax(x), [x])).toThrow(/loss .* must be a float tensor/);
  });

  it("back-propagates through a frozen 2-D weight without a Transpose node of the weight", () => {
    const g = new Graph("t");
    const x = g.input("x", "float32", ["B", "T", 4]);
    const w = g.constant("float32", [4, 5], Float32Array.from(rand([4, 5], 41).data));
    const loss = op.reduceSum(op.matmul(x, w), [0, 1, 2], false);
    gradients(loss, [x]);
    expect(g.nodes.some((n) => n.op === "Transpose" && n.inputs[0] === w)).toBe(false);
    expect(g.nodes.some((n) => n.op === "Gemm" && n.inputs[1] === w && n.attrs.transB?.value === 1)).toBe(true);
  });
});
