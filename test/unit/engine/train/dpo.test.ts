// DPO end to end in the engine: pair rendering, the whole model's float64 DPO gradients against finite
// differences, and a run on the built-in model whose exported adapter, scored through the inference path,
// prefers the chosen answers more than the base model does.
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseRecords } from "../../../../gpu-runner/src/engine/data/records.js";
import { renderRecord, tokenizeRecords } from "../../../../gpu-runner/src/engine/data/render.js";
import { rowsToBatch } from "../../../../gpu-runner/src/engine/data/batches.js";
import { loadModelConfig } from "../../../../gpu-runner/src/engine/model/load-config.js";
import { openWeights } from "../../../../gpu-runner/src/engine/model/weights.js";
import { loadLoraAdapter } from "../../../../gpu-runner/src/engine/lora/peft.js";
import { computeLogits } from "../../../../gpu-runner/src/engine/runtime/logits.js";
import { LoadedModel } from "../../../../gpu-runner/src/engine/runtime/loaded-model.js";
import { loadTokenizer, type TextTokenizer } from "../../../../gpu-runner/src/engine/tokenizer/tokenizer.js";
import { runTraining, type TrainEvent } from "../../../../gpu-runner/src/engine/train/loop.js";
import { paramsFromAdapter } from "../../../../gpu-runner/src/engine/train/lora-params.js";
import { LoraTrainer } from "../../../../gpu-runner/src/engine/train/trainer.js";
import { ensureBuiltinModel } from "../../../../gpu-runner/src/models/builtin.js";
import { worstGradientError } from "./finite-differences.js";

const FIXTURES = join(import.meta.dirname, "../../../../../shared/fixtures");
const pair = (q: string, yes: string, no: string) =>
  JSON.stringify({ input: { messages: [{ role: "user", content: q }] }, preferred_output: [{ role: "assistant", content: yes }], non_preferred_output: [{ role: "assistant", content: no }] });

let root: string;
let model: string;
let tok: TextTokenizer;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "tuneserve-dpo-"));
  model = await ensureBuiltinModel(join(root, "model"));
  tok = (await loadTokenizer(model))!;
});
afterAll(() => rm(root, { recursive: true, force: true }));

