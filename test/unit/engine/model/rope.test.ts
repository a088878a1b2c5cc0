// RoPE inverse frequencies under each rope_scaling kind, against the formulas written out.
import { describe, expect, it } from "vitest";
import { ropeInvFreq } from "../../../../gpu-runner/src/engine/model/rope.js";

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
