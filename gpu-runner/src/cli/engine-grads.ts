// `engine grads --model DIR --adapter DIR --tokens "103,47;146,141" --out FILE`: the mean next-token
// cross-entropy over all positions of the rows and its gradient norm and sum for every LoRA tensor.
import { writeFile } from "node:fs/promises";
import { loadModelConfig } from "../engine/model/load-config.js";
import { openWeights } from "../engine/model/weights.js";
import { loadLoraAdapter } from "../engine/lora/peft.js";
import { nextTokenBatch } from "../engine/train/feeds.js";
import { frobenius, paramsFromAdapter, total } from "../engine/train/lora-params.js";
import { LoraTrainer } from "../engine/train/trainer.js";
import { checkVocabulary, existingFolder, outputFile, parseFlags, parseTokenRows, printedHelp, required, UsageError } from "./args.js";

const USAGE = 'usage: tuneserve engine grads --model DIR --adapter DIR --tokens "103,47,59;146,141,142" --out FILE [--dtype float32|float64]';

export async function run(argv: string[]): Promise<void> {
  if (printedHelp(argv, USAGE)) return;
  const { values } = parseFlags({
    args: argv,
    options: { model: { type: "string" }, adapter: { type: "string" }, tokens: { type: "string" }, out: { type: "string" }, dtype: { type: "string" } },
  }, USAGE);
  const dir = existingFolder(required(values.model, "--model", USAGE), "--model", "config.json");
  const adapterDir = existingFolder(required(values.adapter, "--adapter", USAGE), "--adapter", "adapter_config.json");
  const rows = parseTokenRows(required(values.tokens, "--tokens", USAGE));
  const out = outputFile(required(values.out, "--out", USAGE), "--out");
  const dtype = values.dtype ?? "float32";
  if (dtype !== "float32" && dtype !== "float64") throw new UsageError(`--dtype=${dtype} must be float32 or float64`);
  const cfg = await loadModelConfig(dir);
  checkVocabulary(rows, cfg.vocab);
  const adapter = await loadLoraAdapter(adapterDir, cfg);
  const trainer = new LoraTrainer(cfg, await openWeights(dir), { rank: adapter.rank, scale: adapter.scale, targets: adapter.targets, dtype });
  try {
    trainer.setParams(paramsFromAdapter(adapter, trainer.params, dtype));
    const { loss, grads } = await trainer.grads(nextTokenBatch(rows));
    const gradNorms: Record<string, number> = {};
    const gradSums: Record<string, number> = {};
    for (const p of trainer.params) {
      const g = grads.get(p.name)!;
      gradNorms[p.name] = frobenius(g);
      gradSums[p.name] = total(g);
    }
    await writeFile(out, JSON.stringify({ loss, grad_norms: gradNorms, grad_sums: gradSums }));
  } finally {
    await trainer.release();
  }
}
