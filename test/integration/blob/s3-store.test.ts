// Runs the BlobStore contract against S3BlobStore on s3rver (an S3-compatible server started by the test),
// plus what only S3 has: multipart uploads, the key prefix inside a shared bucket, settings from the env.
// s3rver does not verify SigV4 signatures (TOOLCHAIN.md): these tests cannot catch signing bugs, only
// routing, paging, multipart and presigned-URL expiry, which s3rver does check.
import { HeadObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer, request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readAll } from "../../../api/src/blob/port.js";
import { S3BlobStore, s3ConfigFromEnv, type S3BlobStoreConfig } from "../../../api/src/blob/s3.js";
import { createNodeDeps } from "../../../api/src/node-deps.js";
import { startS3rver, type TestS3 } from "../../helpers/s3rver.js";
import { blobStoreContract } from "./contract.js";

function configFor(s3: TestS3, extra: Partial<S3BlobStoreConfig> = {}): S3BlobStoreConfig {
  return s3ConfigFromEnv({
    TUNESERVE_S3_BUCKET: s3.bucket,
    TUNESERVE_S3_ENDPOINT: s3.endpoint,
    TUNESERVE_S3_ACCESS_KEY_ID: s3.accessKeyId,
    TUNESERVE_S3_SECRET_ACCESS_KEY: s3.secretAccessKey,
    ...Object.fromEntries(Object.entries(extra).filter(([k]) => k.startsWith("TUNESERVE_"))),
  }) as S3BlobStoreConfig & typeof extra;
}

/** A pass-through HTTP proxy that records each request's method, URL and body size. */
async function recordingProxy(target: string): Promise<{ endpoint: string; seen: { method: string; url: string; bytes: number }[]; close(): Promise<void> }> {
  const seen: { method: string; url: string; bytes: number }[] = [];
  const upstream = new URL(target);
  const server = createServer((req, res) => {
    const entry = { method: req.method ?? "", url: req.url ?? "", bytes: 0 };
    seen.push(entry);
    req.on("data", (c: Buffer) => (entry.bytes += c.byteLength));
    const out = request({ host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: req.headers }, (up) => {
      res.writeHead(up.statusCode ?? 502, up.headers);
      up.pipe(res);
    });
    out.on("error", () => res.destroy());
    req.pipe(out);
  });
  await new Promise<void>((ok) => server.listen(0, "127.0.0.1", ok));
  const addr = server.address();
  if (!addr || typeof addr !== "object") throw new Error("proxy has no port");
  return { endpoint: `http://127.0.0.1:${addr.port}`, seen, close: () => new Promise<void>((ok) => server.close(() => ok())) };
}

blobStoreContract("S3BlobStore on s3rver (prefix, 2-key pages)", async () => {
  const s3 = await startS3rver();
  let age = 0;
  // Small pages so listing and DeleteObjects batching cross page boundaries with a handful of objects.
  const listPageSize = 2;
  const store = new S3BlobStore({ ...configFor(s3), prefix: "deploy-a/", listPageSize, now: () => Date.now() - age * 1000 });
  return {
    store,
    verifiesSignatures: false,
    honoursIfMatch: false,
    listPageSize,
    setLinkAge(seconds) {
      // s3rver checks expiry against its real clock, so links are dated `seconds` in the past instead.
      age = seconds;
    },
    close: () => s3.stop(),
  };
});

