// The Node entry: a port that is taken fails the start with a message that says what to do.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { startServer } from "../../../api/src/node.js";

let dir: string;
beforeAll(async () => void (dir = await mkdtemp(join(tmpdir(), "tuneserve-node-server-"))));
afterAll(() => rm(dir, { recursive: true, force: true }));

it("refuses a port in use with a clear error, and the first server keeps serving", async () => {
  const first = await startServer({ port: 0, dataDir: join(dir, "a") });
  try {
    const port = Number(new URL(first.url).port);
    await expect(startServer({ port, dataDir: join(dir, "b") })).rejects.toThrow(`127.0.0.1:${port} is already in use; stop what listens there or pick another port`);
    expect((await fetch(`${first.url}/healthz`)).status).toBe(200);
  } finally {
    await first.close();
  }
});
