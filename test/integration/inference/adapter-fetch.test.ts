// The inference server fetching adapters: requests waiting for a download hold their places in the queue (429
// past it), and files the engine cannot load are fetched again by the next request (not by every request when
// the engine refuses them again).
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it, vi } from "vitest";
import { randomBuiltinAdapter } from "../../../bench/stack.js";
import { ensureBuiltinModel } from "../../../gpu-runner/src/models/builtin.js";
import { startInferenceServer, type InferenceServer } from "../../../gpu-runner/src/serve/server.js";
import { SourceError, type AdapterSource, type FetchedAdapter } from "../../../gpu-runner/src/serve/source.js";

const TOKEN = "runner-token";
let dir: string;
let server: InferenceServer;
/** What the source does for each fetch, by adapter id; every fetch is counted. */
const behaviour = new Map<string, () => Promise<FetchedAdapter["files"]>>();
const fetches = new Map<string, number>();
const source: AdapterSource = {
  async fetch(model) {
    fetches.set(model, (fetches.get(model) ?? 0) + 1);
    const files = behaviour.get(model);
    if (!files) throw new SourceError(`adapter ${model}: no such adapter here`, true);
    return { model, baseModel: "base", files: await files() };
  },
};

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "tuneserve-adapter-fetch-"));
  const modelDir = await ensureBuiltinModel(join(dir, "model"));
  server = await startInferenceServer({ apiUrl: "http://127.0.0.1:9", runnerToken: TOKEN, listen: "127.0.0.1:0", models: { base: modelDir }, cacheDir: join(dir, "cache"), maxBatch: 1, maxQueue: 2, maxContext: 512, source });
});
afterAll(async () => {
  await server?.close();
  await rm(dir, { recursive: true, force: true });
});

const generate = (adapter: string, maxTokens = 2) =>
  fetch(`${server.url}/v1/generate`, {
    method: "POST",
    headers: { Authorization: `Bearer ${TOKEN}`, "Content-Type": "application/json" },
    body: JSON.stringify({ request_id: "r", model: "base", adapter, input: { tokens: [1, 2, 3] }, max_tokens: maxTokens, temperature: 0, stream: false }),
  });

it("fetches an adapter again after the engine refused its files", async () => {
  const good = randomBuiltinAdapter(7);
  let corrupt = true;
  behaviour.set("bad-then-good", async () => ({ "adapter_config.json": good.config, "adapter_model.safetensors": corrupt ? new TextEncoder().encode("not a safetensors file") : good.weights }));
  const first = await generate("bad-then-good");
  expect(first.status).toBe(500);
  expect((await first.json()).error.message).toMatch(/adapter bad-then-good: /);
  corrupt = false;
  const second = await generate("bad-then-good");
  expect(second.status).toBe(200);
  expect(fetches.get("bad-then-good")).toBe(2);
});

it("stops fetching an adapter whose files the engine refused on two downloads in a row", async () => {
  behaviour.set("always-bad", async () => ({ "adapter_config.json": randomBuiltinAdapter(9).config, "adapter_model.safetensors": new TextEncoder().encode("not a safetensors file") }));
  expect((await generate("always-bad")).status).toBe(500); // refused: dropped, fetched again by the next request
  expect((await generate("always-bad")).status).toBe(500); // refused again, on fresh files
  const third = await generate("always-bad");
  expect(third.status).toBe(502);
  expect((await third.json()).error).toMatchObject({ code: "adapter_unavailable", message: expect.stringMatching(/refused its files on two downloads in a row \(adapter always-bad: .*\); not fetched again before/) });
  expect(fetches.get("always-bad")).toBe(2);
});

it("counts requests waiting for an adapter's download towards the queue limit", async () => {
  const good = randomBuiltinAdapter(8);
  let letGo: () => void = () => {};
  const gate = new Promise<void>((ok) => (letGo = ok));
  behaviour.set("slow", async () => (await gate, { "adapter_config.json": good.config, "adapter_model.safetensors": good.weights }));
  // maxBatch 1 + maxQueue 2: three sequences fit, all of them waiting for the one download.
  const admitted = [1, 2, 3].map(() => generate("slow"));
  try {
    await vi.waitFor(async () => {
      const r = await fetch(`${server.url}/v1/status`, { headers: { Authorization: `Bearer ${TOKEN}` } });
      expect(((await r.json()) as { models: Record<string, { in_flight: number }> }).models.base.in_flight).toBe(3);
    });
    const full = await generate("slow");
    expect(full.status).toBe(429);
    expect(full.headers.get("Retry-After")).toBe("1");
  } finally {
    letGo();
  }
  for (const r of await Promise.all(admitted)) expect(r.status).toBe(200);
  expect(fetches.get("slow")).toBe(1);
});