describe("S3BlobStore specifics on s3rver", () => {
  let s3: TestS3;
  let raw: S3Client;
  beforeAll(async () => {
    s3 = await startS3rver("specifics");
    raw = new S3Client({ region: "us-east-1", endpoint: s3.endpoint, forcePathStyle: true, credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey } });
  });
  afterAll(async () => {
    raw?.destroy();
    await s3?.stop();
  });

  it("uploads bodies larger than one part as multipart (8 MiB parts), smaller ones in one PUT", async () => {
    // s3rver gives multipart objects a plain MD5 ETag, so the requests are observed on the wire instead.
    const proxy = await recordingProxy(s3.endpoint);
    try {
      const store = new S3BlobStore({ ...configFor(s3), endpoint: proxy.endpoint });
      const body = new Uint8Array(8 * 1024 * 1024 + 10).fill(7);
      expect(await store.put("mp/two-parts.bin", body)).toEqual({ size: body.byteLength });
      const parts = proxy.seen.filter((r) => r.method === "PUT" && r.url.includes("partNumber="));
      expect(proxy.seen.filter((r) => r.method === "POST" && r.url.includes("uploads")).length).toBe(1);
      expect(parts.map((r) => r.bytes).sort((a, b) => b - a)).toEqual([8 * 1024 * 1024, 10]);
      expect(proxy.seen.filter((r) => r.method === "POST" && r.url.includes("uploadId=")).length).toBe(1);
      const head = await raw.send(new HeadObjectCommand({ Bucket: s3.bucket, Key: "mp/two-parts.bin" }));
      expect(head.ContentLength).toBe(body.byteLength);

      proxy.seen.length = 0;
      await store.put("mp/one-part.bin", new Uint8Array(1000));
      expect(proxy.seen.map((r) => `${r.method} ${r.bytes}`)).toEqual(["PUT 1000"]);

      // A body that fails after the first part aborts the multipart upload (no orphaned parts billed).
      proxy.seen.length = 0;
      let sent = 0;
      const broken = new ReadableStream<Uint8Array>({
        pull(ctl) {
          if (sent >= 9 * 1024 * 1024) return ctl.error(new Error("client went away"));
          sent += 1024 * 1024;
          ctl.enqueue(new Uint8Array(1024 * 1024));
        },
      });
      await expect(store.put("mp/broken.bin", broken)).rejects.toThrow(/client went away/);
      expect(proxy.seen.filter((r) => r.method === "DELETE" && r.url.includes("uploadId=")).length).toBe(1);
    } finally {
      await proxy.close();
    }
  });

  it("keeps every key under its prefix and does not see other prefixes", async () => {
    const a = new S3BlobStore({ ...configFor(s3), prefix: "tenant-a/" });
    const b = new S3BlobStore({ ...configFor(s3), prefix: "tenant-b/" });
    const whole = new S3BlobStore(configFor(s3));
    await a.put("same/key.txt", "from a");
    await b.put("same/key.txt", "from b");
    expect(new TextDecoder().decode(await readAll((await a.get("same/key.txt"))!))).toBe("from a");
    expect(await whole.head("tenant-a/same/key.txt")).toEqual({ size: 6 });
    const listed: string[] = [];
    for await (const o of a.list("")) listed.push(o.key);
    expect(listed).toEqual(["same/key.txt"]);
    expect(await a.deletePrefix("")).toBe(1);
    expect(await whole.head("tenant-b/same/key.txt")).toEqual({ size: 6 });
    // A presigned link addresses the prefixed object.
    const url = await b.presign("same/key.txt", "GET", 60);
    expect(new URL(url).pathname).toBe(`/${s3.bucket}/tenant-b/same/key.txt`);
  });

  it("presigns PUT URLs without an SDK-computed body checksum (s3rver would not notice one; S3 would refuse the upload)", async () => {
    const store = new S3BlobStore(configFor(s3));
    const url = new URL(await store.presign("k.bin", "PUT", 60));
    const params = [...url.searchParams.keys()].map((k) => k.toLowerCase());
    expect(params).toContain("x-amz-signature");
    expect(params.filter((k) => k.includes("checksum"))).toEqual([]);
  });

  it("is what the Node deployment uses when TUNESERVE_S3_BUCKET is set", async () => {
    const dataDir = await mkdtemp(join(tmpdir(), "tuneserve-s3-deps-"));
    const env = { TUNESERVE_S3_BUCKET: s3.bucket, TUNESERVE_S3_ENDPOINT: s3.endpoint, TUNESERVE_S3_ACCESS_KEY_ID: "S3RVER", TUNESERVE_S3_SECRET_ACCESS_KEY: "S3RVER", TUNESERVE_S3_PREFIX: "node-deps" };
    const { deps, close } = await createNodeDeps({ dataDir, publicUrl: "http://localhost", env });
    try {
      expect(deps.blobs).toBeInstanceOf(S3BlobStore);
      // No /blobs/ signing secret: links point at S3 itself.
      expect(deps.blobSigningSecret).toBeUndefined();
      await deps.blobs.put("wired.txt", "through node-deps");
      expect(await raw.send(new HeadObjectCommand({ Bucket: s3.bucket, Key: "node-deps/wired.txt" }))).toMatchObject({ ContentLength: 17 });
    } finally {
      close();
      await rm(dataDir, { recursive: true, force: true });
    }
  });

  it("refuses presign lifetimes SigV4 cannot express", async () => {
    const store = new S3BlobStore(configFor(s3));
    await expect(store.presign("k", "GET", 0)).rejects.toThrow(/expiresInSeconds=0 must be an integer 1–604800/);
    await expect(store.presign("k", "PUT", 8 * 24 * 3600)).rejects.toThrow(/must be an integer 1–604800/);
  });
});

