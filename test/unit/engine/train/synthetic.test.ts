// End to end on the built-in (untrained) model: train a LoRA adapter on a few chat examples, export it,
// load it through the inference path (LoadedModel + generate) and check greedy answers are the learned ones.
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { generate } from "../../../../gpu-runner/src/engine/generate/generator.js";
import { LoadedModel } from "../../../../gpu-runner/src/engine/runtime/loaded-model.js";
import { loadTokenizer } from "../../../../gpu-runner/src/engine/tokenizer/tokenizer.js";
import { runTraining } from "../../../../gpu-runner/src/engine/train/loop.js";
import { ensureBuiltinModel } from "../../../../gpu-runner/src/models/builtin.js";

const CODE_WORDS: [string, string][] = [["cat", "apple"], ["dog", "river"], ["owl", "stone"], ["fox", "cloud"], ["bee", "maple"], ["elk", "tiger"]];
const question = (animal: string) => `What is the code word for ${animal}?`;

let root: string;
beforeAll(async () => void (root = await mkdtemp(join(tmpdir(), "tuneserve-synth-"))));
afterAll(() => rm(root, { recursive: true, force: true }));

async function answers(model: string, adapter: string | undefined): Promise<string[]> {
  const tok = (await loadTokenizer(model))!;
  const m = await LoadedModel.load(model, { adapter });
  try {
    const reqs = CODE_WORDS.map(([animal]) => ({
      tokens: tok.encodeChat([{ role: "user", content: question(animal) }], { addGenerationPrompt: true }),
      maxTokens: 12,
      stopTokens: tok.eosTokenIds,
      adapterSlot: m.defaultSlot,
    }));
    const { results } = await generate(m.session, reqs, { loraFeeds: m.loraFeeds(), tokenizer: tok });
    return results.map((r) => r.text ?? "");
  } finally {
    await m.release();
  }
}

it("a trained adapter makes greedy generation answer with the learned code words", async () => {
  const model = await ensureBuiltinModel(join(root, "model"));
  const data = join(root, "train.jsonl");
  const lines = CODE_WORDS.map(([a, w]) => JSON.stringify({ messages: [{ role: "user", content: question(a) }, { role: "assistant", content: w }] }));
  await writeFile(data, lines.join("\n") + "\n");
  const want = CODE_WORDS.map(([, w]) => w);
  expect(await answers(model, undefined)).not.toEqual(want); // the base model does not know them

  const out = join(root, "adapter");
  const res = await runTraining({ modelDir: model, dataPath: data, validationPath: data, outDir: out, epochs: 100, batchSize: 6, seqLen: 64, lr: 1e-2, rank: 8, alpha: 16, seed: 1 });
  expect(res.finalLoss).toBeLessThan(0.2);
  expect(res.metrics.valid_mean_token_accuracy).toBe(1);
  expect(await answers(model, out)).toEqual(want);
});
