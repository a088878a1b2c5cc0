// The decoder against the PyTorch reference dumps in ../shared/fixtures: logits with and without
// the adapter (unmerged and merged), loss, logits sums, KV-cached greedy decoding, and cache vs recompute.
import { existsSync, readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { generate } from "../../../../gpu-runner/src/engine/generate/generator.js";
import { LoadedModel } from "../../../../gpu-runner/src/engine/runtime/loaded-model.js";
import { computeLogits } from "../../../../gpu-runner/src/engine/runtime/logits.js";
import { fixturesDir } from "../../../helpers/fixtures.js";

const ROOT = `${fixturesDir}`;
const FIXTURES = ["micro-llama", "micro-qwen2"].filter((f) => existsSync(`${ROOT}/${f}/reference.json`));

type Ref = {
  input_ids: number[][];
  logits_first2: number[][][];
  logits_first2_base: number[][][];
  logits_sum: number;
  logits_abs_sum: number;
  loss: number;
  loss_base_only: number;
  greedy_prompt: number[];
  greedy_tokens: number[];
  greedy_top2_logits: number[][];
  greedy_tokens_base: number[];
  greedy_top2_logits_base: number[][];
};

function maxDiffFirst2(logits: Float32Array[][], ref: number[][][]): number {
  let m = 0;
  for (let b = 0; b < ref.length; b++) for (let p = 0; p < 2; p++) ref[b][p].forEach((v, i) => (m = Math.max(m, Math.abs(logits[b][p][i] - v))));
  return m;
}

/** Mean next-token cross-entropy, computed in float64 from the logits. */
function loss(logits: Float32Array[][], ids: number[][]): number {
  let total = 0;
  let n = 0;
  ids.forEach((row, b) => {
    for (let t = 0; t + 1 < row.length; t++) {
      const l = logits[b][t];
      const max = Math.max(...l);
      const lse = max + Math.log(l.reduce((s, v) => s + Math.exp(v - max), 0));
      total += lse - l[row[t + 1]];
      n++;
    }
  });
  return total / n;
}

const top2 = (row: Float32Array): [number, number] => {
  const sorted = [...row].sort((a, b) => b - a);
  return [sorted[0], sorted[1]];
};

describe.each(FIXTURES)("fixture %s", (name) => {
  const dir = `${ROOT}/${name}`;
  const ref = JSON.parse(readFileSync(`${dir}/reference.json`, "utf8")) as Ref;
  let base: LoadedModel;
  let unmerged: LoadedModel;
  beforeAll(async () => {
    base = await LoadedModel.load(`${dir}/base`, { logits: "all" });
    unmerged = await LoadedModel.load(`${dir}/base`, { logits: "all", adapter: `${dir}/adapter` });
  });
  afterAll(async () => {
    await base?.release();
    await unmerged?.release();
  });

  it("base logits and loss match the reference", async () => {
    const logits = await computeLogits(base.session, ref.input_ids);
    expect(maxDiffFirst2(logits, ref.logits_first2_base)).toBeLessThan(1e-4);
    expect(Math.abs(loss(logits, ref.input_ids) - ref.loss_base_only)).toBeLessThan(1e-5);
  });

  it("unmerged adapter: logits, loss and sums match; slot 0 gives the base model", async () => {
    const logits = await computeLogits(unmerged.session, ref.input_ids, { adapterIndex: [1, 1], loraFeeds: unmerged.loraFeeds() });
    expect(maxDiffFirst2(logits, ref.logits_first2)).toBeLessThan(1e-4);
    expect(Math.abs(loss(logits, ref.input_ids) - ref.loss)).toBeLessThan(1e-5);
    const flat = logits.flatMap((r) => r.flatMap((p) => [...p]));
    expect(Math.abs(flat.reduce((s, v) => s + v, 0) - ref.logits_sum)).toBeLessThan(1e-2);
    expect(Math.abs(flat.reduce((s, v) => s + Math.abs(v), 0) - ref.logits_abs_sum)).toBeLessThan(1e-2);
    const baseRows = await computeLogits(unmerged.session, ref.input_ids, { adapterIndex: [0, 0], loraFeeds: unmerged.loraFeeds() });
    expect(maxDiffFirst2(baseRows, ref.logits_first2_base)).toBeLessThan(1e-4);
  });

  it("the float64 graph reproduces the reference too", async () => {
    const f64 = await LoadedModel.load(`${dir}/base`, { logits: "all", adapter: `${dir}/adapter`, dtype: "float64" });
    try {
      const logits = await computeLogits(f64.session, ref.input_ids, { adapterIndex: [1, 1], loraFeeds: f64.loraFeeds() });
      expect(maxDiffFirst2(logits, ref.logits_first2)).toBeLessThan(1e-4);
      expect(Math.abs(loss(logits, ref.input_ids) - ref.loss)).toBeLessThan(1e-5);
    } finally {
      await f64.release();
    }
  });

  it("merged adapter agrees with the reference and with unmerged", async () => {
    const merged = await LoadedModel.load(`${dir}/base`, { logits: "all", adapter: `${dir}/adapter`, merge: true });
    try {
      expect(merged.session.lora).toBeNull();
      const logits = await computeLogits(merged.session, ref.input_ids);
      expect(maxDiffFirst2(logits, ref.logits_first2)).toBeLessThan(1e-4);
      expect(Math.abs(loss(logits, ref.input_ids) - ref.loss)).toBeLessThan(1e-5);
    } finally {
      await merged.release();
    }
  });

  it("a batch mixing adapter and base rows of different lengths equals per-row runs", async () => {
    const rows = [ref.input_ids[0].slice(0, 11), ref.input_ids[1]];
    const mixed = await computeLogits(unmerged.session, rows, { adapterIndex: [1, 0], loraFeeds: unmerged.loraFeeds() });
    const alone0 = await computeLogits(unmerged.session, [rows[0]], { adapterIndex: [1], loraFeeds: unmerged.loraFeeds() });
    const alone1 = await computeLogits(base.session, [rows[1]]);
    let m = 0;
    mixed[0].forEach((p, t) => p.forEach((v, i) => (m = Math.max(m, Math.abs(v - alone0[0][t][i])))));
    mixed[1].forEach((p, t) => p.forEach((v, i) => (m = Math.max(m, Math.abs(v - alone1[0][t][i])))));
    expect(mixed[0]).toHaveLength(11);
    expect(m).toBeLessThan(1e-5);
  });

  it.each([
    ["adapter", 1],
    ["base", 0],
  ] as const)("greedy KV-cached decoding (%s) matches tokens and top-2 logits; cached logits equal recomputed ones", async (kind, slot) => {
    const model = await LoadedModel.load(`${dir}/base`, { adapter: `${dir}/adapter` });
    try {
      const stepLogits: Float32Array[] = [];
      const { results } = await generate(model.session, [{ tokens: ref.greedy_prompt, maxTokens: 12, temperature: 0, adapterSlot: slot }], {
        loraFeeds: model.loraFeeds(),
        onLogits: (l) => stepLogits.push(Float32Array.from(l)),
      });
      const wantTokens = kind === "adapter" ? ref.greedy_tokens : ref.greedy_tokens_base;
      const wantTop2 = kind === "adapter" ? ref.greedy_top2_logits : ref.greedy_top2_logits_base;
      expect(results[0].tokens).toEqual(wantTokens);
      expect(stepLogits).toHaveLength(12);
      stepLogits.forEach((l, i) => {
        const [a, b] = top2(l);
        expect(Math.abs(a - wantTop2[i][0])).toBeLessThan(1e-4);
        expect(Math.abs(b - wantTop2[i][1])).toBeLessThan(1e-4);
      });
      // Full recompute over prompt + generated tokens gives the same logits at every decoded position.
      const full = await computeLogits(unmerged.session, [[...ref.greedy_prompt, ...wantTokens]], { adapterIndex: [slot], loraFeeds: unmerged.loraFeeds() });
      let m = 0;
      stepLogits.forEach((l, i) => l.forEach((v, j) => (m = Math.max(m, Math.abs(v - full[0][ref.greedy_prompt.length - 1 + i][j])))));
      expect(m).toBeLessThan(1e-5);
    } finally {
      await model.release();
    }
  });
});
