// The BlobStore contract: one suite every implementation (local files, S3 on s3rver) must pass, presigned
// links included (fetched over real HTTP). Each store's test file calls blobStoreContract with its setup.
import { createHash } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { BlobStore } from "../../../api/src/blob/port.js";
import { readAll } from "../../../api/src/blob/port.js";

export interface ContractTarget {
  store: BlobStore;
  /** Sets how many seconds pass between signing a presigned link and the server checking it (0 = none). */
  setLinkAge(seconds: number): void;
  /** Whether the server behind presigned links checks signatures (s3rver does not; TOOLCHAIN.md). */
  verifiesSignatures: boolean;
  /** false where the server behind presigned links ignores If-Match (s3rver); S3, R2 and the /blobs/ route honour it. */
  honoursIfMatch?: boolean;
  /** false where the store has no server-side copy (the R2 binding: callers stream the object through instead). */
  copies?: boolean;
  /** Keys per list page, when the store pages (the list test writes more objects than one page). */
  listPageSize?: number;
  close(): Promise<void>;
}

const MIB = 1024 * 1024;

/** Deterministic pseudo-random bytes (xorshift32), generated chunk by chunk so 17 MiB never sit in one buffer twice. */
function generated(total: number, chunk: number): { stream: ReadableStream<Uint8Array>; sha256: () => string } {
  let state = 0x9e3779b9;
  let sent = 0;
  const hash = createHash("sha256");
  const stream = new ReadableStream<Uint8Array>({
    pull(ctl) {
      if (sent >= total) return ctl.close();
      const n = Math.min(chunk, total - sent);
      const buf = new Uint8Array(n);
      for (let i = 0; i < n; i++) {
        state ^= state << 13;
        state ^= state >>> 17;
        state ^= state << 5;
        buf[i] = state & 0xff;
      }
      hash.update(buf);
      sent += n;
      ctl.enqueue(buf);
    },
  });
  return { stream, sha256: () => hash.digest("hex") };
}

async function streamSha256(body: ReadableStream<Uint8Array>): Promise<{ sha256: string; bytes: number }> {
  const hash = createHash("sha256");
  let bytes = 0;
  for await (const chunk of body as unknown as AsyncIterable<Uint8Array>) {
    hash.update(chunk);
    bytes += chunk.byteLength;
  }
  return { sha256: hash.digest("hex"), bytes };
}

async function text(store: BlobStore, key: string): Promise<string | null> {
  const obj = await store.get(key);
  return obj ? new TextDecoder().decode(await readAll(obj)) : null;
}

async function keys(store: BlobStore, prefix: string): Promise<string[]> {
  const out: string[] = [];
  for await (const o of store.list(prefix)) out.push(o.key);
  return out.sort();
}

