// The runner's protocol client against a small real HTTP server: which answers are retried and which stop.
import { listenLocal, type LocalServer } from "../../helpers/http-server.js";
import { afterEach, describe, expect, it } from "vitest";
import { ApiCallError, LeaseLostError, RunnerApiClient, backoffMs, retryableStatus } from "../../../gpu-runner/src/runner/api-client.js";

const fast = { attempts: 4, baseMs: 5, maxMs: 20 };
let server: LocalServer | null = null;

/** Serves the scripted answers in order and records each request's path, auth header and body. */
async function scripted(answers: Array<{ status: number; body?: unknown }>) {
  const seen: Array<{ path: string; auth: string | undefined; body: unknown }> = [];
  server = await listenLocal((req, res) => {
    let data = "";
    req.on("data", (c) => (data += c));
    req.on("end", () => {
      seen.push({ path: req.url!, auth: req.headers.authorization, body: data ? JSON.parse(data) : null });
      const a = answers[Math.min(seen.length - 1, answers.length - 1)];
      res.writeHead(a.status, { "content-type": "application/json" });
      res.end(a.body === undefined ? "" : JSON.stringify(a.body));
    });
  });
  return { client: new RunnerApiClient(server.url, "run_test-token-0123456789", fast), seen };
}

afterEach(async () => {
  await server?.close();
  server = null;
});

const progress = { step: 1, total_steps: 4, epoch: 0, loss: 2.5 };

describe("RunnerApiClient", () => {
  it("retries 5xx and returns the answer that finally works", async () => {
    const { client, seen } = await scripted([{ status: 503, body: { error: { code: "unavailable" } } }, { status: 500 }, { status: 200, body: { job_id: "j", status: "running", lease_expires_at: 9 } }]);
    const r = await client.heartbeat("j", { runner_id: "run_1", attempt: 1 }, progress);
    expect(r.lease_expires_at).toBe(9);
    expect(seen).toHaveLength(3);
    expect(seen[2]).toEqual({ path: "/internal/v1/jobs/j/heartbeat", auth: "Bearer run_test-token-0123456789", body: { runner_id: "run_1", attempt: 1, progress } });
  });

  it("turns 409 lease_lost into LeaseLostError without retrying", async () => {
    const { client, seen } = await scripted([{ status: 409, body: { error: { code: "lease_lost", message: "job j was cancelled; stop working on it" } } }]);
    const err = await client.heartbeat("j", { runner_id: "run_1", attempt: 1 }, progress).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LeaseLostError);
    expect((err as Error).message).toContain("cancelled");
    expect(seen).toHaveLength(1);
  });

  it("fails other 4xx at once as not retryable, keeping status and code", async () => {
    const { client, seen } = await scripted([{ status: 400, body: { error: { code: "invalid_file", message: "adapter_config.json: r=4 does not match the job's r=8" } } }]);
    const err = (await client.complete("j", { runner_id: "run_1", attempt: 1 }, 10).catch((e: unknown) => e)) as ApiCallError;
    expect(err).toBeInstanceOf(ApiCallError);
    expect([err.status, err.code, err.retryable]).toEqual([400, "invalid_file", false]);
    expect(err.message).toContain("r=4");
    expect(seen).toHaveLength(1);
  });

  it("sends a lease's idempotency key on every try of the call", async () => {
    const { client, seen } = await scripted([{ status: 502 }, { status: 204 }]);
    expect(await client.lease("run_1", "lease-key-1")).toBeNull();
    expect(seen.map((s) => s.body)).toEqual([{ runner_id: "run_1", idempotency_key: "lease-key-1" }, { runner_id: "run_1", idempotency_key: "lease-key-1" }]);
  });

  it("answers null for 204 (nothing queued)", async () => {
    const { client } = await scripted([{ status: 204 }]);
    expect(await client.lease("run_1")).toBeNull();
  });

  it("waits past a try's deadline for a checkpoint record, which copies the checkpoint's files before it answers", async () => {
    // Every answer comes 300 ms late; a try's deadline is 100 ms.
    server = await listenLocal((req, res) => {
      req.resume();
      req.on("end", () => setTimeout(() => res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ id: "ftckpt-1", step: 1 })), 300));
    });
    const client = new RunnerApiClient(server.url, "run_test-token-0123456789", { ...fast, attempts: 1, timeoutMs: 100 });
    const holder = { runner_id: "run_1", attempt: 1 };
    expect(await client.heartbeat("j", holder, progress).catch((e: unknown) => e)).toBeInstanceOf(ApiCallError);
    expect(await client.recordCheckpoint("j", holder, 1, {}, 3)).toMatchObject({ id: "ftckpt-1" });
  });

  it("stops waiting for a checkpoint record once its signal aborts (the lease was lost)", async () => {
    // The API never answers: the copy it makes before answering may take minutes.
    server = await listenLocal((req) => void req.resume());
    const client = new RunnerApiClient(server.url, "run_test-token-0123456789", { ...fast, attempts: 1 });
    const abort = new AbortController();
    setTimeout(() => abort.abort(new Error("lease lost")), 50);
    const started = Date.now();
    const err = await client.recordCheckpoint("j", { runner_id: "run_1", attempt: 1 }, 1, {}, 3, abort.signal).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    expect(Date.now() - started).toBeLessThan(2_000);
  }, 5_000);

  it("gives up on an unreachable API after the policy's tries, marked retryable", async () => {
    // Port 1: nothing listens there (a closed server's ephemeral port could be taken by a parallel test).
    const client = new RunnerApiClient("http://127.0.0.1:1", "run_test-token-0123456789", fast);
    const err = (await client.lease("run_1").catch((e: unknown) => e)) as ApiCallError;
    expect(err).toBeInstanceOf(ApiCallError);
    expect(err.retryable).toBe(true);
    expect(err.message).toMatch(/gave up after 4 tries/);
  });
});

describe("retry policy", () => {
  it("retries server trouble and rate limits, not client errors", () => {
    expect([500, 502, 503, 429, 408].map(retryableStatus)).toEqual([true, true, true, true, true]);
    expect([400, 401, 404, 409, 413].map(retryableStatus)).toEqual([false, false, false, false, false]);
  });
  it("doubles the wait up to the cap", () => {
    const p = { attempts: 9, baseMs: 100, maxMs: 1000 };
    expect([0, 1, 2, 3, 4].map((n) => backoffMs(n, p, () => 0))).toEqual([100, 200, 400, 800, 1000]);
    expect(backoffMs(0, p, () => 1)).toBe(125);
  });
});
