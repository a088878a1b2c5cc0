// The built-in model: a valid Llama config, the byte-level tokenizer, deterministic weights, idempotent creation.
import { mkdtemp, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { loadModelConfig } from "../../../gpu-runner/src/engine/model/config.js";
import { loadTokenizer } from "../../../gpu-runner/src/engine/tokenizer/tokenizer.js";
import { ensureBuiltinModel } from "../../../gpu-runner/src/models/builtin.js";

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
