// Resume determinism: N steps uninterrupted vs. k steps → checkpoint → a new loop in a worker thread
// resumes from it; the per-step losses and the final adapter must be identical (float32, exact).
import { cp, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { runTraining, startTrainingWorker, type TrainEvent, type TrainJobSpec } from "../../../../gpu-runner/src/engine/train/loop.js";
import { colourRunSpec } from "./colour-run.js";

let root: string;
let spec: Omit<TrainJobSpec, "outDir">;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "tuneserve-resume-"));
  spec = await colourRunSpec(root);
});
afterAll(() => rm(root, { recursive: true, force: true }));

// Step, loss and the billable tokens counted so far: a resumed run counts from where the checkpoint left off.
const eventsOf = async (s: TrainJobSpec) => {
  const events: TrainEvent[] = [];
  await runTraining(s, { onEvent: (e) => void events.push(e) });
  return events;
};
const lossesOf = (events: TrainEvent[]) => events.flatMap((e) => (e.type === "progress" ? [[e.step, e.loss, e.trainedTokens] as const] : []));

it("a run resumed from a mid-epoch checkpoint repeats the uninterrupted run's losses and token counts exactly", async () => {
  const full: TrainEvent[] = [];
  await runTraining({ ...spec, outDir: join(root, "full") }, { onEvent: (e) => void full.push(e) });
  const fullLosses = lossesOf(full);
  expect(fullLosses.map(([s]) => s)).toEqual([1, 2, 3, 4, 5, 6]);
  expect(fullLosses[5][1]).toBeLessThan(fullLosses[0][1]);

  const resumed: TrainEvent[] = [];
  const w = startTrainingWorker({ ...spec, outDir: join(root, "resumed"), resumeFrom: join(root, "full", "checkpoints", "3") }, (e) => resumed.push(e));
  const res = await w.result;
  expect(lossesOf(resumed)).toEqual(fullLosses.slice(3));
  expect(res.steps).toBe(6);
  const adapter = (dir: string) => readFile(join(root, dir, "adapter_model.safetensors"));
  expect((await adapter("full")).equals(await adapter("resumed"))).toBe(true);
});

it("resumes a step split into other micro-batches (the same rows a step), and a checkpoint that stored them apart", async () => {
  const fullLosses = lossesOf(await eventsOf({ ...spec, outDir: join(root, "split-full") }));
  const split = await eventsOf({ ...spec, batchSize: 1, gradAccum: 4, outDir: join(root, "split"), resumeFrom: join(root, "split-full", "checkpoints", "3") });
  lossesOf(split).forEach(([step, loss], i) => {
    expect(step).toBe(fullLosses[3 + i][0]);
    expect(loss).toBeCloseTo(fullLosses[3 + i][1], 4);
  });
  // Checkpoints written before the two were one fingerprint: batch_size (micro-batch rows) and grad_accum.
  const old = join(root, "split-old");
  await cp(join(root, "split-full", "checkpoints", "3"), old, { recursive: true });
  const state = JSON.parse(await readFile(join(old, "trainer_state.json"), "utf8"));
  state.fingerprint = { ...state.fingerprint, batch_size: 2, grad_accum: 2 };
  await writeFile(join(old, "trainer_state.json"), JSON.stringify(state));
  expect(lossesOf(await eventsOf({ ...spec, outDir: join(root, "from-old"), resumeFrom: old }))).toEqual(fullLosses.slice(3));
});

it("refuses a checkpoint written with other settings, naming them", async () => {
  await expect(runTraining({ ...spec, lr: 2e-2, outDir: join(root, "other"), resumeFrom: join(root, "full", "checkpoints", "3") })).rejects.toThrow(/different lr; resume with the same settings/);
  // Same file and settings, other rows (as after the model folder's tokenizer changed): its row order does not fit.
  const other = join(root, "other-rows");
  await cp(join(root, "full", "checkpoints", "3"), other, { recursive: true });
  const state = JSON.parse(await readFile(join(other, "trainer_state.json"), "utf8"));
  await writeFile(join(other, "trainer_state.json"), JSON.stringify({ ...state, order: [...state.order, 7] }));
  await expect(runTraining({ ...spec, outDir: join(root, "other-rows-out"), resumeFrom: other })).rejects.toThrow(/data order has 8 rows, and this run's data gives 7; the model's tokenizer or chat template/);
});

