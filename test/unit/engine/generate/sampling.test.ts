// Sampling: greedy ties, temperature/top-k/top-p semantics, statistical convergence, determinism, validation.
import { describe, expect, it } from "vitest";
import { createRng, rngFromState } from "../../../../gpu-runner/src/engine/generate/rng.js";
import { sampleToken, type SamplingOptions } from "../../../../gpu-runner/src/engine/generate/sampling.js";

/** Reference distribution computed the slow, obvious way (full sort), in float64. */
function expectedDistribution(logits: number[], opts: SamplingOptions): number[] {
  const order = logits.map((_, i) => i).sort((a, b) => logits[b] - logits[a] || a - b);
  const k = opts.topK && opts.topK < logits.length ? opts.topK : logits.length;
  const kept = order.slice(0, k).filter((i) => logits[i] !== -Infinity);
  const max = Math.max(...kept.map((i) => logits[i]));
  const w = kept.map((i) => Math.exp((logits[i] - max) / opts.temperature));
  const total = w.reduce((a, b) => a + b, 0);
  const p = opts.topP ?? 1;
  let acc = 0;
  let cut = kept.length;
  for (let j = 0; j < kept.length; j++) {
    acc += w[j] / total;
    if (acc >= p) {
      cut = j + 1;
      break;
    }
  }
  const mass = w.slice(0, cut).reduce((a, b) => a + b, 0);
  const out = new Array(logits.length).fill(0);
  for (let j = 0; j < cut; j++) out[kept[j]] = w[j] / mass;
  return out;
}

function frequencies(logits: number[], opts: SamplingOptions, n: number, seed: number): number[] {
  const row = Float32Array.from(logits);
  const rng = createRng(seed);
  const counts = new Array(logits.length).fill(0);
  for (let i = 0; i < n; i++) counts[sampleToken(row, opts, rng)]++;
  return counts.map((c) => c / n);
}

/** Every frequency within 5 binomial standard deviations of its probability, and exact zeros where p = 0. */
function expectClose(freq: number[], prob: number[], n: number): void {
  for (let i = 0; i < prob.length; i++) {
    if (prob[i] === 0) {
      expect(freq[i], `token ${i} must never be drawn`).toBe(0);
    } else {
      const sd = Math.sqrt((prob[i] * (1 - prob[i])) / n);
      expect(Math.abs(freq[i] - prob[i]), `token ${i}: freq ${freq[i]} vs p ${prob[i]}`).toBeLessThanOrEqual(5 * sd + 1e-12);
    }
  }
}

const LOGITS = [2.0, 1.0, 0.5, 0.0, -1.0, 1.5, -0.5, 0.25];

describe("createRng", () => {
  it("gives the same sequence for the same seed and different ones for different seeds", () => {
    const a = createRng(42);
    const b = createRng(42);
    const c = createRng(43);
    const sa = Array.from({ length: 20 }, () => a.next());
    const sb = Array.from({ length: 20 }, () => b.next());
    const sc = Array.from({ length: 20 }, () => c.next());
    expect(sa).toEqual(sb);
    expect(sa).not.toEqual(sc);
    for (const x of sa) expect(x >= 0 && x < 1).toBe(true);
  });

  it("is roughly uniform: mean ≈ 1/2, variance ≈ 1/12, all ten deciles populated evenly", () => {
    const rng = createRng(7);
    const n = 100_000;
    const bins = new Array(10).fill(0);
    let s = 0;
    let s2 = 0;
    for (let i = 0; i < n; i++) {
      const x = rng.next();
      s += x;
      s2 += x * x;
      bins[Math.floor(x * 10)]++;
    }
    const mean = s / n;
    expect(Math.abs(mean - 0.5)).toBeLessThan(5 * Math.sqrt(1 / 12 / n));
    expect(Math.abs(s2 / n - mean * mean - 1 / 12)).toBeLessThan(0.002);
    for (const b of bins) expect(Math.abs(b / n - 0.1)).toBeLessThan(5 * Math.sqrt(0.09 / n));
  });

  it("snapshots and restores its state exactly (training checkpoints)", () => {
    const rng = createRng(123);
    for (let i = 0; i < 10; i++) rng.next();
    const snap = rng.state();
    const after = Array.from({ length: 5 }, () => rng.next());
    const restored = rngFromState(JSON.parse(JSON.stringify(snap)));
    expect(Array.from({ length: 5 }, () => restored.next())).toEqual(after);
  });

  it("rejects invalid seeds and states", () => {
    expect(() => createRng(1.5)).toThrow(/seed 1.5 must be a safe integer/);
    expect(() => rngFromState([0, 0, 0, 0])).toThrow(/all-zero/);
    expect(() => rngFromState([1, 2, 3] as never)).toThrow(/four uint32 words/);
  });
});

describe("sampleToken greedy", () => {
  it("returns the argmax, lowest index on ties, and ignores top-k/top-p", () => {
    const rng = createRng(1);
    expect(sampleToken(Float32Array.from([0, 3, 1, 3]), { temperature: 0 }, rng)).toBe(1);
    expect(sampleToken(Float32Array.from([-Infinity, -2, -2]), { temperature: 1e-7, topK: 1, topP: 0.1 }, rng)).toBe(1);
  });

  it("does not consume randomness", () => {
    const rng = createRng(5);
    const before = rng.state();
    sampleToken(Float32Array.from([1, 2]), { temperature: 0 }, rng);
    expect(rng.state()).toEqual(before);
  });
});

