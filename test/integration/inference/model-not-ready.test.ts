// A blob-store base model the runner registered but does not serve yet: requests for it are answered with
// what is going on (503 model_loading while its files download, 502 model_unavailable naming the download's
// error), not with the 404 of a model this runner never offered, so an operator reading the API's log sees why.
import { afterAll, beforeAll, expect, it } from "vitest";
import type { InferenceServer } from "../../../gpu-runner/src/serve/server.js";
import { startBareInferenceServer } from "../../helpers/bare-inference-server.js";

const TOKEN = "runner-token";
let server: InferenceServer;
let close: () => Promise<void>;

beforeAll(async () => {
  // No model served from the start: no worker to load.
  ({ server, close } = await startBareInferenceServer(TOKEN));
});

afterAll(async () => {
  await close?.();
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
