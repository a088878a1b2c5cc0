// The runner watch: a runner that falls silent and fails its health check is given up on (the next runner
// answers, or the answer being read fails); one that is slow but answers /healthz is waited for.
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { callRunners } from "../../../../api/src/inference/proxy.js";
import type { GenerateRequestInput } from "../../../../api/src/inference/runner-protocol.js";

const body = { request_id: "req_1", model: "micro-llama", adapter: null, input: { prompt: "hi" }, max_tokens: 4 } as unknown as GenerateRequestInput;
const fast = { quietMs: 50, probeTimeoutMs: 100 };
const servers: Server[] = [];

/** A runner on a real socket: `generate` and `healthz` say how it treats each request (never answering = frozen). */
async function runner(handlers: { generate: "never" | "ok" | "headers-then-silence" | { delayMs: number }; healthz: "never" | "ok" }): Promise<string> {
  const server = createServer((req, res) => {
    if (req.url === "/healthz") {
      if (handlers.healthz === "ok") res.end('{"ok":true}');
      return;
    }
    const g = handlers.generate;
    if (g === "never") return;
    if (g === "headers-then-silence") return void res.writeHead(200, { "Content-Type": "text/event-stream" }).write("data: {}\n\n");
    if (g === "ok") return void res.end('{"ok":true}');
    setTimeout(() => res.end('{"slow":true}'), g.delayMs);
  });
  servers.push(server);
  await new Promise<void>((ok) => server.listen(0, "127.0.0.1", ok));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

afterEach(async () => {
  for (const s of servers.splice(0)) {
    s.closeAllConnections();
    await new Promise((ok) => s.close(ok));
  }
});

describe("runner watch", () => {
  it("gives up on a frozen runner (no answer, no health check) and takes the next one's answer", async () => {
    const frozen = await runner({ generate: "never", healthz: "never" });
    const live = await runner({ generate: "ok", healthz: "ok" });
    const r = await callRunners([{ id: "frozen", url: frozen, holdsAdapter: true }, { id: "live", url: live, holdsAdapter: false }], body, "t", fetch, fast);
    expect(r.runner.id).toBe("live");
    expect(await r.response.json()).toEqual({ ok: true });
    // The next call tries the live runner first: the frozen one is a suspect for a while.
    const called: string[] = [];
    const recording = ((url: URL | RequestInfo, init?: RequestInit) => (called.push(String(url)), fetch(url, init))) as typeof fetch;
    const next = await callRunners([{ id: "frozen", url: frozen, holdsAdapter: true }, { id: "live", url: live, holdsAdapter: false }], body, "t", recording, fast);
    expect(next.runner.id).toBe("live");
    expect(called).toEqual([`${live}/v1/generate`]);
    await next.response.body?.cancel();
  });

  it("waits for a slow runner that still answers its health check", async () => {
    const slow = await runner({ generate: { delayMs: 400 }, healthz: "ok" });
    const r = await callRunners([{ id: "slow", url: slow, holdsAdapter: false }], body, "t", fetch, fast);
    expect(await r.response.json()).toEqual({ slow: true });
  });

  it("fails the read of an answer whose runner falls silent mid-stream", async () => {
    const stalls = await runner({ generate: "headers-then-silence", healthz: "never" });
    const r = await callRunners([{ id: "stalls", url: stalls, holdsAdapter: false }], body, "t", fetch, fast);
    const err = await r.response.text().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    expect(String((err as Error).cause ?? err)).toMatch(/stopped answering/);
  });

  it("answers 503 when the only runner is frozen", async () => {
    const frozen = await runner({ generate: "never", healthz: "never" });
    const err = await callRunners([{ id: "frozen", url: frozen, holdsAdapter: false }], body, "t", fetch, fast).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: "unavailable" });
  });
});
