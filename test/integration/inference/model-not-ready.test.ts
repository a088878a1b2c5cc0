// A blob-store base model the runner registered but does not serve yet: requests for it are answered with
// what is going on (503 model_loading while its files download, 502 model_unavailable naming the download's
// error), not with the 404 of a model this runner never offered, so an operator reading the API's log sees why.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { startInferenceServer, type InferenceServer } from "../../../gpu-runner/src/serve/server.js";
import { LocalAdapterSource } from "../../../gpu-runner/src/serve/source.js";

const TOKEN = "runner-token";
let dir: string;
let server: InferenceServer;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "tuneserve-model-not-ready-"));
  // No model served from the start: no worker to load.
  server = await startInferenceServer({ apiUrl: "http://127.0.0.1:9", runnerToken: TOKEN, listen: "127.0.0.1:0", models: {}, cacheDir: join(dir, "cache"), source: new LocalAdapterSource({}) });
});

afterAll(async () => {
  await server?.close();
  await rm(dir, { recursive: true, force: true });
});

const generate = async (model: string) => {
  const res = await fetch(`${server.url}/v1/generate`, {
    method: "POST",
    headers: { Authorization: `Bearer ${TOKEN}`, "Content-Type": "application/json" },
    body: JSON.stringify({ request_id: "r", model, input: { tokens: [1, 2, 3] }, max_tokens: 2 }),
  });
  return { status: res.status, retryAfter: res.headers.get("retry-after"), error: ((await res.json()) as { error: { code: string; message: string; param: string | null } }).error };
};

it("answers 503 model_loading while a model's files download, then 502 model_unavailable with the download's error", async () => {
  server.modelNotReady("blobby", null);
  const loading = await generate("blobby");
  expect(loading).toMatchObject({ status: 503, retryAfter: expect.any(String), error: { code: "model_loading", param: "model" } });
  expect(loading.error.message).toMatch(/base model blobby: its files are being downloaded to this runner/);

  server.modelNotReady("blobby", "base model blobby: downloading model.safetensors: GET http://blobs/models/blobby/model.safetensors?…: 403 expired");
  const failed = await generate("blobby");
  expect(failed).toMatchObject({ status: 502, error: { code: "model_unavailable", param: "model" } });
  expect(failed.error.message).toMatch(/^base model blobby is not served by this runner yet: base model blobby: downloading model\.safetensors: .*403 expired$/);

  // A model this runner was never given stays a 404.
  expect(await generate("other")).toMatchObject({ status: 404, error: { code: "model_not_served" } });
});
