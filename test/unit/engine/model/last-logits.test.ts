// A "last"-logits decoder (its last layer runs attention, o_proj and the MLP for the last position only) against
// an "all"-logits one: the prefill logits of left-padded batches (rows of different lengths, one-token prompts,
// one adapter per row or one for all) equal the last position of the full logits, and cached decode steps after
// the prefill equal a full recompute. On the fixture models (GQA, Qwen2 biases, tied embeddings) with and without
// their adapters, in float32 (ORT's fused kernels) and float64 (composed ops), and on random models with no GQA
// (kv heads = heads), with four query heads per kv head, and with one layer.
import { existsSync, readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { padLeft } from "../../../../gpu-runner/src/engine/generate/batch.js";
import { LoadedModel } from "../../../../gpu-runner/src/engine/runtime/loaded-model.js";
import { computeLogits } from "../../../../gpu-runner/src/engine/runtime/logits.js";
import { getPreset } from "../../../../bench/presets.js";
import { writeRandomAdapter, writeRandomModel } from "../../../../bench/random-model.js";
import { fixturesDir } from "../../../helpers/fixtures.js";
import { maxAbsDiff } from "../graph/ref.js";

const FIXTURES = ["micro-llama", "micro-qwen2"].filter((f) => existsSync(`${fixturesDir}/${f}/reference.json`));
const DECODE_STEPS = 4;

const argMax = (row: ArrayLike<number>): number => {
  let best = 0;
  for (let i = 1; i < row.length; i++) if (row[i] > row[best]) best = i;
  return best;
};

/** Prefill `prompts` on `last`'s cache, then DECODE_STEPS greedy steps; every logits row against `all` run on the whole sequence. */
async function expectLastMatchesAll(last: LoadedModel, all: LoadedModel, prompts: number[][], slots: number[]): Promise<void> {
  const feeds = last.loraFeeds()(slots);
  const V = last.cfg.vocab;
  const batch = padLeft(prompts);
  const B = batch.B;
  const cache = last.session.newCache(B, batch.T + DECODE_STEPS);
  const rows = prompts.map((p) => [...p]);
  let logits = await last.session.step(cache, { ids: batch.ids, positions: batch.positions, mask: batch.mask, T: batch.T }, feeds);
  for (let s = 0; ; s++) {
    const full = await computeLogits(all.session, rows, { adapterIndex: slots, loraFeeds: all.loraFeeds() });
    expect(logits.length).toBe(B * V);
    for (let b = 0; b < B; b++) expect(maxAbsDiff(logits.subarray(b * V, (b + 1) * V), full[b][rows[b].length - 1])).toBeLessThan(1e-5);
    if (s === DECODE_STEPS) return;
    const ids = new BigInt64Array(B);
    const positions = new BigInt64Array(B);
    rows.forEach((r, b) => {
      const next = argMax(logits.subarray(b * V, (b + 1) * V));
      ids[b] = BigInt(next);
      positions[b] = BigInt(r.length);
      r.push(next);
    });
    logits = await last.session.step(cache, { ids, positions, mask: new Uint8Array(B).fill(1), T: 1 }, feeds);
  }
}

/** Batches over the two token rows `long` and `other`; slot 0 is the zero adapter, so [1, 0] feeds LoRA inputs with leading size B and [1, 1] with leading size 1. */
const batches = (long: number[], other: number[]): [string, number[][], number[]][] => [
  ["two prompts of different lengths, one adapter per row", [long.slice(0, 11), other.slice(0, 4)], [1, 0]],
  ["two prompts of different lengths, one adapter for both", [long.slice(0, 11), other.slice(0, 4)], [1, 1]],
  ["a one-token prompt beside a longer one", [other.slice(0, 1), long.slice(0, 7)], [0, 1]],
  ["a one-token prompt alone", [long.slice(3, 4)], [1]],
  ["two one-token prompts", [long.slice(0, 1), other.slice(5, 6)], [1, 0]],
];

describe.each(FIXTURES.flatMap((f) => (["float32", "float64"] as const).flatMap((dtype) => [false, true].map((adapter) => [f, dtype, adapter] as const))))(
  "last-position logits on %s in %s (adapter: %s)",
  (name, dtype, withAdapter) => {
    const dir = `${fixturesDir}/${name}`;
    const ref = JSON.parse(readFileSync(`${dir}/reference.json`, "utf8")) as { input_ids: number[][] };
    let last: LoadedModel;
    let all: LoadedModel;
    beforeAll(async () => {
      const adapter = withAdapter ? `${dir}/adapter` : undefined;
      last = await LoadedModel.load(`${dir}/base`, { adapter, dtype });
      all = await LoadedModel.load(`${dir}/base`, { adapter, dtype, logits: "all" });
    });
    afterAll(async () => {
      await last?.release();
      await all?.release();
    });

    it.each(batches(ref.input_ids[0], ref.input_ids[1]))("%s: prefill and decode steps match", async (_case, prompts, slots) => {
      await expectLastMatchesAll(last, all, prompts, withAdapter ? slots : prompts.map(() => 0));
    });
  },
);

describe.each([
  ["no GQA (kv heads = heads)", { kvHeads: 4 }],
  ["four query heads per kv head", { kvHeads: 1 }],
  ["one layer (the first is the last)", { layers: 1 }],
])("last-position logits on a random model with %s", (_name, sizes) => {
  let dir: string;
  let last: LoadedModel;
  let all: LoadedModel;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "tuneserve-last-logits-"));
    const p = { ...getPreset("micro"), ...sizes };
    await writeRandomModel(join(dir, "base"), p, { seed: 21 });
    await writeRandomAdapter(join(dir, "adapter"), p, { seed: 22, bStd: 0.2 });
    last = await LoadedModel.load(join(dir, "base"), { adapter: join(dir, "adapter") });
    all = await LoadedModel.load(join(dir, "base"), { adapter: join(dir, "adapter"), logits: "all" });
    expect([last.cfg.kvHeads, last.cfg.layers]).toEqual([p.kvHeads, p.layers]);
  });
  afterAll(async () => {
    await last?.release();
    await all?.release();
    await rm(dir, { recursive: true, force: true });
  });

  const long = [5, 17, 200, 3, 9, 42, 7, 1, 2, 3, 4, 5];
  const other = [250, 31, 8, 77, 140, 6, 60];
  it.each(batches(long, other))("%s: prefill and decode steps match", async (_case, prompts, slots) => {
    await expectLastMatchesAll(last, all, prompts, slots);
  });
});
