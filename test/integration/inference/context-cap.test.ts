// A serving worker caps the configured context at the model's position table: the engine has no
// positions beyond max_position_embeddings (2048 for the built-in model).
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { ensureBuiltinModel } from "../../../gpu-runner/src/models/builtin.js";
import { ServeWorker } from "../../../gpu-runner/src/serve/worker-client.js";

let dir: string;
let worker: ServeWorker;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "tuneserve-context-cap-"));
  const modelDir = await ensureBuiltinModel(join(dir, "model"));
  worker = await ServeWorker.start({ modelDir, maxBatch: 2, maxContext: 100_000, slots: 3, rank: 8, policy: "mixed", hostAdapters: 4 });
});
afterAll(async () => {
  await worker?.close();
  await rm(dir, { recursive: true, force: true });
});

const request = (maxTokens: number) => ({ id: String(maxTokens), input: { tokens: [1, 2, 3] }, adapter: null, maxTokens, temperature: 0, topP: 1, topK: 0, seed: 1, stop: [], stream: false });

it("refuses prompt + max_tokens beyond max_position_embeddings as the request's fault, and serves what fits", async () => {
  await expect(worker.generate(request(2046))).rejects.toMatchObject({ invalid: true, message: expect.stringMatching(/context of 2048/) });
  expect((await worker.generate(request(4))).completionTokens).toBeGreaterThan(0);
});
