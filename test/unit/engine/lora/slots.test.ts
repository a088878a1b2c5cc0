// LoRA slots: zero-padding a smaller rank is exact, unmerged equals merged for partial and rsLoRA
// adapters, and one batch can mix base, full and partial adapters row by row.
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadLoraAdapter } from "../../../../gpu-runner/src/engine/lora/peft.js";
import { LoadedModel } from "../../../../gpu-runner/src/engine/runtime/loaded-model.js";
import { computeLogits } from "../../../../gpu-runner/src/engine/runtime/logits.js";
import { readSafetensors, writeSafetensors } from "../../../../gpu-runner/src/engine/weights/safetensors.js";
import { fixturesDir } from "../../../helpers/fixtures.js";

const FX = `${fixturesDir}/micro-qwen2`;
const ref = JSON.parse(readFileSync(`${FX}/reference.json`, "utf8"));
const rows: number[][] = [ref.input_ids[0].slice(0, 9), ref.input_ids[1], ref.input_ids[0]];

function maxDiff(a: Float32Array[][], b: Float32Array[][]): number {
  let m = 0;
  a.forEach((r, i) => r.forEach((p, t) => p.forEach((v, j) => (m = Math.max(m, Math.abs(v - b[i][t][j]))))));
  return m;
}

/** A copy of the fixture adapter restricted to `targets`, optionally with use_rslora. */
async function writeVariant(targets: string[], rslora: boolean): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), "lora-variant-"));
  const cfg = JSON.parse(readFileSync(`${FX}/adapter/adapter_config.json`, "utf8"));
  writeFileSync(join(dir, "adapter_config.json"), JSON.stringify({ ...cfg, target_modules: targets, use_rslora: rslora }));
  const src = await readSafetensors(`${FX}/adapter/adapter_model.safetensors`);
  const keep = src.names().filter((n) => targets.some((t) => n.includes(`.${t}.`)));
  await writeSafetensors(join(dir, "adapter_model.safetensors"), Object.fromEntries(keep.map((n) => [n, { shape: src.shape(n), data: src.tensor(n) }])));
  return dir;
}

describe("LoRA slots", () => {
  let partialDir: string;
  let served: LoadedModel;
  beforeAll(async () => {
    partialDir = await writeVariant(["q_proj", "v_proj", "down_proj"], true);
    // Rank 12 slots hold the r=8 adapters zero-padded.
    served = await LoadedModel.load(`${FX}/base`, { logits: "all", slots: 3, rank: 12 });
    served.slots!.load(1, await loadLoraAdapter(`${FX}/adapter`, served.cfg));
    served.slots!.load(2, await loadLoraAdapter(partialDir, served.cfg));
  });
  afterAll(async () => served?.release());

  it("a zero-padded rank-12 slot reproduces the reference logits", async () => {
    const logits = await computeLogits(served.session, ref.input_ids, { adapterIndex: [1, 1], loraFeeds: served.loraFeeds() });
    let m = 0;
    for (let b = 0; b < 2; b++) for (let p = 0; p < 2; p++) ref.logits_first2[b][p].forEach((v: number, i: number) => (m = Math.max(m, Math.abs(logits[b][p][i] - v))));
    expect(m).toBeLessThan(1e-4);
  });

  it("mixes base, full and partial rsLoRA adapters in one batch, matching merged models row by row", async () => {
    const mixed = await computeLogits(served.session, rows, { adapterIndex: [2, 0, 1], loraFeeds: served.loraFeeds() });
    const mergedPartial = await LoadedModel.load(`${FX}/base`, { logits: "all", adapter: partialDir, merge: true });
    const mergedFull = await LoadedModel.load(`${FX}/base`, { logits: "all", adapter: `${FX}/adapter`, merge: true });
    const plain = await LoadedModel.load(`${FX}/base`, { logits: "all" });
    try {
      const want = [
        (await computeLogits(mergedPartial.session, [rows[0]]))[0],
        (await computeLogits(plain.session, [rows[1]]))[0],
        (await computeLogits(mergedFull.session, [rows[2]]))[0],
      ];
      expect(maxDiff(mixed, want)).toBeLessThan(1e-5);
      // The partial adapter really changes the output (so the comparison above can fail).
      expect(maxDiff([mixed[0]], [(await computeLogits(plain.session, [rows[0]]))[0]])).toBeGreaterThan(1e-3);
    } finally {
      await Promise.all([mergedPartial.release(), mergedFull.release(), plain.release()]);
    }
  });

  it("emptying a slot turns it into the base model and out-of-range slots are refused", async () => {
    served.slots!.load(2, null);
    const plainRows = await computeLogits(served.session, [rows[0]], { adapterIndex: [0], loraFeeds: served.loraFeeds() });
    const emptied = await computeLogits(served.session, [rows[0]], { adapterIndex: [2], loraFeeds: served.loraFeeds() });
    expect(maxDiff(emptied, plainRows)).toBe(0);
    expect(() => served.slots!.load(3, null)).toThrow(/slot 3 is out of range 1..2/);
    expect(() => served.slots!.load(0, null)).toThrow(/out of range/);
  });
});
