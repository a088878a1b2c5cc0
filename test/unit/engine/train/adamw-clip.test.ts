// AdamW and global-norm clipping as graph ops against plain-JS versions of the formulas
// (fixtures/README.md's AdamW; torch.nn.utils.clip_grad_norm_'s factor).
import { describe, expect, it } from "vitest";
import { Graph } from "../../../../gpu-runner/src/engine/graph/index.js";
import { adamwUpdate, type AdamWConfig } from "../../../../gpu-runner/src/engine/train/adamw.js";
import { clipByGlobalNorm } from "../../../../gpu-runner/src/engine/train/clip.js";
import { rand, type Arr } from "../graph/ref.js";
import { runGraph } from "../graph/run.js";

const cfg: AdamWConfig = { beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01 };

function jsAdamW(p: number[], grads: number[][], lr: number, c: AdamWConfig): number[] {
  const m = p.map(() => 0);
  const v = p.map(() => 0);
  const x = p.slice();
  grads.forEach((gr, k) => {
    const t = k + 1;
    for (let i = 0; i < x.length; i++) {
      x[i] *= 1 - lr * c.weightDecay;
      m[i] = c.beta1 * m[i] + (1 - c.beta1) * gr[i];
      v[i] = c.beta2 * v[i] + (1 - c.beta2) * gr[i] * gr[i];
      x[i] -= (lr / (1 - c.beta1 ** t)) * (m[i] / (Math.sqrt(v[i]) / Math.sqrt(1 - c.beta2 ** t) + c.eps));
    }
  });
  return x;
}

describe("adamwUpdate", () => {
  it.each(["float32", "float64"] as const)("three steps match the written-out update in %s", async (dtype) => {
    const g = new Graph("adamw");
    const sh = [2, 3];
    const inp = (n: string) => g.input(n, dtype, sh);
    const u = adamwUpdate(inp("p"), inp("g"), inp("m"), inp("v"), g.input("lr", dtype, []), g.input("step", dtype, []), cfg);
    g.output(u.p, "p_out");
    g.output(u.m, "m_out");
    g.output(u.v, "v_out");
    const lr = 0.01;
    const p0 = rand(sh, 60);
    const grads = [61, 62, 63].map((s) => rand(sh, s).data.map((x) => x * 3));
    let st: Record<string, Arr> = { p: p0, m: { shape: sh, data: [0, 0, 0, 0, 0, 0] }, v: { shape: sh, data: [0, 0, 0, 0, 0, 0] } };
    for (let k = 0; k < 3; k++) {
      const out = await runGraph(g, { ...st, g: { shape: sh, data: grads[k] }, lr: { shape: [], data: [lr] }, step: { shape: [], data: [k + 1] } }, dtype === "float64");
      st = { p: out.p_out, m: out.m_out, v: out.v_out };
    }
    const want = jsAdamW(p0.data, grads, lr, cfg);
    st.p.data.forEach((x, i) => expect(Math.abs(x - want[i])).toBeLessThan(dtype === "float64" ? 1e-14 : 1e-6));
    // The update moved every element: the test would catch an optimizer that did nothing.
    st.p.data.forEach((x, i) => expect(Math.abs(x - p0.data[i])).toBeGreaterThan(1e-3));
  });
});

describe("clipByGlobalNorm", () => {
  const a = rand([2, 2], 70);
  const b = rand([3], 71);
  const norm = Math.sqrt([...a.data, ...b.data].reduce((s, x) => s + x * x, 0));
  it.each([
    ["clips when the norm exceeds the limit", norm / 4],
    ["leaves gradients alone under the limit", norm * 2],
  ])("%s", async (_n, maxNorm) => {
    const g = new Graph("clip");
    const r = clipByGlobalNorm([g.input("a", "float64", [2, 2]), g.input("b", "float64", [3])], maxNorm);
    g.output(r.grads[0], "a_out");
    g.output(r.grads[1], "b_out");
    g.output(r.norm, "norm");
    const out = await runGraph(g, { a, b }, true);
    const f = Math.min(1, maxNorm / (norm + 1e-6));
    expect(out.norm.data[0]).toBeCloseTo(norm, 12);
    out.a_out.data.forEach((x, i) => expect(x).toBeCloseTo(a.data[i] * f, 12));
    out.b_out.data.forEach((x, i) => expect(x).toBeCloseTo(b.data[i] * f, 12));
  });
  it("rejects a non-positive limit", () => {
    const g = new Graph("clip");
    expect(() => clipByGlobalNorm([g.input("a", "float64", [2])], 0)).toThrow(/max_grad_norm=0 must be > 0/);
  });
});
