// The small run the resume and suspend tests share: 7 chat rows, batch 2 × accumulation 2 → 2 steps per epoch
// (the second one short), 3 epochs = 6 steps, a checkpoint every 3 steps; the one at step 3 sits mid-epoch,
// so the saved row order and RNG state both matter.
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { TrainJobSpec } from "../../../../gpu-runner/src/engine/train/loop.js";
import { ensureBuiltinModel } from "../../../../gpu-runner/src/models/builtin.js";

/** Writes the data and the built-in model under `root`; the spec lacks only its output folder. */
export async function colourRunSpec(root: string): Promise<Omit<TrainJobSpec, "outDir">> {
  const data = join(root, "train.jsonl");
  const chats = ["red", "green", "blue", "cyan", "pink", "gray", "gold"].map((c, i) => JSON.stringify({ messages: [{ role: "user", content: `colour ${i}?` }, { role: "assistant", content: c }] }));
  await writeFile(data, chats.join("\n") + "\n");
  return { modelDir: await ensureBuiltinModel(join(root, "model")), dataPath: data, epochs: 3, batchSize: 2, gradAccum: 2, seqLen: 48, lr: 1e-2, rank: 4, alpha: 8, seed: 11, checkpointEvery: 3 };
}
