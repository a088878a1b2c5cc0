// Presigned R2 links served by the Worker itself: PUT then GET through /blobs/, refusals of tampered,
// wrong-method and expired links, and of uploads past TUNESERVE_MAX_BLOB_BYTES (12 MiB in vitest.config.ts).
import { env, exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { R2BlobStore } from "../../../api/src/blob/r2.js";
import { expectError, origin } from "../helpers.js";

// Same bucket and secret as the Worker's own store, so its links are the ones the Worker hands out.
const store = new R2BlobStore({ bucket: env.BLOBS, publicUrl: origin, signingSecret: env.TUNESERVE_BLOB_SIGNING_SECRET });
const send = (url: string, init?: RequestInit) => exports.default.fetch(new Request(url, init));

describe("presigned links on the Worker", () => {
  it("uploads with a PUT link and downloads with a GET link", async () => {
    const key = "tenants/t1/jobs/j1/checkpoints/10/adapter_model.safetensors";
    const body = new TextEncoder().encode("checkpoint bytes ".repeat(1000));
    const put = await send(await store.presign(key, "PUT", 300), { method: "PUT", body });
    expect(put.status).toBe(200);
    expect(await put.json()).toEqual({ key, size: body.length });
    expect(await store.head(key)).toEqual({ size: body.length });
    const get = await send(await store.presign(key, "GET", 300));
    expect(get.status).toBe(200);
    expect(get.headers.get("Content-Length")).toBe(String(body.length));
    expect(new Uint8Array(await get.arrayBuffer())).toEqual(body);
  });

  it("serves keys with spaces and unicode", async () => {
    const key = "tenants/t1/files/my data ü.jsonl";
    await store.put(key, '{"messages":[]}\n');
    const get = await send(await store.presign(key, "GET", 300));
    expect(new TextDecoder().decode(await get.arrayBuffer())).toBe('{"messages":[]}\n');
  });

  it("refuses a tampered signature, another key, another method and an expired link", async () => {
    const key = "tenants/t1/files/secret.jsonl";
    await store.put(key, "private");
    const good = new URL(await store.presign(key, "GET", 300));

    const tampered = new URL(good);
    tampered.searchParams.set("signature", "0".repeat(64));
    await expectError(await send(tampered.toString()), 403, "forbidden");

    const otherKey = new URL(good);
    otherKey.pathname = "/blobs/tenants/t2/files/secret.jsonl";
    await expectError(await send(otherKey.toString()), 403, "forbidden");

    await expectError(await send(good.toString(), { method: "PUT", body: "overwrite" }), 403, "forbidden");
    expect(new TextDecoder().decode(await (await send(good.toString())).arrayBuffer())).toBe("private");

    const expired = await store.presign(key, "GET", -10);
    await expectError(await send(expired), 403, "forbidden");
  });

  it("answers the listed version as the ETag, and 412 precondition_failed to an If-Match of a version replaced since", async () => {
    const key = "models/m/model.safetensors";
    const listed = async () => {
      for await (const o of store.list("models/m/")) if (o.key === key) return o.version!;
      throw new Error(`${key} not listed`);
    };
    await store.put(key, "old weights");
    const before = await listed();
    const link = await store.presign(key, "GET", 300);
    const get = await send(link, { headers: { "if-match": `"${before}"` } });
    expect(get.status).toBe(200);
    expect(get.headers.get("etag")).toBe(`"${before}"`);
    expect(new TextDecoder().decode(await get.arrayBuffer())).toBe("old weights");
    await store.put(key, "new weights");
    await expectError(await send(link, { headers: { "if-match": `"${before}"` } }), 412, "precondition_failed");
    expect((await send(link)).headers.get("etag")).toBe(`"${await listed()}"`);
  });

  it("answers 404 for a signed link to a missing object", async () => {
    await expectError(await send(await store.presign("tenants/t1/files/none", "GET", 300)), 404, "not_found");
  });

  it("refuses an upload past TUNESERVE_MAX_BLOB_BYTES with 413, declared or streamed, keeping what the key held", async () => {
    const limit = Number(env.TUNESERVE_MAX_BLOB_BYTES);
    const key = "tenants/t1/jobs/j2/checkpoints/20/optimizer.safetensors";
    await store.put(key, "earlier");
    const declared = await send(await store.presign(key, "PUT", 300), { method: "PUT", body: new Uint8Array(limit + 1) });
    expect((await expectError(declared, 413, "payload_too_large")).message).toContain("TUNESERVE_MAX_BLOB_BYTES");
    // No Content-Length: cut in its second 8 MiB part, after the multipart upload began, which is aborted.
    // (workerd logs "Network connection lost" for this sender, whose body stopped being read, as for any client's.)
    let sent = 0;
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent >= 2 * limit) return controller.close();
        sent += 1024 * 1024;
        controller.enqueue(new Uint8Array(1024 * 1024).fill(1));
      },
    });
    await expectError(await send(await store.presign(key, "PUT", 300), { method: "PUT", body }), 413, "payload_too_large");
    expect(new TextDecoder().decode(await (await send(await store.presign(key, "GET", 300))).arrayBuffer())).toBe("earlier");
    const fits = await send(await store.presign(key, "PUT", 300), { method: "PUT", body: new Uint8Array(limit) });
    expect(await fits.json()).toEqual({ key, size: limit });
  });
});
