// RoPE inverse frequencies under each rope_scaling kind, against the formulas written out; the RoPE op
// (rotate-half as one MatMul) and headsRope (ORT's RotaryEmbedding) against plain-JS rotate-half, and the op's
// gradient against finite differences.
import { describe, expect, it } from "vitest";
import { Graph } from "../../../../gpu-runner/src/engine/graph/index.js";
import type { ModelConfig } from "../../../../gpu-runner/src/engine/model/config.js";
import { headsRope, ropeInvFreq, ropeOp } from "../../../../gpu-runner/src/engine/model/rope.js";
import { maxAbsDiff, rand } from "../graph/ref.js";
import { runGraph } from "../graph/run.js";
import { gradCheck } from "../autodiff/gradcheck.js";

describe("RoPE frequencies", () => {
  const base = { headDim: 8, ropeTheta: 10000 };
  it("are theta^(−2i/d), divided by F under linear scaling", () => {
    const plain = ropeInvFreq({ ...base, ropeScaling: { kind: "none" } });
    [1, 0.1, 0.01, 0.001].forEach((v, i) => expect(plain[i]).toBeCloseTo(v, 7));
    const lin = ropeInvFreq({ ...base, ropeScaling: { kind: "linear", factor: 4 } });
    lin.forEach((v, i) => expect(v).toBeCloseTo(plain[i] / 4, 12));
  });
  it("keep high frequencies, divide low ones and blend the middle under llama3 scaling", () => {
    const cfg = { headDim: 8, ropeTheta: 10000, ropeScaling: { kind: "llama3" as const, factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositions: 2000 } };
    const plain = ropeInvFreq({ ...cfg, ropeScaling: { kind: "none" } });
    const scaled = ropeInvFreq(cfg);
    // wavelengths 2π/f: 6.3, 62.8, 628, 6283 vs thresholds 2000/4 = 500 and 2000/1 = 2000.
    expect(scaled[0]).toBe(plain[0]);
    expect(scaled[1]).toBe(plain[1]);
    const smooth = (2000 / ((2 * Math.PI) / plain[2]) - 1) / (4 - 1);
    expect(scaled[2]).toBeCloseTo((1 - smooth) * (plain[2] / 8) + smooth * plain[2], 12);
    expect(scaled[3]).toBeCloseTo(plain[3] / 8, 12);
  });
});

describe("RoPE op", () => {
  // x [B=2, T=3, heads=2, d=4]; each row its own positions (the second left-padded, as a batch can be).
  const cfg: Pick<ModelConfig, "headDim" | "ropeTheta" | "ropeScaling"> = { headDim: 4, ropeTheta: 100, ropeScaling: { kind: "linear", factor: 2 } };
  const x = rand([2, 3, 2, 4], 90);
  const pos = { shape: [2, 3], data: [0, 1, 2, 0, 0, 5] };

  /** Hugging Face's apply_rotary_pos_emb: x·cos + rotate_half(x)·sin, rotate_half(x) = [−x₂, x₁]. */
  function reference(): number[] {
    const inv = ropeInvFreq(cfg);
    const out: number[] = [];
    for (let bt = 0; bt < 6; bt++) {
      for (let h = 0; h < 2; h++) {
        const v = x.data.slice((bt * 2 + h) * 4, (bt * 2 + h) * 4 + 4);
        const rot = [-v[2], -v[3], v[0], v[1]];
        for (let j = 0; j < 4; j++) {
          const angle = pos.data[bt] * inv[j % 2];
          out.push(v[j] * Math.cos(angle) + rot[j] * Math.sin(angle));
        }
      }
    }
    return out;
  }

  it.each(["float32", "float64"] as const)("rotates half of each head by position·frequency in %s", async (dtype) => {
    const g = new Graph("rope");
    const xs = g.input("x", dtype, ["B", "T", 2, 4]);
    const y = ropeOp(g, cfg, g.input("pos", "int64", ["B", "T"]), dtype)(xs);
    g.output(y, "y");
    const out = (await runGraph(g, { x, pos }, dtype === "float64")).y;
    expect(out.shape).toEqual([2, 3, 2, 4]);
    expect(maxAbsDiff(out.data, reference())).toBeLessThan(dtype === "float64" ? 1e-12 : 1e-6);
    // Position 0 leaves the vector as it is.
    expect(maxAbsDiff(out.data.slice(0, 8), x.data.slice(0, 8))).toBeLessThan(1e-6);
  });

  it.each(["float32", "float64"] as const)("headsRope (ORT's RotaryEmbedding in float32) takes flat heads and matches in %s", async (dtype) => {
    const g = new Graph("heads-rope");
    const xs = g.input("x", dtype, ["B", "T", 8]);
    const y = headsRope(g, cfg, g.input("pos", "int64", ["B", "T"]), dtype)(xs, 2);
    g.output(y, "y");
    const out = (await runGraph(g, { x: { shape: [2, 3, 8], data: x.data }, pos }, dtype === "float64")).y;
    expect(out.shape).toEqual([2, 3, 2, 4]);
    expect(maxAbsDiff(out.data, reference())).toBeLessThan(dtype === "float64" ? 1e-12 : 1e-6);
  });

  it("has the gradient finite differences give (float64)", async () => {
    const r = await gradCheck({ x }, (t, g) => ropeOp(g, cfg, t.pos, "float64")(t.x), { ints: { pos }, shapes: { x: ["B", "T", 2, 4] }, outShape: [2, 3, 2, 4] });
    expect(r.worst).toBeLessThan(1e-6);
  });
});
