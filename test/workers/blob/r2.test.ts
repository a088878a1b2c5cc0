// R2BlobStore on the real R2 binding (miniflare's R2, which enforces R2's multipart rules): objects, listing
// with cursors, prefix deletes, and streams of unknown length re-chunked into a multipart upload.
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { readAll } from "../../../api/src/blob/port.js";
import { sha256Hex } from "../../../api/src/lib/hash.js";
import { R2BlobStore } from "../../../api/src/blob/r2.js";
import { ApiError } from "../../../api/src/errors.js";

const MiB = 1024 * 1024;
const store = (opts: { partBytes?: number; listPageSize?: number; signingSecret?: string } = {}) =>
  new R2BlobStore({ bucket: env.BLOBS, publicUrl: "https://api.tuneserve.test", ...opts });

/** Deterministic bytes, so a reordered or dropped chunk changes the content. */
function pattern(n: number, seed = 1): Uint8Array {
  const out = new Uint8Array(n);
  let x = seed;
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}

/** A stream of unknown length delivering `bytes` in chunks of `chunk` bytes, optionally failing after `failAfter` bytes. */
function streamOf(bytes: Uint8Array, chunk: number, failAfter = Infinity): ReadableStream<Uint8Array> {
  let off = 0;
  return new ReadableStream<Uint8Array>({
    pull(ctrl) {
      if (off >= failAfter) return ctrl.error(new Error("client went away"));
      if (off >= bytes.length) return ctrl.close();
      ctrl.enqueue(bytes.slice(off, off + chunk));
      off += chunk;
    },
  });
}

/** Compares large byte arrays by length and digest: a failing toEqual on megabytes would print a huge diff. */
async function expectSameBytes(got: Uint8Array, want: Uint8Array): Promise<void> {
  expect(got.length).toBe(want.length);
  expect(await sha256Hex(got)).toBe(await sha256Hex(want));
}

const keysOf = async (it: AsyncIterable<{ key: string }>) => {
  const out: string[] = [];
  for await (const o of it) out.push(o.key);
  return out;
};

describe("R2BlobStore objects", () => {
  it("puts, gets, heads and deletes strings and bytes", async () => {
    const s = store();
    expect(await s.put("t/a/config.json", '{"r":8}', { contentType: "application/json" })).toEqual({ size: 7 });
    const obj = await s.get("t/a/config.json");
    expect(obj?.contentType).toBe("application/json");
    expect(new TextDecoder().decode(await readAll(obj!))).toBe('{"r":8}');
    const bytes = pattern(1000);
    expect(await s.put("t/a/weights.bin", bytes)).toEqual({ size: 1000 });
    expect(await s.head("t/a/weights.bin")).toEqual({ size: 1000 });
    expect(await readAll((await s.get("t/a/weights.bin"))!)).toEqual(bytes);
    await s.delete("t/a/weights.bin");
    expect(await s.head("t/a/weights.bin")).toBeNull();
    expect(await s.get("t/a/weights.bin")).toBeNull();
  });

  it("refuses empty and over-long keys", async () => {
    await expect(store().put("", "x")).rejects.toThrow(/invalid blob key/);
    await expect(store().head("k".repeat(1025))).rejects.toThrow(/1–1024 bytes/);
  });
});

