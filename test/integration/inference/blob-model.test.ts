// A runner configured with a blob-prefix base model (no local folder) serves it: the model's files sit in the
// API's blob store under models/<id>/, the runner fetches them through GET /internal/v1/models/{id}/files into
// its cache, and POST /v1/completions reaches it through the API. An id the API does not know is not offered.
import { mkdtemp, readFile, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { basename, dirname, join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FsBlobStore } from "../../../api/src/blob/fs.js";
import { startServer } from "../../../api/src/node.js";
import { BUILTIN_SIZES, ensureBuiltinModel } from "../../../gpu-runner/src/models/builtin.js";
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

/** Whether two files hold the same bytes (toEqual walks a model's megabytes for seconds, blocking the event loop). */
const sameBytes = async (a: string, b: string) => (await readFile(a)).equals(await readFile(b));

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
    ["--api-url", api.url, "--token", api.runnerToken, "--name", "blob-runner", "--model", "blob-micro", "--model", "ghost", "--cache-dir", join(dir, "runner"), "--poll-seconds", "0.5", "--poll-max-seconds", "2", "--model-check-seconds", "1"],
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
    expect(served).toMatchObject({ model: "blob-micro" });
    expect(dirname(String(served?.dir))).toBe(join(dir, "runner", "models", "blob-micro"));
    expect(await sameBytes(join(String(served?.dir), "model.safetensors"), join(sourceDir, "model.safetensors"))).toBe(true);
  });

  it("serves the new files once an operator replaces the model's files under the same names, and removes the old copy", async () => {
    const t = await call("POST", "/admin/v1/tenants", api.adminToken, { name: "acme-2" });
    const key = t.json.api_key as string;
    const body = { model: "blob-micro", prompt: "The quick brown fox", max_tokens: 8, temperature: 0 };
    const before = await call("POST", "/v1/completions", key, body);
    expect(before.status, JSON.stringify(before.json)).toBe(200);
    const old = String(lines.find((l) => l.msg === "serving base model")?.dir);

    // Another model of the family (three layers, not two) uploaded over the old files: greedy decoding changes.
    const other = await ensureBuiltinModel(join(dir, "other-model"), { ...BUILTIN_SIZES, layers: 3 });
    const store = new FsBlobStore({ root: join(dir, "api", "blobs"), publicUrl: api.url, signingSecret: "not-used-for-puts" });
    for (const name of ["config.json", "model.safetensors"]) await store.put(`models/blob-micro/${name}`, new Uint8Array(await readFile(join(other, name))));

    const deadline = Date.now() + 60_000;
    // Requests are answered all along: the old worker serves until the new one is up.
    while (!lines.some((l) => l.msg === "serving the new files of a base model") && Date.now() < deadline) {
      const during = await call("POST", "/v1/completions", key, body);
      expect(during.status, JSON.stringify(during.json)).toBe(200);
      await new Promise((ok) => setTimeout(ok, 250));
    }
    const swapped = lines.find((l) => l.msg === "serving the new files of a base model");
    expect(swapped).toMatchObject({ model: "blob-micro" });
    expect(swapped?.dir).not.toBe(old);
    expect(await sameBytes(join(String(swapped?.dir), "model.safetensors"), join(other, "model.safetensors"))).toBe(true);
    const after = await call("POST", "/v1/completions", key, body);
    expect(after.status, JSON.stringify(after.json)).toBe(200);
    expect(after.json.choices[0].text).not.toBe(before.json.choices[0].text);
    // The old copy goes once its serving worker closed.
    while ((await readdir(join(dir, "runner", "models", "blob-micro"))).length > 1 && Date.now() < deadline) await new Promise((ok) => setTimeout(ok, 100));
    expect(await readdir(join(dir, "runner", "models", "blob-micro"))).toEqual([basename(String(swapped?.dir))]);
  }, 90_000);
});