describe("preference records", () => {
  it("render as the conversation with each answer, only the answer's turn trained", () => {
    const [r] = parseRecords(pair("Sky?", "blue", "green"));
    expect(r.format).toBe("preference");
    const ex = renderRecord(r, tok);
    const prompt = tok.encodeChat([{ role: "user", content: "Sky?" }], { addGenerationPrompt: true });
    for (const [seq, answer] of [[ex, "blue"], [ex.rejected!, "green"]] as const) {
      expect(seq.ids.slice(0, prompt.length)).toEqual(prompt);
      expect(seq.train.slice(0, prompt.length).some(Boolean)).toBe(false);
      expect(tok.decode(seq.ids.filter((_, i) => seq.train[i]))).toBe(`${answer}<|im_end|>`);
    }
  });

  it("keep earlier assistant turns of the input as context, not trained", () => {
    const line = JSON.stringify({
      input: { messages: [{ role: "user", content: "a" }, { role: "assistant", content: "earlier" }, { role: "user", content: "b" }] },
      preferred_output: [{ role: "assistant", content: "yes" }],
      non_preferred_output: [{ role: "assistant", content: "no" }],
    });
    const ex = renderRecord(parseRecords(line)[0], tok);
    expect(tok.decode(ex.ids.filter((_, i) => ex.train[i]))).toBe("yes<|im_end|>");
  });

  it("skip a pair whose answers seq_len cuts away, and batch as chosen, rejected rows", () => {
    const long = "x".repeat(200);
    const data = tokenizeRecords(parseRecords([pair("q", "a", "b"), pair(long, "a", "b")].join("\n")), tok, 64);
    expect(data.examples).toHaveLength(1);
    // Both answers are cut at the same point of the shared input: what is left is the same tokens.
    expect(data).toMatchObject({ indistinct: 1, dropped: 0, truncated: 1 });
    const b = rowsToBatch([{ ...data.examples[0], ref: [-1, -2] }]);
    expect(b.rows).toHaveLength(2);
    expect(b.ref).toEqual([-1, -2]);
    expect(() => rowsToBatch([data.examples[0]])).toThrow(/reference log-likelihoods/);
  });

  it("skip a pair whose answers are the same tokens once cut to seq_len", () => {
    const data = tokenizeRecords(parseRecords([pair("q", "a".repeat(80) + "X", "a".repeat(80) + "Y"), pair("q", "aX", "aY")].join("\n")), tok, 64);
    expect(data).toMatchObject({ indistinct: 1, dropped: 0, truncated: 1 });
    expect(data.examples).toHaveLength(1);
  });

  it("refuse a file that mixes pairs with chat lines, naming the line", () => {
    expect(() => parseRecords([pair("q", "a", "b"), JSON.stringify({ messages: [{ role: "user", content: "q" }, { role: "assistant", content: "a" }] })].join("\n"))).toThrow(/:2: is a chat record but the file's first record is preference/);
    expect(() => parseRecords(pair("q", "a", "a"))).toThrow(/non_preferred_output: is the same as preferred_output/);
  });
});

describe.each(["micro-llama", "micro-qwen2"])("%s float64 DPO gradients", (name) => {
  it("match central finite differences on sampled LoRA elements", async () => {
    const dir = join(FIXTURES, name);
    const cfg = await loadModelConfig(join(dir, "base"));
    const adapter = await loadLoraAdapter(join(dir, "adapter"), cfg);
    const t = new LoraTrainer(cfg, await openWeights(join(dir, "base")), { rank: adapter.rank, scale: adapter.scale, targets: adapter.targets, dtype: "float64", threads: 1, objective: { kind: "dpo", beta: 0.7 } });
    t.setParams(paramsFromAdapter(adapter, t.params, "float64"));
    // Two pairs (chosen, rejected) of different lengths; references off the model's own values, so margins are not 0.
    const batch = rowsToBatch([
      { ids: [3, 17, 200, 45, 9], train: [false, false, true, true, true], rejected: { ids: [3, 17, 88, 1], train: [false, false, true, true] }, ref: [-20, -12] },
      { ids: [101, 7, 250, 31], train: [false, true, true, false], rejected: { ids: [101, 7, 7, 64, 5, 6], train: [false, true, true, true, true, true] }, ref: [-9, -30] },
    ]);
    expect((await t.grads(batch)).loss).toBeGreaterThan(0);
    const { worst } = await worstGradientError(t, batch);
    expect(worst).toBeLessThan(1e-6);
    await t.release();
  });
});

/** log p(answer | conversation) under a model (with its adapter), from full-sequence logits. */
async function answerLogps(adapter: string | undefined, rows: { ids: number[]; train: boolean[] }[]): Promise<number[]> {
  const m = await LoadedModel.load(model, { adapter, logits: "all" });
  try {
    const logits = await computeLogits(m.session, rows.map((r) => r.ids), { loraFeeds: m.loraFeeds(), adapterIndex: rows.map(() => m.defaultSlot) });
    return rows.map((r, b) => {
      let s = 0;
      for (let i = 1; i < r.ids.length; i++) {
        if (!r.train[i]) continue;
        const row = logits[b][i - 1];
        const mx = Math.max(...row);
        s += row[r.ids[i]] - mx - Math.log(row.reduce((a, x) => a + Math.exp(x - mx), 0));
      }
      return s;
    });
  } finally {
    await m.release();
  }
}

it("a DPO adapter prefers the chosen answers more than the base model does", async () => {
  const pairs: [string, string, string][] = [["Is fire hot?", "yes", "no"], ["Is ice hot?", "no", "yes"], ["Sky colour?", "blue", "green"], ["Grass colour?", "green", "blue"]];
  const data = join(root, "pairs.jsonl");
  await writeFile(data, pairs.map((p) => pair(...p)).join("\n") + "\n");
  const events: TrainEvent[] = [];
  const out = join(root, "dpo-adapter");
  const res = await runTraining({ modelDir: model, dataPath: data, validationPath: data, outDir: out, epochs: 30, batchSize: 4, seqLen: 64, lr: 5e-3, beta: 0.1, seed: 3 }, { onEvent: (e) => void events.push(e) });
  const validations = events.filter((e) => e.type === "validation");
  expect(validations.at(-1)).toMatchObject({ rewardAccuracy: 1 });
  expect(res.metrics.valid_reward_accuracy).toBe(1);
  // DPO's loss starts at log 2 (adapter = reference) and falls.
  const progress = events.filter((e) => e.type === "progress");
  expect(progress[0].loss).toBeCloseTo(Math.log(2), 5);
  expect(res.finalLoss).toBeLessThan(0.3);
  // Billed tokens count both answers of every pair, every epoch, plus the validation passes.
  const examples = tokenizeRecords(parseRecords(pairs.map((p) => pair(...p)).join("\n")), tok, 64).examples;
  const perEpoch = examples.reduce((n, e) => n + e.ids.length + e.rejected!.ids.length, 0);
  expect(res.trainedTokens).toBe(perEpoch * 30 + perEpoch * validations.length);

  // beta belongs to DPO: given for a supervised file, the run refuses to start.
  const chat = join(root, "chat.jsonl");
  await writeFile(chat, JSON.stringify({ messages: [{ role: "user", content: "q" }, { role: "assistant", content: "a" }] }) + "\n");
  await expect(runTraining({ modelDir: model, dataPath: chat, outDir: join(root, "sft"), beta: 0.2 })).rejects.toThrow(`beta is DPO's, and ${chat} holds chat records`);

  const seqs = examples.flatMap((e) => [e, e.rejected!]);
  const margin = (lp: number[]) => pairs.map((_, p) => lp[2 * p] - lp[2 * p + 1]);
  const base = margin(await answerLogps(undefined, seqs));
  const tuned = margin(await answerLogps(out, seqs));
  tuned.forEach((m, p) => expect(m).toBeGreaterThan(base[p] + 10));
});

it("continues a fine-tuned adapter: supervised first, then DPO on it with that model as the reference", async () => {
  const sftData = join(root, "sft.jsonl");
  const chat = (q: string, a: string) => JSON.stringify({ messages: [{ role: "user", content: q }, { role: "assistant", content: a }] });
  await writeFile(sftData, [chat("Is fire hot?", "yes"), chat("Is ice hot?", "no")].join("\n") + "\n");
  const sft = join(root, "sft-adapter");
  const first: TrainEvent[] = [];
  await runTraining({ modelDir: model, dataPath: sftData, outDir: sft, epochs: 40, batchSize: 2, seqLen: 64, lr: 1e-2, seed: 2 }, { onEvent: (e) => void first.push(e) });
  const losses = (ev: TrainEvent[]) => ev.flatMap((e) => (e.type === "progress" ? [e.loss] : []));
  // Continued, the supervised loss picks up where the first run ended, not from a new adapter's.
  const again: TrainEvent[] = [];
  await runTraining({ modelDir: model, dataPath: sftData, outDir: join(root, "sft-again"), epochs: 1, batchSize: 2, seqLen: 64, lr: 1e-2, seed: 2, initAdapter: sft }, { onEvent: (e) => void again.push(e) });
  expect(losses(again)[0]).toBeLessThan(losses(first)[0] / 4);
  expect(losses(again)[0]).toBeCloseTo(losses(first).at(-1)!, 1);

  // DPO from the supervised adapter: the reference is that model, so the first loss is exactly log 2.
  const pairs = join(root, "after-sft.jsonl");
  await writeFile(pairs, [pair("Is fire hot?", "yes", "no"), pair("Is ice hot?", "no", "yes")].join("\n") + "\n");
  const dpo: TrainEvent[] = [];
  await runTraining({ modelDir: model, dataPath: pairs, outDir: join(root, "sft-dpo"), epochs: 5, batchSize: 2, seqLen: 64, lr: 1e-3, seed: 2, initAdapter: sft }, { onEvent: (e) => void dpo.push(e) });
  expect(losses(dpo)[0]).toBeCloseTo(Math.log(2), 5);
  // Its checkpoint resumes only from the same starting adapter.
  await expect(runTraining({ modelDir: model, dataPath: pairs, outDir: join(root, "sft-dpo-2"), epochs: 5, batchSize: 2, seqLen: 64, lr: 1e-3, seed: 2, resumeFrom: join(root, "sft-dpo", "checkpoints", "5") })).rejects.toThrow(/different initial_adapter_sha256/);

  await expect(runTraining({ modelDir: model, dataPath: sftData, outDir: join(root, "bad"), rank: 4, initAdapter: sft })).rejects.toThrow(/the initial adapter has r=8, and this run trains r=4/);
  await expect(runTraining({ modelDir: model, dataPath: sftData, outDir: join(root, "bad"), alpha: 32, initAdapter: sft })).rejects.toThrow(/scales its update by 2, and this run by 4/);
});
