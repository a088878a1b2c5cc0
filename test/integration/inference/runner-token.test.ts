// The runner's inference server takes only its runner token: a wrong one is refused whatever its length (a
// prefix of the right one, the right one with more after it), and /healthz needs none.
import { afterAll, beforeAll, expect, it } from "vitest";
import type { InferenceServer } from "../../../gpu-runner/src/serve/server.js";
import { startBareInferenceServer } from "../../helpers/bare-inference-server.js";

const TOKEN = "run_0123456789abcdef0123456789abcdef";
let server: InferenceServer;
let close: () => Promise<void>;

beforeAll(async () => {
  // No model: the token guard is all this test needs.
  ({ server, close } = await startBareInferenceServer(TOKEN));
});

afterAll(async () => {
  await close?.();
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
