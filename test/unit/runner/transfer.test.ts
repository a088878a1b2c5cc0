// Presigned-URL transfers against a small real HTTP server standing in for the blob store: which refusals are
// marked retryable (a fresh URL may pass) and which are definite.
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { listenLocal, type LocalServer } from "../../helpers/http-server.js";
import { ApiCallError } from "../../../gpu-runner/src/runner/api-client.js";
import { downloadTo, uploadFrom } from "../../../gpu-runner/src/runner/transfer.js";

const s3Error = (code: string, message: string) => `<?xml version="1.0" encoding="UTF-8"?><Error><Code>${code}</Code><Message>${message}</Message></Error>`;
/** Path → the blob store's answer. */
const answers: Record<string, { status: number; body: string }> = {
  "/timeout": { status: 400, body: s3Error("RequestTimeout", "Your socket connection to the server was not read from or written to within the timeout period.") },
  "/expired": { status: 403, body: s3Error("AccessDenied", "Request has expired") },
  "/token": { status: 400, body: s3Error("ExpiredToken", "The provided token has expired.") },
  "/too-large": { status: 413, body: s3Error("EntityTooLarge", "Your proposed upload exceeds the maximum allowed size") },
  "/bad-request": { status: 400, body: s3Error("InvalidArgument", "Invalid argument.") },
};

let server: LocalServer;
let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "tuneserve-transfer-"));
  await writeFile(join(dir, "adapter_model.safetensors"), "weights");
  server = await listenLocal((req, res) => {
    req.resume();
    req.on("end", () => {
      const a = answers[req.url!.replace(/\?.*$/, "")];
      res.writeHead(a.status, { "content-type": "application/xml" });
      res.end(a.body);
    });
  });
});
afterAll(async () => {
  await server.close();
  await rm(dir, { recursive: true, force: true });
});

const errorOf = (p: Promise<unknown>) => p.then(() => null, (e: unknown) => e as ApiCallError);

describe("transfers the blob store refuses", () => {
  it("marks an expired link, a timed-out body and expired credentials retryable, and other 4xx definite", async () => {
    const retryable: Record<string, boolean> = {};
    for (const path of Object.keys(answers)) {
      const err = await errorOf(uploadFrom(join(dir, "adapter_model.safetensors"), `${server.url}${path}?X-Amz-Signature=secret`));
      expect(err).toBeInstanceOf(ApiCallError);
      expect(err!.status).toBe(answers[path].status);
      expect(err!.message).not.toContain("secret");
      retryable[path] = err!.retryable;
    }
    expect(retryable).toEqual({ "/timeout": true, "/expired": true, "/token": true, "/too-large": false, "/bad-request": false });
    const tooLarge = await errorOf(uploadFrom(join(dir, "adapter_model.safetensors"), `${server.url}/too-large`));
    expect(tooLarge!.message).toMatch(/^PUT .*\/too-large: 413 .*EntityTooLarge/);
  });

  it("classifies downloads the same way", async () => {
    expect((await errorOf(downloadTo(`${server.url}/expired`, join(dir, "got"))))!.retryable).toBe(true);
    expect((await errorOf(downloadTo(`${server.url}/bad-request`, join(dir, "got"))))!.retryable).toBe(false);
  });
});