describe("R2BlobStore listing", () => {
  it("follows cursors across pages and stays inside the prefix", async () => {
    const s = store({ listPageSize: 2 });
    for (const k of ["e", "a", "d", "c", "b"]) await s.put(`list/x/${k}`, k);
    await s.put("list/y/a", "other prefix");
    await s.put("list/x", "a sibling, not under list/x/");
    const listed: { key: string; size: number }[] = [];
    for await (const { key, size } of s.list("list/x/")) listed.push({ key, size });
    expect(listed).toEqual(["a", "b", "c", "d", "e"].map((k) => ({ key: `list/x/${k}`, size: 1 })));
  });

  it("lists the ETag as the version, which changes when an object is replaced under its key", async () => {
    const s = store();
    const versionOf = async (key: string) => {
      for await (const o of s.list(key)) if (o.key === key) return o.version;
    };
    await s.put("ver/weights", "old weights");
    const before = await versionOf("ver/weights");
    expect(before).toEqual(expect.any(String));
    await s.put("ver/weights", "new weights");
    expect(await versionOf("ver/weights")).not.toBe(before);
  });

  it("deletes a prefix across pages and reports the count", async () => {
    const s = store({ listPageSize: 3 });
    for (let i = 0; i < 7; i++) await s.put(`del/job/ckpt/${i}`, String(i));
    await s.put("del/keep", "k");
    expect(await s.deletePrefix("del/job/")).toBe(7);
    expect(await keysOf(s.list("del/"))).toEqual(["del/keep"]);
    expect(await s.deletePrefix("del/job/")).toBe(0);
  });
});

describe("R2BlobStore streams of unknown length", () => {
  it("stores a short stream with one plain put", async () => {
    const s = store({ partBytes: 5 * MiB });
    const bytes = pattern(70_000, 2);
    expect(await s.put("stream/short", streamOf(bytes, 4096))).toEqual({ size: 70_000 });
    await expectSameBytes(await readAll((await s.get("stream/short"))!), bytes);
    // R2 gives multipart objects an etag ending in -<parts>.
    expect((await env.BLOBS.head("stream/short"))!.etag).not.toContain("-");
  });

  it("stores an empty stream and one of exactly one part", async () => {
    const s = store({ partBytes: 5 * MiB });
    expect(await s.put("stream/empty", streamOf(new Uint8Array(0), 10))).toEqual({ size: 0 });
    expect(await s.head("stream/empty")).toEqual({ size: 0 });
    const one = pattern(5 * MiB, 3);
    expect(await s.put("stream/one", streamOf(one, 65536))).toEqual({ size: 5 * MiB });
    expect((await env.BLOBS.head("stream/one"))!.etag).not.toContain("-");
  });

  it("re-chunks a long stream into equal 5 MiB parts of a multipart upload", async () => {
    const s = store({ partBytes: 5 * MiB });
    const bytes = pattern(12 * MiB + 12_345, 4);
    // Odd chunk sizes, so part boundaries fall inside chunks.
    expect(await s.put("stream/long", streamOf(bytes, 65_537), { contentType: "application/octet-stream" })).toEqual({ size: bytes.length });
    const head = await env.BLOBS.head("stream/long");
    expect(head!.etag).toMatch(/-3$/);
    expect(head!.size).toBe(bytes.length);
    const obj = await s.get("stream/long");
    expect(obj!.contentType).toBe("application/octet-stream");
    await expectSameBytes(await readAll(obj!), bytes);
  });

  it("aborts the upload and stores nothing when the stream fails midway", async () => {
    const s = store({ partBytes: 5 * MiB });
    const bytes = pattern(12 * MiB, 5);
    await expect(s.put("stream/broken", streamOf(bytes, 1 * MiB, 11 * MiB))).rejects.toThrow(/client went away/);
    expect(await s.head("stream/broken")).toBeNull();
  });
});

describe("R2BlobStore presign", () => {
  it("signs links to the Worker's /blobs/ route", async () => {
    const url = new URL(await store({ signingSecret: "s".repeat(32) }).presign("tenants/t1/files/f 1", "GET", 60));
    expect(url.origin).toBe("https://api.tuneserve.test");
    expect(url.pathname).toBe("/blobs/tenants/t1/files/f%201");
    expect(url.searchParams.get("method")).toBe("GET");
    expect(url.searchParams.get("signature")).toMatch(/^[0-9a-f]{64}$/);
  });

  it("answers 503 naming the secret when none is set", async () => {
    const err = await store().presign("k", "GET", 60).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect((err as ApiError).code).toBe("unavailable");
    expect((err as ApiError).message).toContain("TUNESERVE_BLOB_SIGNING_SECRET");
  });
});