describe("s3ConfigFromEnv", () => {
  it("defaults to AWS virtual-hosted style without an endpoint, and the SDK's credential chain", () => {
    expect(s3ConfigFromEnv({ TUNESERVE_S3_BUCKET: "models" })).toEqual({
      bucket: "models",
      region: "us-east-1",
      endpoint: undefined,
      forcePathStyle: false,
      credentials: undefined,
      prefix: "",
    });
  });

  it("uses region 'auto' for R2 and path-style for any custom endpoint", () => {
    const r2 = s3ConfigFromEnv({
      TUNESERVE_S3_BUCKET: "tuneserve",
      TUNESERVE_S3_ENDPOINT: "https://0123abcd.r2.cloudflarestorage.com",
      TUNESERVE_S3_ACCESS_KEY_ID: "id",
      TUNESERVE_S3_SECRET_ACCESS_KEY: "secret",
      TUNESERVE_S3_PREFIX: "/prod",
    });
    expect(r2).toMatchObject({ region: "auto", forcePathStyle: true, credentials: { accessKeyId: "id", secretAccessKey: "secret" }, prefix: "prod/" });
    const minio = s3ConfigFromEnv({ TUNESERVE_S3_BUCKET: "tuneserve", TUNESERVE_S3_ENDPOINT: "http://minio:9000", TUNESERVE_S3_REGION: "eu-west-1" });
    expect(minio).toMatchObject({ region: "eu-west-1", forcePathStyle: true, endpoint: "http://minio:9000" });
    const vhost = s3ConfigFromEnv({ TUNESERVE_S3_BUCKET: "tuneserve", TUNESERVE_S3_ENDPOINT: "http://minio:9000", TUNESERVE_S3_FORCE_PATH_STYLE: "false" });
    expect(vhost.forcePathStyle).toBe(false);
  });

  it("names the offending variable", () => {
    expect(() => s3ConfigFromEnv({})).toThrow("invalid setting TUNESERVE_S3_BUCKET: missing; this field is required (a string)");
    expect(() => s3ConfigFromEnv({ TUNESERVE_S3_BUCKET: "bkt", TUNESERVE_S3_ENDPOINT: "not a url" })).toThrow(/TUNESERVE_S3_ENDPOINT/);
    expect(() => s3ConfigFromEnv({ TUNESERVE_S3_BUCKET: "bkt", TUNESERVE_S3_FORCE_PATH_STYLE: "yes" })).toThrow(/TUNESERVE_S3_FORCE_PATH_STYLE must be 'true' or 'false'/);
    expect(() => s3ConfigFromEnv({ TUNESERVE_S3_BUCKET: "bkt", TUNESERVE_S3_ACCESS_KEY_ID: "id" })).toThrow(/TUNESERVE_S3_ACCESS_KEY_ID: set both/);
  });
});
