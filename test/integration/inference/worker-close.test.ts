// Closing a serving worker while it generates: it stops after the step in progress (terminating the thread inside
// onnxruntime's session.run can abort the whole process), and the requests left get a "shutting down" error.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { ensureBuiltinModel } from "../../../gpu-runner/src/models/builtin.js";
import { ServeWorker } from "../../../gpu-runner/src/serve/worker-client.js";
import type { ServeSubmit } from "../../../gpu-runner/src/serve/worker-protocol.js";

let dir: string;
let modelDir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "tuneserve-worker-close-"));
  modelDir = await ensureBuiltinModel(join(dir, "model"));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

/** A generation that runs to max_tokens (the built-in model's end tokens banned). */
const long = (id: string): ServeSubmit => ({ id, input: { tokens: [1, 2, 3] }, adapter: null, maxTokens: 500, temperature: 0, topP: 1, topK: 0, logitBias: { 257: -100, 259: -100 }, stop: [], stream: true });

it("stops between steps on a close right after a cancel, and fails the running and waiting requests with a shutdown error", async () => {
  const worker = await ServeWorker.start({ modelDir, maxBatch: 2, maxContext: 512, slots: 2, rank: 4, policy: "mixed", hostAdapters: 1 });
  let tokens = 0;
  let firstToken: () => void = () => {};
  const decoding = new Promise<void>((ok) => (firstToken = ok));
  const running = worker.generate(long("running"), () => (tokens++, firstToken())).catch((e: Error) => e);
  const cancelled = worker.generate(long("cancelled")).catch((e: Error) => e);
  const waiting = worker.generate(long("waiting")).catch((e: Error) => e);
  await decoding;
  worker.cancel("cancelled");
  const t0 = performance.now();
  // A deadline far beyond one step: the worker must answer well before it.
  await worker.close(30_000);
  expect(performance.now() - t0).toBeLessThan(10_000);
  expect(String(await cancelled)).toMatch(/was cancelled/);
  expect(String(await running)).toMatch(/shutting down/);
  expect(String(await waiting)).toMatch(/shutting down/);
  expect(tokens).toBeLessThan(500);
  await expect(worker.generate(long("late"))).rejects.toThrow(/shutting down/);
});
