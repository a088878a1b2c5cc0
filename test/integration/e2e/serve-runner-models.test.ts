// `tuneserve serve` with TUNESERVE_RUNNER_MODELS naming the built-in model at <data>/models/tuneserve-micro (as the
// README shows, to serve it beside other models; here with a trailing slash) on a fresh data folder: the model is created and registered as
// without the variable, rather than the server exiting for want of its config.json.
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { apiClient, spawnCli, type Proc } from "./harness.js";

let dataDir: string;
let serve: Proc;
let url: string;

beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), "tuneserve-e2e-runner-models-"));
  serve = spawnCli(["serve", "--port", "0", "--data", dataDir], { TUNESERVE_RUNNER_MODELS: `tuneserve-micro=${join(dataDir, "models", "tuneserve-micro")}/` });
  url = (await serve.waitLine((l) => l.msg === "tuneserve listening", 90_000)).url as string;
});

afterAll(async () => {
  expect(await serve?.stop("SIGTERM")).toBe(0);
  await rm(dataDir, { recursive: true, force: true });
});

describe("TUNESERVE_RUNNER_MODELS naming the built-in model on a fresh data folder", () => {
  it("creates and registers it, and serves it", async () => {
    const admin = JSON.parse(await readFile(join(dataDir, "secrets.json"), "utf8")).admin as string;
    const api = apiClient(url);
    const t = await api.tenant(admin, "acme");
    expect((await api.call("GET", "/v1/models", t.key)).json.data.map((m: { id: string }) => m.id)).toEqual(["tuneserve-micro"]);
    const chat = await api.call("POST", "/v1/completions", t.key, { model: "tuneserve-micro", prompt: "hi", max_tokens: 2 });
    expect(chat.status).toBe(200);
    expect(chat.json.usage.completion_tokens).toBeGreaterThan(0);
  });
});
