// Tenants sharing one runner through the real API: one tenant's burst holds at most its share of the runner's
// queue (its next request is a 429 while another tenant's still gets in), and tenants take turns for free rows,
// so the other tenant's request runs before the rest of the burst.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startServeStack, tenantWithAdapters, type ServeStack } from "../../../bench/stack.js";
import { waitFor } from "../e2e/harness.js";

let dir: string;
let stack: ServeStack;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "tuneserve-fairness-"));
  // One row, a queue of 4: each tenant's share is the row plus half the queue, 3 sequences.
  stack = await startServeStack({ dataDir: dir, maxBatch: 1, maxQueue: 4, maxContext: 2048 });
});
afterAll(async () => {
  await stack?.close();
  await rm(dir, { recursive: true, force: true });
});

/** A completion that runs to max_tokens (the built-in tokenizer's end tokens banned). */
const long = (key: string, maxTokens: number) =>
  fetch(`${stack.apiUrl}/v1/completions`, {
    method: "POST",
    headers: { Authorization: `Bearer ${key}`, "Content-Type": "application/json" },
    body: JSON.stringify({ model: stack.model, prompt: "Once upon a time", max_tokens: maxTokens, temperature: 0, logit_bias: { 257: -100, 259: -100 } }),
  });

const inFlight = async () => {
  const r = await fetch(`${stack.inference.url}/v1/status`, { headers: { Authorization: `Bearer ${stack.runnerToken}` } });
  return ((await r.json()) as { models: Record<string, { in_flight: number }> }).models[stack.model].in_flight;
};

describe("tenants sharing a runner", () => {
  it("bounds a tenant's share of the queue and lets another tenant take the next free row", async () => {
    const a = await tenantWithAdapters(stack, "bursty", 0);
    const b = await tenantWithAdapters(stack, "other", 0);
    const finished: string[] = [];
    const burst = [1, 2, 3].map((i) => long(a.key, 600).then(async (r) => (expect(r.status).toBe(200), await r.json(), finished.push(`a${i}`))));
    await waitFor("the burst to hold its share", async () => ((await inFlight()) === 3 ? true : undefined), 30_000, 10);

    const fourth = await long(a.key, 600);
    expect(fourth.status).toBe(429);
    expect((await fourth.json()).error.code).toBe("rate_limited");

    const other = long(b.key, 8).then(async (r) => (expect(r.status).toBe(200), await r.json(), finished.push("b")));
    await Promise.all([...burst, other]);
    // The first of the burst held the row when b arrived; b ran next, before the rest of the burst.
    expect(finished.indexOf("b")).toBe(1);
  });
});
