// Masked cross-entropy against a plain-JS reference, its gradient against finite differences, and the
// next-token batch layout.
import { describe, expect, it } from "vitest";
import { Graph } from "../../../../gpu-runner/src/engine/graph/index.js";
import { maskedCrossEntropy } from "../../../../gpu-runner/src/engine/train/loss.js";
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
