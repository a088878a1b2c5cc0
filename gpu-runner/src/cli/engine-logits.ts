// `engine logits --model DIR [--adapter DIR] [--merge] --tokens "1,2;3,4" --out FILE`: writes
// {"logits": number[batch][position][vocab]} for every real position of every row (no padding).
import { writeFile } from "node:fs/promises";
import { LoadedModel } from "../engine/runtime/loaded-model.js";
import { computeLogits } from "../engine/runtime/logits.js";
import { checkVocabulary, existingFolder, outputFile, parseFlags, parseTokenRows, printedHelp, required } from "./args.js";

const USAGE = 'usage: tuneserve engine logits --model DIR [--adapter DIR] [--merge] --tokens "103,47,59;146,141,142" --out FILE';

export async function run(argv: string[]): Promise<void> {
  if (printedHelp(argv, USAGE)) return;
  const { values } = parseFlags({
    args: argv,
    options: { model: { type: "string" }, adapter: { type: "string" }, merge: { type: "boolean" }, tokens: { type: "string" }, out: { type: "string" } },
  }, USAGE);
  const dir = existingFolder(required(values.model, "--model", USAGE), "--model", "config.json");
  if (values.adapter !== undefined) existingFolder(values.adapter, "--adapter", "adapter_config.json");
  const rows = parseTokenRows(required(values.tokens, "--tokens", USAGE));
  const out = outputFile(required(values.out, "--out", USAGE), "--out");
  const model = await LoadedModel.load(dir, { adapter: values.adapter, merge: values.merge, logits: "all" });
  try {
    checkVocabulary(rows, model.cfg.vocab);
    const logits = await computeLogits(model.session, rows, { adapterIndex: rows.map(() => model.defaultSlot), loraFeeds: model.loraFeeds() });
    await writeFile(out, JSON.stringify({ logits: logits.map((r) => r.map((p) => Array.from(p))) }));
  } finally {
    await model.release();
  }
}
