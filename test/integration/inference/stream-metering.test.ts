// Metering of streamed completions through the real API and runner: a stream the client abandons is billed
// for its prompt and the tokens generated so far, a finished one for its reported usage, each exactly once.
// Runner failures mid-stream come from a stand-in runner (a plain HTTP server speaking the SSE protocol),
// because the real one cannot be made to fail after some tokens on demand (nor be made to answer like an older one).
import { mkdtemp, rm } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { GenerateEvent } from "../../../api/src/inference/runner-protocol.js";
import { startServeStack, tenantWithAdapters, type ServeStack } from "../../../bench/stack.js";
import { waitFor } from "../e2e/harness.js";
import { registerStandInRunner } from "../../helpers/stand-in-runner.js";

let dir: string;
let stack: ServeStack;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "tuneserve-stream-metering-"));
  stack = await startServeStack({ dataDir: dir, maxBatch: 2, maxContext: 2048 });
});
afterAll(async () => {
  await stack?.close();
  await rm(dir, { recursive: true, force: true });
});

const post = (path: string, key: string, body: unknown, signal?: AbortSignal) =>
  fetch(`${stack.apiUrl}${path}`, { method: "POST", headers: { Authorization: `Bearer ${key}`, "Content-Type": "application/json" }, body: JSON.stringify(body), signal });

type Billed = { prompt_tokens?: number; completion_tokens?: number };

/** The tenant's inference usage by kind, as GET /v1/usage reports it. */
async function billed(key: string): Promise<Billed> {
  const res = await fetch(`${stack.apiUrl}/v1/usage?group_by=kind`, { headers: { Authorization: `Bearer ${key}` } });
  expect(res.status).toBe(200);
  const out: Billed = {};
  for (const b of (await res.json()).data as { kind: keyof Billed; quantity: number }[]) out[b.kind] = (out[b.kind] ?? 0) + b.quantity;
  return out;
}

/** Polls until both kinds are billed (the API meters an abandoned stream in the background). */
const billedOnce = (key: string) => waitFor("the stream's usage to be billed", async () => {
  const b = await billed(key);
  return b.prompt_tokens !== undefined && b.completion_tokens !== undefined ? b : undefined;
}, 30_000, 50);

/** Reads SSE data payloads from `reader` until `enough` of them arrived; throws if the stream ends first. */
async function readChunks(reader: ReadableStreamDefaultReader<Uint8Array>, enough: number): Promise<string[]> {
  const decoder = new TextDecoder();
  let buf = "";
  const data: string[] = [];
  while (data.length < enough) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`the stream ended after ${data.length} chunks: ${data.join(" | ")}`);
    buf += decoder.decode(value, { stream: true });
    let cut: number;
    while ((cut = buf.indexOf("\n\n")) >= 0) {
      data.push(buf.slice(0, cut).replace(/^data: /, ""));
      buf = buf.slice(cut + 2);
    }
  }
  return data;
}

describe("streamed completions are metered exactly once", () => {
  it("bills the prompt and the tokens generated so far when the client aborts mid-stream", async () => {
    const prompt = "Once upon a time";
    const maxTokens = 2000;
    // A stalled test process can receive a whole stream in its first read; such a try is not an abandonment,
    // so a fresh tenant tries again (its usage is then that of a finished stream, which another test checks).
    let t: Awaited<ReturnType<typeof tenantWithAdapters>> | undefined;
    let seen: string[] | undefined;
    for (let attempt = 1; !seen; attempt++) {
      t = await tenantWithAdapters(stack, `abandons-${attempt}`, 0);
      const ac = new AbortController();
      const res = await post("/v1/completions", t.key, { model: stack.model, prompt, max_tokens: maxTokens, temperature: 0, stream: true }, ac.signal);
      expect(res.status).toBe(200);
      const chunks = await readChunks(res.body!.getReader(), 3);
      ac.abort();
      if (!chunks.includes("[DONE]")) seen = chunks;
      else if (attempt === 3) throw new Error("every stream finished before it could be abandoned");
    }
    if (!t) throw new Error("unreachable");

    const b = await billedOnce(t.key);
    expect(b.prompt_tokens).toBe(prompt.length); // byte-level tokenizer, no BOS
    // Every chunk the client saw carried at least one generated token.
    expect(b.completion_tokens).toBeGreaterThanOrEqual(seen.length);
    expect(b.completion_tokens).toBeLessThanOrEqual(maxTokens);

    // The runner dropped the sequence; nothing was billed again since (no late done, no second event).
    await waitFor("the runner to drop the sequence", async () => {
      const r = await fetch(`${stack.inference.url}/v1/status`, { headers: { Authorization: `Bearer ${stack.runnerToken}` } });
      const m = ((await r.json()) as { models: Record<string, { running: number; waiting: number }> }).models[stack.model];
      return m.running === 0 && m.waiting === 0 ? true : undefined;
    }, 30_000, 50);
    expect(await billed(t.key)).toEqual(b);
  });

  it("stops a JSON generation on the runner whose caller went away (the API gave up on the runner)", async () => {
    const status = async () => {
      const r = await fetch(`${stack.inference.url}/v1/status`, { headers: { Authorization: `Bearer ${stack.runnerToken}` } });
      return ((await r.json()) as { models: Record<string, { running: number; waiting: number; steps: number }> }).models[stack.model];
    };
    const before = (await status()).steps;
    const ac = new AbortController();
    const res = fetch(`${stack.inference.url}/v1/generate`, {
      method: "POST",
      headers: { Authorization: `Bearer ${stack.runnerToken}`, "Content-Type": "application/json" },
      // EOS banned (the built-in tokenizer's ids), so the answer runs to max_tokens unless cancelled.
      body: JSON.stringify({ request_id: "req_gone", model: stack.model, input: { prompt: "Once upon a time" }, max_tokens: 2000, temperature: 0, logit_bias: { 257: -100, 259: -100 } }),
      signal: ac.signal,
    }).catch(() => null);
    await waitFor("the generation to get going", async () => ((await status()).steps - before >= 10 ? true : undefined), 30_000, 10);
    ac.abort();
    expect(await res).toBeNull();
    const after = await waitFor("the runner to drop the sequence", async () => {
      const m = await status();
      return m.running === 0 && m.waiting === 0 ? m : undefined;
    }, 30_000, 50);
    expect(after.steps - before).toBeLessThan(1999);
  });

  it("bills a stream that runs to its end once, with the usage it reported", async () => {
    const t = await tenantWithAdapters(stack, "finishes", 0);
    const res = await post("/v1/chat/completions", t.key, { model: stack.model, messages: [{ role: "user", content: "Say hello." }], max_tokens: 8, temperature: 0, stream: true, stream_options: { include_usage: true } });
    expect(res.status).toBe(200);
    const data = (await res.text()).split("\n\n").filter((x) => x.startsWith("data: ")).map((x) => x.slice(6));
    expect(data.at(-1)).toBe("[DONE]");
    const reported = (JSON.parse(data.at(-2)!) as { usage: { prompt_tokens: number; completion_tokens: number } }).usage;
    expect(reported.completion_tokens).toBeGreaterThan(0);
    // Metered before the usage chunk went out: no polling needed.
    expect(await billed(t.key)).toEqual({ prompt_tokens: reported.prompt_tokens, completion_tokens: reported.completion_tokens });
  });
});

