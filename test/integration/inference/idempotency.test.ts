// Idempotency-Key on completions, through the real API and runner: a retry of a finished request is answered
// from the stored result and billed nothing more; a retry while it runs gets 409; a retry after a cut-short
// stream runs again and the key is billed for its largest attempt, not the sum; keys are per tenant.
import { createHash } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startServeStack, tenantWithAdapters, type ServeStack } from "../../../bench/stack.js";
import { waitFor } from "../e2e/harness.js";

let dir: string;
let stack: ServeStack;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "tuneserve-idempotency-"));
  // A long context, so a stream the 409 test holds open has 2000 tokens to run and outlasts a short stall.
  stack = await startServeStack({ dataDir: dir, maxBatch: 2, maxContext: 2048 });
});
afterAll(async () => {
  await stack?.close();
  await rm(dir, { recursive: true, force: true });
});

const post = (path: string, key: string, body: unknown, idem?: string, signal?: AbortSignal) =>
  fetch(`${stack.apiUrl}${path}`, {
    method: "POST",
    headers: { Authorization: `Bearer ${key}`, "Content-Type": "application/json", ...(idem ? { "Idempotency-Key": idem } : {}) },
    body: JSON.stringify(body),
    signal,
  });

type Billed = { prompt_tokens?: number; completion_tokens?: number };

async function billed(key: string): Promise<Billed> {
  const res = await fetch(`${stack.apiUrl}/v1/usage?group_by=kind`, { headers: { Authorization: `Bearer ${key}` } });
  const out: Billed = {};
  for (const b of (await res.json()).data as { kind: keyof Billed; quantity: number }[]) out[b.kind] = (out[b.kind] ?? 0) + b.quantity;
  return out;
}

/** The SSE data payloads of a finished stream. */
const sseData = (text: string) => text.split("\n\n").filter((x) => x.startsWith("data: ")).map((x) => x.slice(6));
/** The text a client assembles from a chat stream's deltas. */
const streamedText = (data: string[]) =>
  data.filter((d) => d !== "[DONE]").map((d) => (JSON.parse(d) as { choices: { delta?: { content?: string } }[] }).choices[0]?.delta?.content ?? "").join("");

const chat = (content: string, extra: Record<string, unknown> = {}) => ({ model: stack.model, messages: [{ role: "user", content }], max_tokens: 12, temperature: 0.9, seed: 5, ...extra });

