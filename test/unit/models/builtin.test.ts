// The built-in model: a valid Llama config, the byte-level tokenizer, deterministic weights, idempotent creation;
// and bigger models of its family for the serving benchmark.
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { loadModelConfig } from "../../../gpu-runner/src/engine/model/load-config.js";
import { loadTokenizer } from "../../../gpu-runner/src/engine/tokenizer/tokenizer.js";
import { loadLoraAdapter } from "../../../gpu-runner/src/engine/lora/peft.js";
import { BUILTIN_SIZES, ensureBuiltinModel } from "../../../gpu-runner/src/models/builtin.js";
import { randomBuiltinAdapter } from "../../../bench/stack.js";

let root: string;
beforeAll(async () => void (root = await mkdtemp(join(tmpdir(), "tuneserve-builtin-"))));
afterAll(() => rm(root, { recursive: true, force: true }));

it("writes a loadable model with the byte-level ChatML tokenizer, identically every time, once", async () => {
  const [a, b] = await Promise.all([ensureBuiltinModel(join(root, "a")), ensureBuiltinModel(join(root, "b"))]);
  const cfg = await loadModelConfig(a);
  expect(cfg).toMatchObject({ architecture: "LlamaForCausalLM", hidden: 128, layers: 2, vocab: 260 });
  const tok = (await loadTokenizer(a))!;
  expect(tok.vocabSize).toBe(260);
  expect(tok.encodeChat([{ role: "user", content: "hi" }])[0]).toBe(258);
  expect((await readFile(join(a, "model.safetensors"))).equals(await readFile(join(b, "model.safetensors")))).toBe(true);
  const before = (await stat(join(a, "model.safetensors"))).mtimeMs;
  await ensureBuiltinModel(a);
  expect((await stat(join(a, "model.safetensors"))).mtimeMs).toBe(before);
});

it("makes a bigger model of the same family, with adapters that fit it, for the serving benchmark", async () => {
  const sizes = { hidden: 64, layers: 3, heads: 2, kvHeads: 1, headDim: 48, intermediate: 96 };
  const dir = await ensureBuiltinModel(join(root, "bigger"), sizes, "tuneserve-bench-test");
  const cfg = await loadModelConfig(dir);
  expect(cfg).toMatchObject({ hidden: 64, layers: 3, heads: 2, kvHeads: 1, headDim: 48, intermediate: 96, vocab: 260 });
  expect(JSON.parse(await readFile(join(dir, "config.json"), "utf8"))._name_or_path).toBe("tuneserve-bench-test");
  const adapterDir = join(root, "bigger-adapter");
  const a = randomBuiltinAdapter(5, 4, sizes);
  await mkdir(adapterDir);
  await writeFile(join(adapterDir, "adapter_config.json"), a.config);
  await writeFile(join(adapterDir, "adapter_model.safetensors"), a.weights);
  const adapter = await loadLoraAdapter(adapterDir, cfg);
  expect(adapter.rank).toBe(4);
  // An adapter for the built-in sizes does not fit it, and says so.
  const wrong = randomBuiltinAdapter(5, 4);
  await writeFile(join(adapterDir, "adapter_model.safetensors"), wrong.weights);
  await expect(loadLoraAdapter(adapterDir, cfg)).rejects.toThrow(/shape/);
});

it("keeps the built-in model's marker, so existing data folders are not rebuilt", async () => {
  const marker = JSON.parse(await readFile(join(await ensureBuiltinModel(join(root, "marker")), "tuneserve-model.json"), "utf8"));
  expect(marker.sizes).toEqual({ ...BUILTIN_SIZES, vocab: 260 });
});