describe("a stream the runner cuts short", () => {
  const model = "cutoff-micro";
  const promptTokens = 7;
  let runner: Server;

  // Three tokens and a held-back tail (token null: text, not a token), then an error event or a dropped connection.
  const events: GenerateEvent[] = [
    { type: "delta", text: "a", token: 97, prompt_tokens: promptTokens },
    { type: "delta", text: "b", token: 98 },
    { type: "delta", text: "c", token: 99 },
    { type: "delta", text: "!", token: null },
  ];

  beforeAll(async () => {
    runner = createServer((req, res) => {
      let body = "";
      req.on("data", (d) => (body += d));
      req.on("end", () => {
        const request = JSON.parse(body) as { input: { prompt?: string }; stream: boolean };
        // A whole answer without the logprobs asked for: a runner that predates them.
        if (!request.stream) {
          res.writeHead(200, { "Content-Type": "application/json" });
          return void res.end(JSON.stringify({ text: "abc", tokens: [97, 98, 99], finish_reason: "length", usage: { prompt_tokens: promptTokens, completion_tokens: 3 } }));
        }
        const drop = request.input.prompt === "drop";
        res.writeHead(200, { "Content-Type": "text/event-stream" });
        const sent = events.map((e) => `data: ${JSON.stringify(e)}\n\n`).join("");
        // Dropped: the connection closes once the deltas are out, with neither done nor error.
        if (drop) return void res.write(sent, () => res.socket?.destroy());
        res.write(sent);
        res.end(`data: ${JSON.stringify({ type: "error", message: "the device fell over" } satisfies GenerateEvent)}\n\n`);
      });
    });
    await new Promise<void>((ok) => runner.listen(0, "127.0.0.1", ok));
    await registerStandInRunner(stack, model, "cutoff-runner", `http://127.0.0.1:${(runner.address() as AddressInfo).port}`);
  });
  afterAll(async () => {
    runner?.closeAllConnections();
    await new Promise<void>((ok) => (runner ? runner.close(() => ok()) : ok()));
  });

  it("bills the prompt and the tokens sent when the runner reports an error", async () => {
    const t = await tenantWithAdapters(stack, "errored", 0);
    const res = await post("/v1/completions", t.key, { model, prompt: "error", max_tokens: 16, stream: true });
    expect(res.status).toBe(200);
    const text = await res.text();
    expect(text).toContain("generation_failed");
    expect(text).not.toContain("[DONE]");
    expect(await billedOnce(t.key)).toEqual({ prompt_tokens: promptTokens, completion_tokens: 3 });
  });

  it("bills nothing for a whole answer that lacks what was asked (the runner predates it), and tells clients not to retry", async () => {
    const t = await tenantWithAdapters(stack, "skewed", 0);
    const res = await post("/v1/completions", t.key, { model, prompt: "hi", max_tokens: 3, logprobs: 1 });
    expect(res.status).toBe(500);
    expect(res.headers.get("x-should-retry")).toBe("false");
    expect((await res.json()).error.message).toMatch(/sent no logprobs: it predates them; upgrade the runners/);
    expect(await billed(t.key)).toEqual({});
  });

  it("bills the prompt and the tokens sent when the runner's connection drops", async () => {
    const t = await tenantWithAdapters(stack, "dropped", 0);
    const res = await post("/v1/completions", t.key, { model, prompt: "drop", max_tokens: 16, stream: true });
    expect(res.status).toBe(200);
    await res.text().catch(() => "");
    expect(await billedOnce(t.key)).toEqual({ prompt_tokens: promptTokens, completion_tokens: 3 });
  });
});