describe("sampleToken distributions", () => {
  const n = 40_000;
  const cases: [string, SamplingOptions][] = [
    ["T=1", { temperature: 1 }],
    ["T=0.5", { temperature: 0.5 }],
    ["T=2", { temperature: 2 }],
    ["top-k 3", { temperature: 1, topK: 3 }],
    ["top-p 0.6", { temperature: 1, topP: 0.6 }],
    ["top-k 5 then top-p 0.8", { temperature: 0.8, topK: 5, topP: 0.8 }],
  ];
  for (const [name, opts] of cases) {
    it(`frequencies converge to the expected distribution (${name})`, () => {
      expectClose(frequencies(LOGITS, opts, n, 2024), expectedDistribution(LOGITS, opts), n);
    });
  }

  it("top-k keeps exactly the k largest logits", () => {
    const seen = new Set(Array.from({ length: 2000 }, (_, i) => sampleToken(Float32Array.from(LOGITS), { temperature: 5, topK: 2 }, createRng(i))));
    expect([...seen].sort()).toEqual([0, 5]);
  });

  it("top-p keeps the smallest prefix reaching the mass, and always at least one token", () => {
    // probabilities 0.5, 0.25, 0.125, 0.125: top_p 0.7 needs the first two.
    const logits = Float32Array.from([Math.log(0.5), Math.log(0.25), Math.log(0.125), Math.log(0.125)]);
    const seen = new Set(Array.from({ length: 2000 }, (_, i) => sampleToken(logits, { temperature: 1, topP: 0.7 }, createRng(i))));
    expect([...seen].sort()).toEqual([0, 1]);
    const tiny = new Set(Array.from({ length: 200 }, (_, i) => sampleToken(logits, { temperature: 1, topP: 1e-9 }, createRng(i))));
    expect([...tiny]).toEqual([0]);
  });

  it("breaks ties at the top-p boundary by lower index", () => {
    // four equal tokens: top_p 0.5 keeps the first two by index.
    const seen = new Set(Array.from({ length: 1000 }, (_, i) => sampleToken(new Float32Array(4), { temperature: 1, topP: 0.5 }, createRng(i))));
    expect([...seen].sort()).toEqual([0, 1]);
  });

  it("never picks masked (-Infinity) tokens", () => {
    const logits = Float32Array.from([-Infinity, 0, -Infinity, 0]);
    for (const opts of [{ temperature: 1 }, { temperature: 1, topK: 3 }, { temperature: 1, topP: 0.99 }]) {
      for (let i = 0; i < 300; i++) expect([1, 3]).toContain(sampleToken(logits, opts, createRng(i)));
    }
  });

  it("is deterministic for a seed on a 32000-token vocabulary", () => {
    const logits = new Float32Array(32000);
    const g = createRng(99);
    for (let i = 0; i < logits.length; i++) logits[i] = 4 * g.next();
    const run = (seed: number) => {
      const rng = createRng(seed);
      return Array.from({ length: 20 }, () => sampleToken(logits, { temperature: 0.7, topK: 50, topP: 0.9 }, rng));
    };
    expect(run(3)).toEqual(run(3));
    expect(run(3)).not.toEqual(run(4));
    const top50 = Array.from(logits.keys()).sort((a, b) => logits[b] - logits[a]).slice(0, 50);
    for (const t of run(3)) expect(top50).toContain(t);
  });
});

describe("sampleToken validation", () => {
  const row = Float32Array.from([0, 1]);
  const rng = createRng(0);
  it.each([
    [{ temperature: -1 }, /temperature=-1 must be a finite number ≥ 0/],
    [{ temperature: NaN }, /temperature=NaN/],
    [{ temperature: 1, topK: 1.5 }, /top_k=1.5 must be an integer ≥ 0/],
    [{ temperature: 1, topK: -1 }, /top_k=-1/],
    [{ temperature: 1, topP: 0 }, /top_p=0 must be in \(0, 1\]/],
    [{ temperature: 1, topP: 1.2 }, /top_p=1.2/],
  ])("rejects %j", (opts, msg) => {
    expect(() => sampleToken(row, opts as SamplingOptions, rng)).toThrow(msg);
  });

  it("rejects NaN, +Infinity, empty and fully masked rows", () => {
    expect(() => sampleToken(Float32Array.from([0, NaN]), { temperature: 0 }, rng)).toThrow(/logits\[1\] is NaN/);
    expect(() => sampleToken(Float32Array.from([Infinity, 0]), { temperature: 1 }, rng)).toThrow(/\+Infinity/);
    expect(() => sampleToken(new Float32Array(0), { temperature: 1 }, rng)).toThrow(/empty/);
    expect(() => sampleToken(Float32Array.from([-Infinity]), { temperature: 1 }, rng)).toThrow(/all tokens masked/);
  });
});