/** Registers the contract suite for one BlobStore implementation. */
export function blobStoreContract(name: string, setup: () => Promise<ContractTarget>): void {
  describe(`BlobStore contract: ${name}`, () => {
    let t: ContractTarget;
    let store: BlobStore;
    beforeAll(async () => {
      t = await setup();
      store = t.store;
    });
    afterAll(async () => {
      await t?.close();
    });

    it("round-trips a string as UTF-8 and reports its byte size", async () => {
      const s = "héllo ✓ wörld\n";
      const bytes = new TextEncoder().encode(s).byteLength;
      expect(await store.put("rt/string.txt", s, { contentType: "text/plain" })).toEqual({ size: bytes });
      expect(await store.head("rt/string.txt")).toEqual({ size: bytes });
      const obj = await store.get("rt/string.txt");
      expect(obj?.size).toBe(bytes);
      // A store that reports content types reports the stored one.
      if (obj?.contentType !== undefined) expect(obj.contentType).toBe("text/plain");
      expect(new TextDecoder().decode(await readAll(obj!))).toBe(s);
    });

    it("round-trips every byte value exactly, and an empty object", async () => {
      const all = new Uint8Array(512).map((_, i) => (i * 7) & 0xff);
      expect(await store.put("rt/bytes.bin", all)).toEqual({ size: 512 });
      const obj = await store.get("rt/bytes.bin");
      expect(Array.from(await readAll(obj!))).toEqual(Array.from(all));

      expect(await store.put("rt/empty", new Uint8Array(0))).toEqual({ size: 0 });
      expect(await store.head("rt/empty")).toEqual({ size: 0 });
      expect((await readAll((await store.get("rt/empty"))!)).byteLength).toBe(0);
    });

    it("overwrites an existing key", async () => {
      await store.put("rt/over.txt", "first version, longer");
      await store.put("rt/over.txt", "second");
      expect(await text(store, "rt/over.txt")).toBe("second");
      expect(await store.head("rt/over.txt")).toEqual({ size: 6 });
    });

    it("streams a 17 MiB body (more than two 8 MiB parts) in and out unchanged", async () => {
      const total = 17 * MIB + 123;
      // Odd chunk size: part boundaries never line up with chunk boundaries.
      const src = generated(total, MIB + 7);
      expect(await store.put("big/stream.bin", src.stream)).toEqual({ size: total });
      const expected = src.sha256();
      expect(await store.head("big/stream.bin")).toEqual({ size: total });
      const obj = await store.get("big/stream.bin");
      expect(obj?.size).toBe(total);
      expect(await streamSha256(obj!.body)).toEqual({ sha256: expected, bytes: total });
    });

    it("round-trips a small stream", async () => {
      const src = generated(1000, 64);
      expect(await store.put("rt/small-stream.bin", src.stream)).toEqual({ size: 1000 });
      expect((await streamSha256((await store.get("rt/small-stream.bin"))!.body)).sha256).toBe(src.sha256());
    });

    it("leaves no object behind when the body stream fails, before or after the first part", async () => {
      for (const [key, goodBytes] of [["fail/early.bin", 1000], ["fail/late.bin", 9 * MIB]] as const) {
        let sent = 0;
        const broken = new ReadableStream<Uint8Array>({
          pull(ctl) {
            if (sent >= goodBytes) return ctl.error(new Error("client went away"));
            const n = Math.min(MIB, goodBytes - sent);
            sent += n;
            ctl.enqueue(new Uint8Array(n).fill(1));
          },
        });
        await expect(store.put(key, broken)).rejects.toThrow();
        expect(await store.head(key)).toBeNull();
      }
      expect(await keys(store, "fail/")).toEqual([]);
    });

    it("answers null for a missing key; deleting a missing key is not an error", async () => {
      expect(await store.get("missing/nothing-here")).toBeNull();
      expect(await store.head("missing/nothing-here")).toBeNull();
      await expect(store.delete("missing/nothing-here")).resolves.toBeUndefined();
    });

    it("lists by key prefix (string prefix, not folder), across pages", async () => {
      const n = Math.max(7, (t.listPageSize ?? 0) * 2 + 1);
      const expected: string[] = [];
      for (let i = 0; i < n; i++) {
        const k = `list/a/${String(i).padStart(3, "0")}.txt`;
        await store.put(k, `object ${i}`);
        expected.push(k);
      }
      await store.put("list/a/deeper/x.txt", "x");
      await store.put("list/ab", "sibling sharing the string prefix");
      await store.put("list/b/y.txt", "elsewhere");

      const sizes = new Map<string, number>();
      for await (const o of store.list("list/a/")) sizes.set(o.key, o.size);
      expect([...sizes.keys()].sort()).toEqual([...expected, "list/a/deeper/x.txt"].sort());
      expect(sizes.get("list/a/003.txt")).toBe("object 3".length);
      expect(await keys(store, "list/a")).toEqual([...expected, "list/a/deeper/x.txt", "list/ab"].sort());
      expect(await keys(store, "list/a/deeper/")).toEqual(["list/a/deeper/x.txt"]);
      expect(await keys(store, "list/none/")).toEqual([]);
    });

    it("lists a version that changes when an object is replaced under the same key, and stays while it is not", async () => {
      const versions = async () => {
        const out = new Map<string, string | undefined>();
        for await (const o of store.list("ver/")) out.set(o.key, o.version);
        return out;
      };
      await store.put("ver/weights", "old weights");
      await store.put("ver/config", "config");
      const before = await versions();
      expect(before.get("ver/weights")).toEqual(expect.any(String));
      // Same size, other bytes: a size alone would not tell them apart.
      await store.put("ver/weights", "new weights");
      const after = await versions();
      expect(after.get("ver/weights")).not.toBe(before.get("ver/weights"));
      expect(after.get("ver/config")).toBe(before.get("ver/config"));
    });

    it("a presigned GET answers the listed version as its ETag, and refuses (412) an If-Match of a version replaced since", async () => {
      const listed = async () => {
        for await (const o of store.list("etag/")) if (o.key === "etag/weights") return o.version!;
        throw new Error("etag/weights not listed");
      };
      // The ETag's quotes (and a weak W/) aside, as S3 lists and answers it with them and R2's binding lists it bare.
      const bare = (etag: string | null) => etag?.replace(/^W\//, "").replace(/"/g, "");
      await store.put("etag/weights", "old weights");
      const before = await listed();
      const get = await fetch(await store.presign("etag/weights", "GET", 300), { headers: { "if-match": `"${bare(before)}"` } });
      expect(get.status).toBe(200);
      expect(bare(get.headers.get("etag"))).toBe(bare(before));
      expect(await get.text()).toBe("old weights");
      await store.put("etag/weights", "new weights");
      const stale = await fetch(await store.presign("etag/weights", "GET", 300), { headers: { "if-match": `"${bare(before)}"` } });
      if (t.honoursIfMatch === false) {
        // Served anyway: its ETag, the new version's, is what gives the replacement away.
        expect(bare(stale.headers.get("etag"))).toBe(bare(await listed()));
        expect(bare(stale.headers.get("etag"))).not.toBe(bare(before));
      } else {
        expect(stale.status).toBe(412);
      }
      await stale.arrayBuffer();
    });

    it("copies an object inside the store: its bytes, size and content type, apart from the source from then on", async (ctx) => {
      if (t.copies === false) return ctx.skip();
      expect(store.copy).toBeTypeOf("function");
      const total = 3 * MIB + 17;
      const src = generated(total, MIB + 7);
      await store.put("cp/from/weights.bin", src.stream, { contentType: "application/octet-stream" });
      const expected = src.sha256();
      await store.put("cp/to/weights.bin", "an older object at the copy's key");

      expect(await store.copy!("cp/from/weights.bin", "cp/to/weights.bin")).toEqual({ size: total });
      const obj = await store.get("cp/to/weights.bin");
      expect(obj?.size).toBe(total);
      if (obj?.contentType !== undefined) expect(obj.contentType).toBe("application/octet-stream");
      expect(await streamSha256(obj!.body)).toEqual({ sha256: expected, bytes: total });

      // The copy is an object of its own: what is written at, or deleted from, the source later does not reach it.
      await store.put("cp/from/weights.bin", "replaced");
      await store.delete("cp/from/weights.bin");
      expect(await store.head("cp/to/weights.bin")).toEqual({ size: total });
      expect(await keys(store, "cp/")).toEqual(["cp/to/weights.bin"]);
    });

    it("answers null for a copy of a missing object, and writes nothing", async (ctx) => {
      if (t.copies === false) return ctx.skip();
      expect(await store.copy!("cp-missing/from", "cp-missing/to")).toBeNull();
      expect(await keys(store, "cp-missing/")).toEqual([]);
    });

    it("deletes one key, and everything under a prefix (returning the count)", async () => {
      const n = Math.max(5, (t.listPageSize ?? 0) * 2 + 1);
      for (let i = 0; i < n; i++) await store.put(`del/job/${i}`, "x");
      await store.put("del/job-keep", "keep: shares the string prefix 'del/job' but not 'del/job/'");
      await store.put("del/other/1", "keep");

      await store.delete("del/job/0");
      expect(await store.head("del/job/0")).toBeNull();
      expect(await store.deletePrefix("del/job/")).toBe(n - 1);
      expect(await keys(store, "del/")).toEqual(["del/job-keep", "del/other/1"]);
      expect(await store.deletePrefix("del/job/")).toBe(0);
    });

    it("lists and deletes a prefix while another caller deletes it (a job's end and a complete that lost to it)", async () => {
      const put = async () => {
        for (let i = 0; i < 5; i++) await store.put(`both/job/${i}`, "x");
      };
      await put();
      await store.put("both/other", "keep");
      // A listing that has begun when the objects it is about to yield are deleted ends without them.
      const listing = store.list("both/job/")[Symbol.asyncIterator]();
      expect((await listing.next()).value).toMatchObject({ key: "both/job/0" });
      await store.deletePrefix("both/job/");
      for (let r = await listing.next(); !r.done; r = await listing.next()) expect(r.value.key).toMatch(/^both\/job\//);
      // A deletePrefix that has begun when another removes the rest finishes too.
      await put();
      const del = store.delete;
      store.delete = async (key: string) => {
        store.delete = del;
        await store.deletePrefix("both/job/");
        return del.call(store, key);
      };
      try {
        expect(await store.deletePrefix("both/job/")).toBeGreaterThanOrEqual(1);
      } finally {
        store.delete = del;
      }
      expect(await keys(store, "both/")).toEqual(["both/other"]);
    });

    it("presigned GET and PUT links work with plain fetch", async () => {
      await store.put("link/get.txt", "via a presigned GET");
      const get = await fetch(await store.presign("link/get.txt", "GET", 300));
      expect(get.status).toBe(200);
      expect(await get.text()).toBe("via a presigned GET");

      const payload = new Uint8Array(4096).map((_, i) => (i * 31) & 0xff);
      const put = await fetch(await store.presign("link/put.bin", "PUT", 300), { method: "PUT", body: payload });
      expect(put.status).toBe(200);
      await put.arrayBuffer();
      expect(Array.from(await readAll((await store.get("link/put.bin"))!))).toEqual(Array.from(payload));

      const missing = await fetch(await store.presign("link/missing.txt", "GET", 300));
      expect(missing.status).toBe(404);
      await missing.arrayBuffer();
    });

    it("refuses expired presigned links", async () => {
      await store.put("link/old.txt", "stale");
      t.setLinkAge(3600);
      try {
        const get = await fetch(await store.presign("link/old.txt", "GET", 60));
        expect(get.status).toBe(403);
        await get.arrayBuffer();
        const put = await fetch(await store.presign("link/old-put.txt", "PUT", 60), { method: "PUT", body: "late" });
        expect(put.status).toBe(403);
        await put.arrayBuffer();
      } finally {
        t.setLinkAge(0);
      }
      expect(await store.head("link/old-put.txt")).toBeNull();
      // The same link signed now is accepted: the refusal above was about age, not the key.
      expect((await fetch(await store.presign("link/old.txt", "GET", 60))).status).toBe(200);
    });

    it("refuses a presigned link whose key was swapped (where the server verifies signatures)", async (ctx) => {
      if (!t.verifiesSignatures) ctx.skip();
      await store.put("link/secret-a.txt", "a");
      await store.put("link/secret-b.txt", "b");
      const url = new URL(await store.presign("link/secret-a.txt", "GET", 300));
      url.pathname = url.pathname.replace("secret-a", "secret-b");
      const res = await fetch(url);
      expect(res.status).toBe(403);
      await res.arrayBuffer();
      // A GET link does not allow PUT.
      const put = await fetch(await store.presign("link/secret-a.txt", "GET", 300), { method: "PUT", body: "overwrite" });
      expect(put.status).toBe(403);
      await put.arrayBuffer();
      expect(await text(store, "link/secret-a.txt")).toBe("a");
    });

    it("refuses a link whose path is not valid percent-encoding (where the server verifies signatures)", async (ctx) => {
      if (!t.verifiesSignatures) ctx.skip();
      const url = new URL(await store.presign("link/a.txt", "GET", 300));
      url.pathname = url.pathname.replace("a.txt", "%E0%A4%A");
      const res = await fetch(url);
      expect(res.status).toBe(400);
      expect((await res.json()).error).toMatchObject({ code: "invalid_request", message: expect.stringMatching(/not valid percent-encoding/) });
    });

    it("refuses keys that climb out of the store's root", async () => {
      for (const key of ["../outside.txt", "a/../../outside.txt"]) {
        await expect(store.put(key, "escape")).rejects.toThrow(/invalid blob key/);
        await expect(store.presign(key, "GET", 60)).rejects.toThrow(/invalid blob key/);
        await expect(store.delete(key)).rejects.toThrow(/invalid blob key/);
        // Reads either refuse or find nothing; they never reach outside.
        const got = await store.get(key).catch(() => null);
        expect(got).toBeNull();
      }
      await expect(store.put("", "no key")).rejects.toThrow(/invalid blob key/);
      await expect(store.deletePrefix("../")).rejects.toThrow(/invalid blob key/);
    });

    it("refuses '.' and '..' segments even where they stay inside the root: such a key names another object than it reads", async () => {
      // tenants/a/… resolving to tenants/b/…: a key built from a name with '..' in it must not reach another tenant's folder.
      await store.put("tenants/b/files/f", "b's data");
      for (const key of ["tenants/a/../b/files/f", "tenants/a/files/../../b/files/f", "./tenants/b/files/f", "tenants/b/./files/f"]) {
        await expect(store.put(key, "overwrite"), key).rejects.toThrow(/invalid blob key/);
        await expect(store.presign(key, "GET", 60), key).rejects.toThrow(/invalid blob key/);
        await expect(store.delete(key), key).rejects.toThrow(/invalid blob key/);
        expect(await store.get(key).catch(() => null), key).toBeNull();
      }
      await expect(store.deletePrefix("tenants/a/../b/")).rejects.toThrow(/invalid blob key/);
      expect(await text(store, "tenants/b/files/f")).toBe("b's data");
      await store.deletePrefix("tenants/b/");
    });
  });
}
