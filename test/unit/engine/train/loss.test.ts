// Masked cross-entropy against a plain-JS reference, its gradient against finite differences, and the
// next-token batch layout.
import { describe, expect, it } from "vitest";
import { Graph } from "../../../../gpu-runner/src/engine/graph/index.js";
import { dpoLoss, maskedCrossEntropy } from "../../../../gpu-runner/src/engine/train/loss.js";
import { maskedCount, nextTokenBatch } from "../../../../gpu-runner/src/engine/train/feeds.js";
import { rand } from "../graph/ref.js";
import { runGraph } from "../graph/run.js";
import { gradCheck } from "../autodiff/gradcheck.js";

const B = 2;
const T = 3;
const V = 5;
// Large logits check the log-softmax's stability: exp(80) alone would lose the small terms in float32.
const logits = { shape: [B, T, V], data: rand([B, T, V], 50).data.map((v, i) => v * 4 + (i % 7 === 0 ? 80 : 0)) };
const targets = { shape: [B, T], data: [1, 4, 0, 2, 2, 3] };
const mask = { shape: [B, T], data: [1, 1, 0, 0, 1, 1] };

function reference(): number {
  let total = 0;
  let count = 0;
  for (let r = 0; r < B * T; r++) {
    if (!mask.data[r]) continue;
    const row = logits.data.slice(r * V, r * V + V);
    const mx = Math.max(...row);
    const lse = mx + Math.log(row.reduce((s, x) => s + Math.exp(x - mx), 0));
    total += lse - row[targets.data[r]];
    count++;
  }
  return total / count;
}

describe("maskedCrossEntropy", () => {
  it.each(["float32", "float64"] as const)("matches the plain-JS mean over masked positions in %s", async (dtype) => {
    const g = new Graph("ce");
    const l = g.input("logits", dtype, ["B", "T", V]);
    const loss = maskedCrossEntropy(l, g.input("targets", "int64", ["B", "T"]), g.input("mask", dtype, ["B", "T"]));
    g.output(loss, "loss");
    const out = await runGraph(g, { logits, targets, mask }, dtype === "float64");
    expect(out.loss.shape).toEqual([]);
    expect(Math.abs(out.loss.data[0] - reference())).toBeLessThan(dtype === "float64" ? 1e-12 : 1e-5);
  });

  it("divides by a given denominator instead of the mask sum", async () => {
    const g = new Graph("ce");
    const loss = maskedCrossEntropy(g.input("logits", "float64", [B, T, V]), g.input("targets", "int64", [B, T]), g.input("mask", "float64", [B, T]), g.input("den", "float64", []));
    g.output(loss, "loss");
    const out = await runGraph(g, { logits, targets, mask, den: { shape: [], data: [10] } }, true);
    expect(out.loss.data[0]).toBeCloseTo((reference() * 4) / 10, 12);
  });

  it("has the gradient finite differences give, zero on masked-out positions", async () => {
    const r = await gradCheck({ logits, mask }, (t) => maskedCrossEntropy(t.logits, t.targets, t.mask), { wrt: ["logits"], ints: { targets } });
    expect(r.worst).toBeLessThan(1e-6);
    const masked = r.analytic.logits.slice(2 * V, 4 * V); // rows (0,2) and (1,0) have mask 0
    expect(masked.every((v) => v === 0)).toBe(true);
  });
});

describe("nextTokenBatch", () => {
  it("shifts targets left and masks the last position", () => {
    const b = nextTokenBatch([
      [5, 6, 7],
      [8, 9, 10],
    ]);
    expect(b.targets).toEqual([
      [6, 7, 0],
      [9, 10, 0],
    ]);
    expect(b.mask).toEqual([
      [1, 1, 0],
      [1, 1, 0],
    ]);
    expect(maskedCount(b)).toBe(4);
  });
  it("right-pads shorter rows outside the mask and rejects rows too short to predict anything", () => {
    const b = nextTokenBatch([[1, 2, 3], [4, 5]]);
    expect(b.rows).toEqual([
      [1, 2, 3],
      [4, 5, 0],
    ]);
    expect(b.mask).toEqual([
      [1, 1, 0],
      [1, 0, 0],
    ]);
    expect(b.targets[1].slice(0, 1)).toEqual([5]);
    expect(() => nextTokenBatch([[1], [2]])).toThrow(/needs at least 2/);
  });
});

