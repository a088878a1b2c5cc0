// The runner's inference server takes only its runner token: a wrong one is refused whatever its length (a
// prefix of the right one, the right one with more after it), and /healthz needs none.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { startInferenceServer, type InferenceServer } from "../../../gpu-runner/src/serve/server.js";
import { LocalAdapterSource } from "../../../gpu-runner/src/serve/source.js";

const TOKEN = "run_0123456789abcdef0123456789abcdef";
let dir: string;
let server: InferenceServer;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "tuneserve-runner-token-"));
  // No model: the token guard is all this test needs.
  server = await startInferenceServer({ apiUrl: "http://127.0.0.1:9", runnerToken: TOKEN, listen: "127.0.0.1:0", models: {}, cacheDir: join(dir, "cache"), source: new LocalAdapterSource({}) });
});

afterAll(async () => {
  await server?.close();
  await rm(dir, { recursive: true, force: true });
});

const status = (authorization?: string) => fetch(`${server.url}/v1/status`, { headers: authorization === undefined ? {} : { Authorization: authorization } });

it("refuses a missing token and wrong tokens of any length, and serves the right one", async () => {
  for (const wrong of [undefined, "", `Bearer ${TOKEN.slice(0, -1)}`, `Bearer ${TOKEN}x`, `Bearer ${TOKEN.slice(0, -1)}x`, TOKEN]) {
    const res = await status(wrong);
    expect(res.status, String(wrong)).toBe(401);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe("unauthorized");
  }
  const ok = await status(`Bearer ${TOKEN}`);
  expect(ok.status).toBe(200);
  await ok.body?.cancel();
  expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
});