describe("Idempotency-Key", () => {
  it("answers a retry of a finished request from the stored result, billed once", async () => {
    const t = await tenantWithAdapters(stack, "idem-replay", 0);
    const first = await post("/v1/chat/completions", t.key, chat("Hello"), "key-1");
    expect(first.status).toBe(200);
    expect(first.headers.get("Idempotent-Replayed")).toBeNull();
    const body = await first.json();
    const once = await billed(t.key);
    expect(once).toEqual({ prompt_tokens: body.usage.prompt_tokens, completion_tokens: body.usage.completion_tokens });

    const again = await post("/v1/chat/completions", t.key, chat("Hello"), "key-1");
    expect(again.status).toBe(200);
    expect(again.headers.get("Idempotent-Replayed")).toBe("true");
    expect(await again.json()).toEqual(body);
    expect(await billed(t.key)).toEqual(once);

    // Without the key the same request is a new one, billed again.
    expect((await post("/v1/chat/completions", t.key, chat("Hello"))).status).toBe(200);
    expect((await billed(t.key)).prompt_tokens).toBe(2 * body.usage.prompt_tokens);
  });

  it("samples a keyed request without a seed with the key's own seed, so a retry that runs again answers alike", async () => {
    const t = await tenantWithAdapters(stack, "idem-seed", 0);
    const body = { model: stack.model, prompt: "Once upon", max_tokens: 16, temperature: 1 };
    const keyed = await (await post("/v1/completions", t.key, body, "key-s")).json();
    const seed = Number.parseInt(createHash("sha256").update(`${t.id}\nkey-s`).digest("hex").slice(0, 8), 16);
    const seeded = await (await post("/v1/completions", t.key, { ...body, seed })).json();
    expect(seeded.choices[0].text).toBe(keyed.choices[0].text);
  });

  it("refuses a key reused for another request, and a malformed key", async () => {
    const t = await tenantWithAdapters(stack, "idem-reuse", 0);
    expect((await post("/v1/chat/completions", t.key, chat("One"), "key-2")).status).toBe(200);
    const other = await post("/v1/chat/completions", t.key, chat("Two"), "key-2");
    expect(other.status).toBe(400);
    expect((await other.json()).error).toMatchObject({ code: "invalid_request", param: "Idempotency-Key", message: expect.stringMatching(/different request/) });
    const long = await post("/v1/chat/completions", t.key, chat("One"), "k".repeat(256));
    expect(long.status).toBe(400);
    expect((await long.json()).error.param).toBe("Idempotency-Key");
  });

  it("keeps keys per tenant", async () => {
    const a = await tenantWithAdapters(stack, "idem-a", 0);
    const b = await tenantWithAdapters(stack, "idem-b", 0);
    expect((await post("/v1/completions", a.key, { model: stack.model, prompt: "A says", max_tokens: 4 }, "shared")).status).toBe(200);
    // The same key from another tenant, with another request: its own key, not a reuse, not a replay.
    const res = await post("/v1/completions", b.key, { model: stack.model, prompt: "B says", max_tokens: 4 }, "shared");
    expect(res.status).toBe(200);
    expect(res.headers.get("Idempotent-Replayed")).toBeNull();
    expect((await billed(b.key)).prompt_tokens).toBe("B says".length);
  });

  it("replays a finished stream as one chunk with the same text", async () => {
    const t = await tenantWithAdapters(stack, "idem-stream", 0);
    const req = chat("Stream it", { stream: true, stream_options: { include_usage: true } });
    const first = sseData(await (await post("/v1/chat/completions", t.key, req, "key-s")).text());
    expect(first.at(-1)).toBe("[DONE]");
    const once = await billed(t.key);
    const replay = await post("/v1/chat/completions", t.key, req, "key-s");
    expect(replay.headers.get("Idempotent-Replayed")).toBe("true");
    const second = sseData(await replay.text());
    expect(streamedText(second)).toBe(streamedText(first));
    expect(JSON.parse(second.at(-2)!).usage).toEqual(JSON.parse(first.at(-2)!).usage);
    // Every chunk before the usage chunk has a null usage (include_usage), replayed as sent.
    for (const data of [first, second]) expect(data.slice(0, -2).every((d) => JSON.parse(d).usage === null)).toBe(true);
    expect(await billed(t.key)).toEqual(once);
  });

  it("replays logprobs with the answer, whole and streamed; a request differing only in logprobs is another request", async () => {
    const t = await tenantWithAdapters(stack, "idem-logprobs", 0);
    const req = chat("Odds", { logprobs: true, top_logprobs: 2 });
    const first = await (await post("/v1/chat/completions", t.key, req, "key-lp")).json();
    expect(first.choices[0].logprobs.content.length).toBe(first.usage.completion_tokens);
    const again = await post("/v1/chat/completions", t.key, req, "key-lp");
    expect(again.headers.get("Idempotent-Replayed")).toBe("true");
    expect((await again.json()).choices[0].logprobs).toEqual(first.choices[0].logprobs);
    expect((await post("/v1/chat/completions", t.key, chat("Odds"), "key-lp")).status).toBe(400); // another request under the same key

    const streamReq = { ...req, stream: true };
    const streamed = sseData(await (await post("/v1/chat/completions", t.key, streamReq, "key-lp-s")).text());
    const replayed = sseData(await (await post("/v1/chat/completions", t.key, streamReq, "key-lp-s")).text());
    const content = (data: string[]) => data.filter((d) => d !== "[DONE]").flatMap((d) => JSON.parse(d).choices[0]?.logprobs?.content ?? []);
    expect(content(replayed)).toEqual(content(streamed));
    expect(content(replayed).length).toBeGreaterThan(0);
  });

  it("replays every choice of an n > 1 request, whole and streamed", async () => {
    const t = await tenantWithAdapters(stack, "idem-n", 0);
    const req = chat("Pick", { n: 2 });
    const first = await (await post("/v1/chat/completions", t.key, req, "key-n")).json();
    expect(first.choices).toHaveLength(2);
    expect((await (await post("/v1/chat/completions", t.key, req, "key-n")).json()).choices).toEqual(first.choices);

    const streamReq = { ...req, stream: true };
    const texts = (data: string[]) => {
      const out = ["", ""];
      for (const d of data.filter((x) => x !== "[DONE]")) {
        const ch = JSON.parse(d).choices[0];
        if (ch) out[ch.index] += ch.delta?.content ?? "";
      }
      return out;
    };
    const streamed = texts(sseData(await (await post("/v1/chat/completions", t.key, streamReq, "key-n-s")).text()));
    const replay = await post("/v1/chat/completions", t.key, streamReq, "key-n-s");
    expect(replay.headers.get("Idempotent-Replayed")).toBe("true");
    expect(texts(sseData(await replay.text()))).toEqual(streamed);
  });

  it("answers 409 while the first attempt runs; after a cut-short stream a retry runs again, billed up to its largest attempt", async () => {
    // Greedy on the built-in model, this prompt runs to max_tokens without an end-of-text token.
    const prompt = "Tell me a long story";
    const maxTokens = 2000;
    const req = { model: stack.model, prompt, max_tokens: maxTokens, temperature: 0, stream: true, stream_options: { include_usage: true } };
    // A stalled test process can find the first attempt finished: its first read holds the whole stream, the
    // second POST is a replay, or the abort comes after the end. Such a try shows neither a 409 nor a cut, so a
    // fresh tenant tries again.
    let t: Awaited<ReturnType<typeof tenantWithAdapters>> | undefined;
    let partial: Billed | undefined;
    for (let attempt = 1; !partial; attempt++) {
      if (attempt > 3) throw new Error("every first attempt finished before it could be cut");
      t = await tenantWithAdapters(stack, `idem-cut-${attempt}`, 0);
      const ac = new AbortController();
      const first = await post("/v1/completions", t.key, req, "key-c", ac.signal);
      expect(first.status).toBe(200);
      const { value } = await first.body!.getReader().read(); // the stream has started: the key is held

      const busy = await post("/v1/completions", t.key, req, "key-c");
      ac.abort(); // cut at once: the checks below take time the stream could use to finish
      if (new TextDecoder().decode(value).includes("[DONE]") || busy.status === 200) {
        await busy.body?.cancel();
        continue;
      }
      expect(busy.status).toBe(409);
      expect(busy.headers.get("Retry-After")).toBe("1");
      expect((await busy.json()).error.param).toBe("Idempotency-Key");

      const key = t.key;
      const b = await waitFor("the cut stream to be billed", async () => {
        const got = await billed(key);
        return got.completion_tokens !== undefined ? got : undefined;
      }, 30_000, 50);
      if (b.completion_tokens !== maxTokens) partial = b;
    }
    if (!t) throw new Error("unreachable");
    expect(partial.prompt_tokens).toBe(prompt.length);
    expect(partial.completion_tokens).toBeLessThan(maxTokens);

    // A client retrying after the dropped connection (Retry-After until the cut attempt has settled).
    const retry = await waitFor("the retry to be let through", async () => {
      const res = await post("/v1/completions", t.key, req, "key-c");
      if (res.status === 409) return void (await res.body?.cancel());
      return res;
    }, 30_000, 100);
    expect(retry.status).toBe(200);
    const data = sseData(await retry.text());
    expect(data.at(-1)).toBe("[DONE]");
    const reported = JSON.parse(data.at(-2)!).usage as { prompt_tokens: number; completion_tokens: number };
    // Greedy: the cut attempt generated a prefix of the finished one.
    expect(reported.completion_tokens).toBeGreaterThan(partial.completion_tokens!);
    // The prompt once; completion tokens those of the longer (finished) attempt, not both added up.
    expect(await billed(t.key)).toEqual({ prompt_tokens: prompt.length, completion_tokens: reported.completion_tokens });
  });
});
