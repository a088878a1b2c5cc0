// Adapter downloads from the API: one that stalls is given up on with an error naming what went quiet, and the
// registry's next request for that adapter fetches it again.
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { AdapterRegistry } from "../../../gpu-runner/src/serve/registry.js";
import { ApiAdapterSource, SourceError } from "../../../gpu-runner/src/serve/source.js";
import { fixturesDir } from "../../helpers/fixtures.js";
import { listenLocal, type LocalServer } from "../../helpers/http-server.js";

const FX = `${fixturesDir}/micro-llama/adapter`;
let dir: string;
let api: LocalServer;
/** The weights' GET sends its headers and half the bytes, then goes quiet. */
let stall = true;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "tuneserve-source-"));
  const files = { "adapter_config.json": await readFile(join(FX, "adapter_config.json")), "adapter_model.safetensors": await readFile(join(FX, "adapter_model.safetensors")) };
  api = await listenLocal((req, res) => {
    if (req.url === "/internal/v1/adapters/a/files") {
      const listed = Object.entries(files).map(([name, b]) => ({ name, bytes: b.length, url: `/blob/${name}` }));
      res.setHeader("Content-Type", "application/json");
      return res.end(JSON.stringify({ model: "a", base_model: "m", expires_at: 0, files: listed }));
    }
    const body = files[req.url?.replace("/blob/", "") as keyof typeof files];
    if (!body) return void res.writeHead(404).end();
    res.writeHead(200, { "Content-Length": body.length });
    if (stall && req.url?.endsWith(".safetensors")) return void res.write(body.subarray(0, body.length >> 1));
    res.end(body);
  });
});
afterAll(async () => {
  // The stalled responses' sockets would keep the server from closing.
  await Promise.race([api?.close(), new Promise((ok) => setTimeout(ok, 100))]);
  await rm(dir, { recursive: true, force: true });
});

it("gives up on a download that sends nothing for stallMs, and the next request fetches again", async () => {
  const source = new ApiAdapterSource(api.url, "token", 300);
  const reg = new AdapterRegistry(source, join(dir, "cache"));
  await reg.open();
  const t0 = performance.now();
  const err = await reg.acquire("a", "m").catch((e: unknown) => e);
  expect(err).toBeInstanceOf(SourceError);
  expect((err as SourceError).notFound).toBe(false);
  expect((err as Error).message).toBe("adapter a: GET adapter_model.safetensors sent nothing for 0.3 s; gave up (the next request fetches it again)");
  expect(performance.now() - t0).toBeLessThan(5000);
  expect(reg.status("a")).toBe("failed");
  stall = false;
  const got = await reg.acquire("a", "m");
  expect((await readFile(join(got.dir, "adapter_model.safetensors"))).equals(await readFile(join(FX, "adapter_model.safetensors")))).toBe(true);
  got.release();
}, 10_000);