it("refuses a checkpoint trained with another chat template that gives as many rows, naming the file", async () => {
  // The model re-registered with a changed template: the same 7 rows, tokenized otherwise.
  const model = join(root, "model-retemplated");
  await cp(spec.modelDir, model, { recursive: true });
  const cfgPath = join(model, "tokenizer_config.json");
  const cfg = JSON.parse(await readFile(cfgPath, "utf8"));
  await writeFile(cfgPath, JSON.stringify({ ...cfg, chat_template: "{{ 'Chat:\\n' }}" + cfg.chat_template }));
  const events: TrainEvent[] = [];
  const run = runTraining({ ...spec, modelDir: model, outDir: join(root, "retemplated"), resumeFrom: join(root, "full", "checkpoints", "3") }, { onEvent: (e) => void events.push(e) });
  await expect(run).rejects.toThrow(/trained with another tokenization of the data: the base model's tokenizer_config\.json changed since/);
  await expect(run).rejects.toMatchObject({ code: "checkpoint_mismatch" });
  expect(events).toContainEqual({ type: "log", level: "info", message: `${spec.dataPath}: 7 example(s) → 7 row(s)` });
});

it("resumes a checkpoint written before the tokenizer joined its fingerprint as before, and fingerprints the ones it writes", async () => {
  const old = join(root, "untokenized");
  await cp(join(root, "full", "checkpoints", "3"), old, { recursive: true });
  const state = JSON.parse(await readFile(join(old, "trainer_state.json"), "utf8"));
  const identity = state.fingerprint.tokenizer;
  expect(identity).toEqual(expect.any(String));
  const weights = state.fingerprint.base_weights;
  expect(JSON.parse(weights)).toEqual({ sha256: expect.stringMatching(/^[0-9a-f]{64}$/), revision: null });
  delete state.fingerprint.tokenizer;
  delete state.fingerprint.base_weights;
  state.version = 1;
  await writeFile(join(old, "trainer_state.json"), JSON.stringify(state));
  const fromOld = lossesOf(await eventsOf({ ...spec, outDir: join(root, "from-untokenized"), resumeFrom: old }));
  const fromNew = lossesOf(await eventsOf({ ...spec, outDir: join(root, "from-tokenized"), resumeFrom: join(root, "full", "checkpoints", "3") }));
  expect(fromOld.map(([s]) => s)).toEqual([4, 5, 6]);
  expect(fromOld).toEqual(fromNew);
  const written = JSON.parse(await readFile(join(root, "from-untokenized", "checkpoints", "6", "trainer_state.json"), "utf8"));
  expect(written.fingerprint.tokenizer).toBe(identity);
  expect(written.fingerprint.base_weights).toBe(weights);
  expect(written.version).toBe(3);
});

it("refuses a checkpoint trained on other base weights (the model's files replaced since), naming both revisions", async () => {
  const before = join(root, "model-r1");
  await cp(spec.modelDir, before, { recursive: true });
  await eventsOf({ ...spec, modelDir: before, baseRevision: "r1", outDir: join(root, "on-r1") });
  // The operator uploads retrained weights under the same names: the tokenizer and every setting stay the same.
  const after = join(root, "model-r2");
  await cp(spec.modelDir, after, { recursive: true });
  const weightsPath = join(after, "model.safetensors");
  const bytes = await readFile(weightsPath);
  // The lowest mantissa bit of the first weight (the data starts after the 8-byte length and the JSON header).
  bytes[8 + Number(bytes.readBigUInt64LE(0))] ^= 0x01;
  await writeFile(weightsPath, bytes);
  const resume = { ...spec, outDir: join(root, "on-r2"), resumeFrom: join(root, "on-r1", "checkpoints", "3") };
  const run = runTraining({ ...resume, modelDir: after, baseRevision: "r2" });
  await expect(run).rejects.toThrow(/trained on other base model weights: revision r1 \(sha256 [0-9a-f]{12}…\), and this run has revision r2 \(sha256 [0-9a-f]{12}…\)/);
  await expect(run).rejects.toMatchObject({ code: "checkpoint_mismatch" });
  // The same weights under another revision (the same files uploaded again) still resume.
  expect(lossesOf(await eventsOf({ ...resume, modelDir: before, baseRevision: "r3" })).map(([s]) => s)).toEqual([4, 5, 6]);
});

it("resumes a DPO run exactly too (the base model's reference values are recomputed the same), and not with another beta", async () => {
  const data = join(root, "pairs.jsonl");
  const pairs = ["red", "green", "blue", "cyan", "pink"].map((c, i) => JSON.stringify({ input: { messages: [{ role: "user", content: `colour ${i}?` }] }, preferred_output: [{ role: "assistant", content: c }], non_preferred_output: [{ role: "assistant", content: "no" }] }));
  await writeFile(data, pairs.join("\n") + "\n");
  const dpo = { ...spec, dataPath: data, beta: 0.2 };
  const full: TrainEvent[] = [];
  await runTraining({ ...dpo, outDir: join(root, "dpo-full") }, { onEvent: (e) => void full.push(e) });
  const fullLosses = lossesOf(full);
  expect(fullLosses[0][1]).toBeCloseTo(Math.log(2), 5);
  const resumed: TrainEvent[] = [];
  await runTraining({ ...dpo, outDir: join(root, "dpo-resumed"), resumeFrom: join(root, "dpo-full", "checkpoints", "3") }, { onEvent: (e) => void resumed.push(e) });
  expect(lossesOf(resumed)).toEqual(fullLosses.slice(3));
  await expect(runTraining({ ...dpo, beta: 0.3, outDir: join(root, "dpo-other"), resumeFrom: join(root, "dpo-full", "checkpoints", "3") })).rejects.toThrow(/different beta/);
});
