// TUNESERVE_MAX_BLOB_BYTES bounds what a presigned /blobs/ PUT link takes (the local store; R2 in the workers
// project): a declared Content-Length over it is refused before the body is read, a body that streams past it
// is cut there, and either way the answer is 413 and no object (nor part of one) is left in the store.
import { serve } from "@hono/node-server";
import { readdir } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createApp } from "../../../api/src/app.js";
import { FsBlobStore } from "../../../api/src/blob/fs.js";
import { expectError, startTestApi, type TestApi } from "../../helpers/api.js";

const LIMIT = 64 * 1024;
let api: TestApi;
let server: ReturnType<typeof serve>;
let origin: string;

beforeAll(async () => {
  api = await startTestApi({ TUNESERVE_MAX_BLOB_BYTES: String(LIMIT), TUNESERVE_MAX_ADAPTER_BYTES: String(LIMIT / 2) });
  // A real HTTP server too, as runners PUT over a socket: the 413 must reach a client still sending its body.
  server = await new Promise<ReturnType<typeof serve>>((ok) => {
    const s = serve({ fetch: createApp(api.deps).fetch, port: 0, hostname: "127.0.0.1" }, () => ok(s));
  });
  const addr = server.address();
  if (!addr || typeof addr !== "object") throw new Error("test server has no port");
  origin = `http://127.0.0.1:${addr.port}`;
  if (!(api.deps.blobs instanceof FsBlobStore)) throw new Error("expected the local blob store");
  api.deps.blobs.setPublicUrl(origin);
});
afterAll(async () => {
  await new Promise<void>((ok) => server.close(() => ok()));
  await api.close();
});

const putLink = (key: string) => api.deps.blobs.presign(key, "PUT", 300);
/** A body of `bytes` bytes sent in 4 KiB chunks, with no Content-Length; `pulled` counts what was read of it. */
function streamed(bytes: number) {
  const state = { pulled: 0 };
  const body = new ReadableStream<Uint8Array>({
    pull(controller) {
      const n = Math.min(4096, bytes - state.pulled);
      if (n <= 0) return controller.close();
      state.pulled += n;
      controller.enqueue(new Uint8Array(n).fill(7));
    },
  });
  return { body, state };
}
const put = (url: string, body: BodyInit, headers: Record<string, string> = {}) => fetch(url, { method: "PUT", body, headers, duplex: "half" } as RequestInit);
/** Every file under the local store's folder, temporary ones included. */
const storedFiles = async () => (await readdir(join(api.dataDir, "blobs"), { recursive: true, withFileTypes: true })).filter((e) => e.isFile()).map((e) => e.name);

describe("TUNESERVE_MAX_BLOB_BYTES", () => {
  it("takes an object of exactly the limit, streamed or not", async () => {
    const sent = await put(await putLink("tenants/t/jobs/j/checkpoints/1/optimizer.safetensors"), new Uint8Array(LIMIT));
    expect(sent.status).toBe(200);
    expect(await sent.json()).toMatchObject({ size: LIMIT });
    const s = streamed(LIMIT);
    expect((await put(await putLink("tenants/t/jobs/j/checkpoints/1/streamed"), s.body)).status).toBe(200);
  });

  it("refuses a declared Content-Length over the limit with 413 before reading the body", async () => {
    const key = "tenants/t/jobs/j/checkpoints/2/adapter_model.safetensors";
    const url = new URL(await putLink(key));
    const s = streamed(LIMIT + 1);
    // In process, so the declared length is sent as is with a body that would take it past the limit.
    const res = await api.call("PUT", url.pathname + url.search, { body: s.body, headers: { "Content-Length": String(LIMIT + 1) } });
    const err = await expectError(res, 413, "payload_too_large");
    expect(err.message).toContain(`${LIMIT} bytes`);
    expect(err.message).toContain("TUNESERVE_MAX_BLOB_BYTES");
    expect(s.state.pulled).toBeLessThan(LIMIT);
    expect(await api.deps.blobs.head(key)).toBeNull();
  });

  it("cuts a body without Content-Length once it passes the limit: 413, nothing stored, an earlier object under the key kept", async () => {
    const key = "tenants/t/jobs/j/output/attempt-1/adapter_model.safetensors";
    await api.deps.blobs.put(key, "earlier");
    const before = await storedFiles();
    const s = streamed(8 * LIMIT);
    // Over a socket: the client may have pushed all of it into the socket's buffers by then, but gets the 413.
    const err = await expectError(await put(await putLink(key), s.body), 413, "payload_too_large");
    expect(err.message).toContain("TUNESERVE_MAX_BLOB_BYTES");
    const kept = await api.deps.blobs.get(key);
    expect(await new Response(kept!.body).text()).toBe("earlier");
    // No half-written object nor its temporary file.
    expect(await storedFiles()).toEqual(before);
  });

  it("cuts a body that sends more than its Content-Length declared", async () => {
    const key = "tenants/t/jobs/j/checkpoints/3/optimizer.safetensors";
    const url = new URL(await putLink(key));
    const s = streamed(2 * LIMIT);
    const res = await api.call("PUT", url.pathname + url.search, { body: s.body, headers: { "Content-Length": "10" } });
    await expectError(res, 413, "payload_too_large");
    // Reading stops at the chunk that passed the limit (the request reads a chunk or two ahead), not at the end.
    expect(s.state.pulled).toBeLessThanOrEqual(LIMIT + 3 * 4096);
    expect(await api.deps.blobs.head(key)).toBeNull();
  });
});
