// The Node entry: a port that is taken fails the start with a message that says what to do, and leaves the data
// folder as it was.
import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer, type AddressInfo } from "node:net";
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
    // Refused before the data folder is touched: nothing is made there.
    expect(existsSync(join(dir, "b"))).toBe(false);
    expect((await fetch(`${first.url}/healthz`)).status).toBe(200);
  } finally {
    await first.close();
  }
});

it("holds requests that come while it starts: answered once ready, 503 when the start fails", async () => {
  /** Starts on a free port with prepareData stalled until `go()`; `listening` resolves once the port is held. */
  const starting = async (name: string, fail: boolean) => {
    const port = await freePort();
    let go!: () => void;
    const gate = new Promise<void>((ok) => (go = ok));
    let held!: () => void;
    const listening = new Promise<void>((ok) => (held = ok));
    const started = startServer({
      port,
      dataDir: join(dir, name),
      prepareData: async () => {
        held();
        await gate;
        if (fail) throw new Error("data folder refused");
      },
    });
    await listening;
    return { started, url: `http://127.0.0.1:${port}`, go };
  };
  const ok = await starting("held", false);
  const early = fetch(`${ok.url}/healthz`);
  await new Promise((r) => setTimeout(r, 50)); // the request reaches the server before the app is ready
  ok.go();
  const server = await ok.started;
  expect((await early).status).toBe(200);
  await server.close();

  const bad = await starting("failed", true);
  const refused = fetch(`${bad.url}/healthz`);
  await new Promise((r) => setTimeout(r, 50));
  bad.go();
  await expect(bad.started).rejects.toThrow("data folder refused");
  const res = await refused;
  expect(res.status).toBe(503);
  expect((await res.json()).error.code).toBe("unavailable");
  expect(existsSync(join(dir, "failed"))).toBe(false);
});

/** A port free a moment ago (the OS picks it). */
async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((ok) => s.listen(0, "127.0.0.1", ok));
  const port = (s.address() as AddressInfo).port;
  await new Promise((ok) => s.close(ok));
  return port;
}
