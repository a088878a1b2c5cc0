// Starts an S3-compatible server (s3rver 3.7.1) as a child process for tests: a free port, a temp folder,
// one pre-created bucket. Stop it with stop(); it also exits by itself when the test process goes away.
import { spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

export interface TestS3 {
  /** Path-style endpoint, e.g. http://127.0.0.1:40955 */
  endpoint: string;
  bucket: string;
  /** s3rver accepts any well-formed credentials (it does not check SigV4 signatures). */
  accessKeyId: string;
  secretAccessKey: string;
  stop(): Promise<void>;
}

const main = fileURLToPath(new URL("./s3rver-main.mjs", import.meta.url));

/** Starts s3rver and resolves once it listens (it answers from then on). */
export async function startS3rver(bucket = "tuneserve-test"): Promise<TestS3> {
  const dir = await mkdtemp(join(tmpdir(), "tuneserve-s3rver-"));
  // TOOLCHAIN.md: without the legacy provider ListObjectsV2 continuation tokens (DES) fail.
  const nodeOptions = [process.env.NODE_OPTIONS, "--openssl-legacy-provider"].filter(Boolean).join(" ");
  const child = spawn(process.execPath, [main, dir, bucket], { env: { ...process.env, NODE_OPTIONS: nodeOptions }, stdio: ["pipe", "pipe", "pipe"] });
  let stderr = "";
  child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
  const exited = new Promise<void>((ok) => child.once("exit", () => ok()));

  try {
    const port = await new Promise<number>((ok, fail) => {
      const lines = createInterface({ input: child.stdout });
      lines.once("line", (line) => {
        try {
          ok((JSON.parse(line) as { port: number }).port);
        } catch {
          fail(new Error(`s3rver printed '${line}' instead of its port`));
        }
      });
      child.once("exit", (code) => fail(new Error(`s3rver exited with ${code} before listening: ${stderr.trim()}`)));
      child.once("error", fail);
    });
    const endpoint = `http://127.0.0.1:${port}`;
    // Ready means it answers HTTP: list the bucket once.
    const res = await fetch(`${endpoint}/${bucket}?list-type=2`);
    if (res.status !== 200) throw new Error(`s3rver answered ${res.status} listing bucket '${bucket}': ${await res.text()}`);
    await res.arrayBuffer();
    return {
      endpoint,
      bucket,
      accessKeyId: "S3RVER",
      secretAccessKey: "S3RVER",
      async stop() {
        if (child.exitCode === null) {
          child.stdin.end();
          const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
          await exited;
          clearTimeout(timer);
        }
        await rm(dir, { recursive: true, force: true });
      },
    };
  } catch (e) {
    child.kill("SIGKILL");
    await rm(dir, { recursive: true, force: true });
    throw e;
  }
}
