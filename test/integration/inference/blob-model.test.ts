// A runner configured with a blob-prefix base model (no local folder) serves it: the model's files sit in the
// API's blob store under models/<id>/, the runner fetches them through GET /internal/v1/models/{id}/files into
// its cache, and POST /v1/completions reaches it through the API. An id the API does not know is not offered.
import { mkdtemp, readFile, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FsBlobStore } from "../../../api/src/blob/fs.js";
import { startServer } from "../../../api/src/node.js";
import { ensureBuiltinModel } from "../../../gpu-runner/src/models/builtin.js";
import { loadRunnerConfig } from "../../../gpu-runner/src/runner/config.js";
import { startRunner, type RunningRunner } from "../../../gpu-runner/src/runner/runner.js";

let dir: string;
let api: Awaited<ReturnType<typeof startServer>>;
let runner: RunningRunner;
let sourceDir: string;
const lines: Array<{ level: string; msg: string } & Record<string, unknown>> = [];

const call = async (method: string, path: string, token: string, body?: unknown) => {
  const res = await fetch(`${api.url}${path}`, { method, headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" }, body: body === undefined ? undefined : JSON.stringify(body) });
  return { status: res.status, json: (await res.json()) as any };
};

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "tuneserve-blob-model-"));
  api = await startServer({ port: 0, dataDir: join(dir, "api") });
  // The built-in model's files, put into the API's local blob store (the same folder it serves from);
  // this writer only puts objects, so it needs no signing secret of its own.
  sourceDir = await ensureBuiltinModel(join(dir, "source-model"));
  const store = new FsBlobStore({ root: join(dir, "api", "blobs"), publicUrl: api.url, signingSecret: "not-used-for-puts" });
  for (const name of await readdir(sourceDir)) await store.put(`models/blob-micro/${name}`, new Uint8Array(await readFile(join(sourceDir, name))));
  const reg = await call("POST", "/admin/v1/models", api.adminToken, { id: "blob-micro", source: "blob:models/blob-micro/" });
  expect(reg.status, JSON.stringify(reg.json)).toBe(201);

  const config = loadRunnerConfig(
    ["--api-url", api.url, "--token", api.runnerToken, "--name", "blob-runner", "--model", "blob-micro", "--model", "ghost", "--cache-dir", join(dir, "runner"), "--poll-seconds", "0.5", "--poll-max-seconds", "2"],
    {},
  );
  runner = await startRunner(config, { log: (level, msg, data = {}) => void lines.push({ level, msg, ...data }) });
});

afterAll(async () => {
  await runner?.stop();
  await api?.close();
  await rm(dir, { recursive: true, force: true });
});

describe("a runner with a blob-prefix base model", () => {
  it("offers only the models the API knows, with a clear error for the other", () => {
    expect(lines.find((l) => l.msg === "registered")?.models).toEqual(["blob-micro"]);
    const err = lines.find((l) => l.level === "error" && l.model === "ghost");
    expect(String(err?.error)).toMatch(/base model ghost: the API has no files for it .*register it with POST \/admin\/v1\/models/);
  });

  it("downloads the model into its cache and answers /v1/completions for it through the API", async () => {
    const t = await call("POST", "/admin/v1/tenants", api.adminToken, { name: "acme" });
    const key = t.json.api_key as string;
    const body = { model: "blob-micro", prompt: "The quick brown fox", max_tokens: 8, temperature: 0 };
    // Until the files are in and the serving worker runs, the API finds no runner that serves the model (503).
    const deadline = Date.now() + 90_000;
    let res = await call("POST", "/v1/completions", key, body);
    while (res.status !== 200 && Date.now() < deadline) {
      expect(res.status, JSON.stringify(res.json)).toBe(503);
      await new Promise((ok) => setTimeout(ok, 250));
      res = await call("POST", "/v1/completions", key, body);
    }
    expect(res.status, JSON.stringify(res.json)).toBe(200);
    expect(res.json.object).toBe("text_completion");
    expect(res.json.model).toBe("blob-micro");
    expect(res.json.usage.prompt_tokens).toBe(body.prompt.length); // the downloaded byte-level tokenizer
    expect(res.json.usage.completion_tokens).toBeGreaterThan(0);
    expect(typeof res.json.choices[0].text).toBe("string");

    const served = lines.find((l) => l.msg === "serving base model");
    expect(served).toMatchObject({ model: "blob-micro", dir: join(dir, "runner", "models", "blob-micro") });
    expect(await readFile(join(dir, "runner", "models", "blob-micro", "model.safetensors"))).toEqual(await readFile(join(sourceDir, "model.safetensors")));
  });
});
