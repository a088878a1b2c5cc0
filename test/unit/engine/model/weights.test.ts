// Model weights from sharded safetensors: the shards are joined by name, duplicates are refused, and a
// sharded folder gives the same logits as the single-file one.
import { copyFileSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { openWeights } from "../../../../gpu-runner/src/engine/model/weights.js";
import { LoadedModel } from "../../../../gpu-runner/src/engine/runtime/loaded-model.js";
import { computeLogits } from "../../../../gpu-runner/src/engine/runtime/logits.js";
import { readSafetensors, writeSafetensors } from "../../../../gpu-runner/src/engine/weights/safetensors.js";
import { fixturesDir } from "../../../helpers/fixtures.js";

const FX = `${fixturesDir}/micro-llama`;

async function shardedCopy(overlap: boolean): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), "shards-"));
  copyFileSync(`${FX}/base/config.json`, join(dir, "config.json"));
  const src = await readSafetensors(`${FX}/base/model.safetensors`);
  const names = src.names();
  const half = Math.floor(names.length / 2);
  const pick = (ns: string[]) => Object.fromEntries(ns.map((n) => [n, { shape: src.shape(n), data: src.tensor(n) }]));
  await writeSafetensors(join(dir, "model-00001-of-00002.safetensors"), pick(names.slice(0, half + (overlap ? 1 : 0))));
  await writeSafetensors(join(dir, "model-00002-of-00002.safetensors"), pick(names.slice(half)));
  return dir;
}

describe("model weights", () => {
  it("joins shards and gives the same logits as one file", async () => {
    const dir = await shardedCopy(false);
    const ref = JSON.parse(readFileSync(`${FX}/reference.json`, "utf8"));
    const sharded = await LoadedModel.load(dir, { logits: "all" });
    const single = await LoadedModel.load(`${FX}/base`, { logits: "all" });
    try {
      const a = await computeLogits(sharded.session, [ref.input_ids[0]]);
      const b = await computeLogits(single.session, [ref.input_ids[0]]);
      expect(a[0].map((r) => Array.from(r))).toEqual(b[0].map((r) => Array.from(r)));
    } finally {
      await Promise.all([sharded.release(), single.release()]);
    }
  });

  it("refuses a tensor present in two shards and a folder without weights", async () => {
    await expect(openWeights(await shardedCopy(true))).rejects.toThrow(/also appears in another shard/);
    await expect(openWeights(mkdtempSync(join(tmpdir(), "empty-")))).rejects.toThrow(/no \*\.safetensors file/);
  });
});
