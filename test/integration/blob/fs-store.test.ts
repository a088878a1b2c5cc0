// Runs the BlobStore contract against the local store (FsBlobStore), its presigned links served by the
// API's /blobs/ route over a real HTTP server.
import { serve } from "@hono/node-server";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createApp } from "../../../api/src/app.js";
import { FsBlobStore } from "../../../api/src/blob/fs.js";
import { createNodeDeps } from "../../../api/src/node-deps.js";
import { blobStoreContract } from "./contract.js";

blobStoreContract("FsBlobStore behind the /blobs/ route", async () => {
  const dataDir = await mkdtemp(join(tmpdir(), "tuneserve-fs-blob-"));
  const { deps, close } = await createNodeDeps({ dataDir, publicUrl: "http://placeholder", env: {} });
  if (!(deps.blobs instanceof FsBlobStore)) throw new Error("expected the local blob store without TUNESERVE_S3_BUCKET");
  // Links are signed `age` seconds in the past, so they reach the /blobs/ route already that old.
  let age = 0;
  const fsStore = new FsBlobStore({
    root: join(dataDir, "blobs"),
    publicUrl: "http://placeholder",
    signingSecret: deps.blobSigningSecret!,
    now: () => deps.now() - age,
  });
  deps.blobs = fsStore;
  const app = createApp(deps);
  const server = await new Promise<ReturnType<typeof serve>>((ok) => {
    const s = serve({ fetch: app.fetch, port: 0, hostname: "127.0.0.1" }, () => ok(s));
  });
  const addr = server.address();
  if (!addr || typeof addr !== "object") throw new Error("test server has no port");
  fsStore.setPublicUrl(`http://127.0.0.1:${addr.port}`);
  return {
    store: fsStore,
    verifiesSignatures: true,
    setLinkAge(seconds) {
      age = seconds;
    },
    async close() {
      await new Promise<void>((ok) => server.close(() => ok()));
      close();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
});