describe("dpoLoss", () => {
  // Two pairs: rows 0/1 and 2/3 (chosen, rejected), each row's trained tokens under a mask with holes.
  const P = 2;
  const dLogits = { shape: [2 * P, T, V], data: rand([2 * P, T, V], 51).data.map((v) => v * 3) };
  const dTargets = { shape: [2 * P, T], data: [1, 4, 0, 2, 2, 3, 0, 1, 4, 3, 3, 1] };
  const dMask = { shape: [2 * P, T], data: [1, 1, 0, 0, 1, 1, 1, 0, 1, 0, 1, 1] };
  const ref = { shape: [2 * P], data: [-3.1, -2.2, -4.0, -5.5] };
  const beta = 0.5;

  function rowLogp(r: number): number {
    let s = 0;
    for (let t = 0; t < T; t++) {
      const at = r * T + t;
      if (!dMask.data[at]) continue;
      const row = dLogits.data.slice(at * V, at * V + V);
      const mx = Math.max(...row);
      const lse = mx + Math.log(row.reduce((a, x) => a + Math.exp(x - mx), 0));
      s += row[dTargets.data[at]] - lse;
    }
    return s;
  }
  const margin = (p: number) => beta * (rowLogp(2 * p) - ref.data[2 * p] - (rowLogp(2 * p + 1) - ref.data[2 * p + 1]));
  const expected = (den: number) => [0, 1].reduce((s, p) => s - Math.log(1 / (1 + Math.exp(-margin(p)))), 0) / den;

  const build = (dtype: "float32" | "float64") => {
    const g = new Graph("dpo");
    const r = dpoLoss(g.input("logits", dtype, ["B", "T", V]), g.input("targets", "int64", ["B", "T"]), g.input("mask", dtype, ["B", "T"]), g.input("ref", dtype, ["B"]), beta, g.input("den", dtype, []));
    g.output(r.loss, "loss");
    g.output(r.seqLogp, "seq_logp");
    g.output(r.margins, "margins");
    return g;
  };

  it.each(["float32", "float64"] as const)("matches the plain-JS −log σ(β·Δ) over pairs in %s", async (dtype) => {
    const out = await runGraph(build(dtype), { logits: dLogits, targets: dTargets, mask: dMask, ref, den: { shape: [], data: [4] } }, dtype === "float64");
    const tol = dtype === "float64" ? 1e-12 : 1e-5;
    expect(Math.abs(out.loss.data[0] - expected(4))).toBeLessThan(tol);
    [0, 1, 2, 3].forEach((r) => expect(Math.abs(out.seq_logp.data[r] - rowLogp(r))).toBeLessThan(tol * 10));
    [0, 1].forEach((p) => expect(Math.abs(out.margins.data[p] - margin(p))).toBeLessThan(tol * 10));
  });

  it("stays finite where σ of the margin rounds to 0 or 1", async () => {
    // Reference log-likelihoods far off make margins of about ±1000: −log σ(z) ≈ −z, and ≈ e^−z.
    for (const shift of [2000, -2000]) {
      const far = { shape: [4], data: [shift, -shift, shift, -shift] };
      const out = await runGraph(build("float32"), { logits: dLogits, targets: dTargets, mask: dMask, ref: far, den: { shape: [], data: [1] } }, false);
      expect(Number.isFinite(out.loss.data[0])).toBe(true);
      if (shift > 0) expect(out.loss.data[0]).toBeGreaterThan(1000);
      else expect(out.loss.data[0]).toBeLessThan(1e-30);
    }
  });

  it("has the gradient finite differences give w.r.t. the logits, zero on masked-out positions", async () => {
    const r = await gradCheck({ logits: dLogits, mask: dMask, ref }, (t, g) => dpoLoss(t.logits, t.targets, t.mask, t.ref, beta, g.scalar(2, "float64")).loss, { wrt: ["logits"], ints: { targets: dTargets } });
    expect(r.worst).toBeLessThan(1e-6);
    const masked = r.analytic.logits.slice(2 * V, 3 * V); // row 0, position 2 has mask 0
    expect(masked.every((v) => v === 0)).toBe(true);
  });

  it("has the right gradient at a zero margin (policy = reference, as at the first step), where Max ties and |z| is 0", async () => {
    // Pair 0's two rows are the same tokens with the same reference: its margin is exactly 0, where
    // −log σ(z) = max(−z, 0) + log(1 + e^−|z|) has slope −½ only if the Max tie is split evenly.
    const same = { shape: dLogits.shape, data: dLogits.data.map((v, i) => (i >= T * V && i < 2 * T * V ? dLogits.data[i - T * V] : v)) };
    const sameTargets = { shape: dTargets.shape, data: dTargets.data.map((v, i) => (i >= T && i < 2 * T ? dTargets.data[i - T] : v)) };
    const sameMask = { shape: dMask.shape, data: dMask.data.map((v, i) => (i >= T && i < 2 * T ? dMask.data[i - T] : v)) };
    const sameRef = { shape: [4], data: [-3.1, -3.1, -4.0, -5.5] };
    const out = await runGraph(build("float64"), { logits: same, targets: sameTargets, mask: sameMask, ref: sameRef, den: { shape: [], data: [2] } }, true);
    expect(out.margins.data[0]).toBe(0);
    const r = await gradCheck({ logits: same, mask: sameMask, ref: sameRef }, (t, g) => dpoLoss(t.logits, t.targets, t.mask, t.ref, beta, g.scalar(2, "float64")).loss, { wrt: ["logits"], ints: { targets: sameTargets } });
    expect(r.worst).toBeLessThan(1e-6);
    // Not zero: the two rows get opposite gradients, ∓½·β/den times their log-likelihood gradient.
    expect(Math.max(...r.analytic.logits.slice(0, 2 * T * V).map(Math.abs))).toBeGreaterThan(1e-3);
  });

  it("refuses a beta that is not positive", () => {
    const g = new Graph("dpo");
    const x = g.input("logits", "float64", [2, T, V]);
    expect(() => dpoLoss(x, g.input("t", "int64", [2, T]), g.input("m", "float64", [2, T]), g.input("r", "float64", [2]), 0, g.scalar(1, "float64"))).toThrow(/beta=0 must be positive/);
  });
});
