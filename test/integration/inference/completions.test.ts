// End to end: /v1/chat/completions and /v1/completions through the real API (SQLite, local blobs) to a real
// runner serving the built-in model, with adapters uploaded by a tenant and fetched by the runner on first use.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startServeStack, tenantWithAdapters, type ServeStack } from "../../../bench/stack.js";
import { waitFor } from "../e2e/harness.js";
import { JsonObjectRecognizer } from "../../../gpu-runner/src/engine/generate/json-grammar.js";

let dir: string;
let stack: ServeStack;
let acme: { id: string; key: string; models: string[] };
let other: { id: string; key: string; models: string[] };

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "tuneserve-inference-"));
  stack = await startServeStack({ dataDir: dir, maxBatch: 2, maxQueue: 1, maxContext: 512 });
  acme = await tenantWithAdapters(stack, "acme", 2, 1);
  other = await tenantWithAdapters(stack, "other", 1, 2);
});
afterAll(async () => {
  await stack?.close();
  await rm(dir, { recursive: true, force: true });
});

const postTo = (s: ServeStack, path: string, key: string, body: unknown, signal?: AbortSignal) =>
  fetch(`${s.apiUrl}${path}`, { method: "POST", headers: { Authorization: `Bearer ${key}`, "Content-Type": "application/json" }, body: JSON.stringify(body), signal });
const post = (path: string, key: string, body: unknown) => postTo(stack, path, key, body);

type Chunk = { id: string; object: string; choices: { delta?: { role?: string; content?: string }; text?: string; finish_reason: string | null }[]; usage?: { prompt_tokens: number; completion_tokens: number; total_tokens: number } | null };

/** Reads an SSE body into its data payloads. */
async function sse(res: Response): Promise<string[]> {
  const text = await res.text();
  return text
    .split("\n\n")
    .filter((b) => b.startsWith("data: "))
    .map((b) => b.slice(6));
}

describe("POST /v1/chat/completions", () => {
  const messages = [{ role: "user", content: "Say hello." }];

  it("answers with the base model and with the tenant's adapter, each with usage", async () => {
    const base = await post("/v1/chat/completions", acme.key, { model: stack.model, messages, max_tokens: 12, temperature: 0 });
    expect(base.status).toBe(200);
    const b = await base.json();
    expect(b.object).toBe("chat.completion");
    expect(b.choices[0].message.role).toBe("assistant");
    expect(b.usage.prompt_tokens).toBeGreaterThan(10); // the ChatML template wraps the message
    expect(b.usage.completion_tokens).toBeGreaterThan(0);
    expect(b.usage.completion_tokens).toBeLessThanOrEqual(12);
    expect(b.usage.total_tokens).toBe(b.usage.prompt_tokens + b.usage.completion_tokens);

    const tuned = await post("/v1/chat/completions", acme.key, { model: acme.models[0], messages, max_tokens: 12, temperature: 0 });
    expect(tuned.status).toBe(200);
    const t = await tuned.json();
    expect(t.model).toBe(acme.models[0]);
    expect(t.usage.prompt_tokens).toBe(b.usage.prompt_tokens);
    // The runner fetched the adapter from the API on first use and now holds it.
    expect(stack.inference.heldAdapters()).toContain(acme.models[0]);
  });

  it("streams chunks that add up to the same answer, then usage and [DONE]", async () => {
    const body = { model: acme.models[1], messages, max_tokens: 10, temperature: 0.8, seed: 7 };
    const whole = await (await post("/v1/chat/completions", acme.key, body)).json();
    const res = await post("/v1/chat/completions", acme.key, { ...body, stream: true, stream_options: { include_usage: true } });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/text\/event-stream/);
    const data = await sse(res);
    expect(data.at(-1)).toBe("[DONE]");
    const chunks = data.slice(0, -1).map((d) => JSON.parse(d) as Chunk);
    expect(chunks[0].choices[0].delta?.role).toBe("assistant");
    expect(chunks.every((ch) => ch.object === "chat.completion.chunk" && ch.id === chunks[0].id)).toBe(true);
    const usage = chunks.at(-1)!;
    expect(usage.choices).toEqual([]);
    expect(usage.usage).toEqual(whole.usage);
    // As OpenAI's: with include_usage every chunk before the usage chunk has a null usage.
    expect(chunks.slice(0, -1).every((ch) => ch.usage === null)).toBe(true);
    const final = chunks.at(-2)!;
    expect(final.choices[0].finish_reason).toBe(whole.choices[0].finish_reason);
    const text = chunks.map((ch) => ch.choices[0]?.delta?.content ?? "").join("");
    expect(text).toBe(whole.choices[0].message.content);
    // Without include_usage (OpenAI's default) every chunk has a choice, and the last one the finish reason.
    const plain = (await sse(await post("/v1/chat/completions", acme.key, { ...body, stream: true }))).slice(0, -1).map((d) => JSON.parse(d) as Chunk);
    expect(plain.every((ch) => ch.choices.length === 1 && ch.usage === undefined)).toBe(true);
    expect(plain.at(-1)!.choices[0].finish_reason).toBe(whole.choices[0].finish_reason);
  });

  it("validates sampling parameters, naming the field", async () => {
    for (const [field, value] of [
      ["temperature", 3],
      ["top_p", 0],
      ["top_k", -1],
      ["max_tokens", 0],
      ["n", 0],
      ["n", 1.5],
      ["seed", 1.5],
      ["stream_options", { include_usage: true }],
      ["stop", ["\udd89"]],
    ] as const) {
      const res = await post("/v1/chat/completions", acme.key, { model: stack.model, messages, [field]: value });
      expect(res.status, field).toBe(400);
      expect((await res.json()).error.param).toBe(field);
    }
    const long = await post("/v1/chat/completions", acme.key, { model: stack.model, messages, max_tokens: 600 });
    expect(long.status).toBe(400);
    expect((await long.json()).error.message).toMatch(/context of 512/);
    // Without max_tokens the default (256) is shortened to what the context leaves, as OpenAI's is; an
    // explicit max_tokens that does not fit is refused (above).
    const fitted = await post("/v1/chat/completions", acme.key, { model: stack.model, messages: [{ role: "user", content: "x".repeat(400) }], temperature: 0, logit_bias: { 257: -100, 259: -100 } });
    expect(fitted.status).toBe(200);
    const { usage, choices } = await fitted.json();
    expect(usage.prompt_tokens + usage.completion_tokens).toBe(512);
    expect(choices[0].finish_reason).toBe("length");
    const longPrompt = await post("/v1/chat/completions", acme.key, { model: stack.model, messages: [{ role: "user", content: "x".repeat(600) }], max_tokens: 2 });
    expect(longPrompt.status).toBe(400);
    // The message names the field the param does: a chat's messages (as the template writes them), a prompt.
    expect((await longPrompt.json()).error).toMatchObject({ param: "messages", message: expect.stringMatching(/^messages: the chat is \d+ tokens \(its messages, and the tools it lists, as the chat template writes them\), and this server's context of 512 must also hold the answer/) });
    const longText = await post("/v1/completions", acme.key, { model: stack.model, prompt: "x".repeat(600), max_tokens: 2 });
    expect(longText.status).toBe(400);
    expect((await longText.json()).error).toMatchObject({ param: "prompt", message: expect.stringMatching(/^prompt: it is \d+ tokens, and this server's context of 512 must also hold the answer/) });
    // Text that cannot fit however it tokenizes is refused before tokenizing (a megabyte would hold the serving thread).
    for (const [path, body, param] of [
      ["/v1/completions", { prompt: "y".repeat(900_000) }, "prompt"],
      ["/v1/chat/completions", { messages: [{ role: "user", content: "y".repeat(450_000) }, { role: "user", content: "z".repeat(450_000) }] }, "messages"],
      [
        "/v1/chat/completions",
        {
          messages: [
            { role: "user", content: "call f" },
            { role: "assistant", content: null, tool_calls: [{ id: "c1", type: "function", function: { name: "f", arguments: JSON.stringify({ x: "y".repeat(900_000) }) } }] },
            { role: "tool", tool_call_id: "c1", content: "done" },
          ],
        },
        "messages",
      ],
    ] as const) {
      const huge = await post(path, acme.key, { model: stack.model, max_tokens: 2, ...body });
      expect(huge.status).toBe(400);
      expect((await huge.json()).error).toMatchObject({ param, message: expect.stringMatching(/^[a-z]+: its \d{6} bytes of text are more tokens than this server's context of 512 holds/) });
    }
  });

  it("renders OpenAI's developer role as the system turn chat templates know", async () => {
    const usage = async (role: string) => (await (await post("/v1/chat/completions", acme.key, { model: stack.model, messages: [{ role, content: "Be brief." }, ...messages], max_tokens: 1, temperature: 0 })).json()).usage;
    expect(await usage("developer")).toEqual(await usage("system"));
  });
  it("reads a special token's string in a message as text, so a user cannot close their turn and forge another", async () => {
    const usage = async (content: string) => (await (await post("/v1/chat/completions", acme.key, { model: stack.model, messages: [{ role: "user", content }], max_tokens: 1, temperature: 0 })).json()).usage.prompt_tokens;
    // The built-in tokenizer is byte-level: as text, the 10 characters are 10 tokens, 9 more than "x".
    expect(await usage("<|im_end|>")).toBe((await usage("x")) + 9);
  });
  it("applies frequency and presence penalties and logit_bias on the runner", async () => {
    const body = { model: stack.model, max_tokens: 24, temperature: 0, messages: [{ role: "user", content: "Tell me more." }] };
    const answer = async (extra: Record<string, unknown>) => {
      const res = await post("/v1/chat/completions", acme.key, { ...body, ...extra });
      expect(res.status).toBe(200);
      return (await res.json()).choices[0].message.content as string;
    };
    const repeats = (s: string) => s.length - new Set(s).size;
    const plain = await answer({});
    const penalized = await answer({ frequency_penalty: 2, presence_penalty: 2 });
    expect(repeats(plain)).toBeGreaterThan(0); // the untrained model repeats itself, so a penalty has work to do
    expect(penalized).not.toBe(plain);
    expect(repeats(penalized)).toBeLessThan(repeats(plain));
    // logit_bias: the first token of the plain answer banned, another one all but forced.
    const first = (await (await post("/v1/chat/completions", acme.key, { ...body, max_tokens: 1, logit_bias: {} })).json()).choices[0].message.content as string;
    expect(first).toMatch(/^[ -~]$/); // one ASCII character: the built-in tokenizer is byte-level, token id = byte
    const banned = await answer({ max_tokens: 1, logit_bias: { [first.charCodeAt(0)]: -100 } });
    expect(banned).not.toBe(first);
    expect(await answer({ max_tokens: 3, logit_bias: { [first.charCodeAt(0)]: -100, ["x".charCodeAt(0)]: 100 } })).toBe("xxx");
  });

  it("takes OpenAI's nulls and text parts, and refuses options it does not implement by name", async () => {
    const greedy = { model: stack.model, max_tokens: 6, temperature: 0 };
    const plain = await (await post("/v1/chat/completions", acme.key, { ...greedy, messages: [{ role: "user", content: "Hi there" }] })).json();
    // null means "not set"; text parts are joined (one part here, so the same prompt).
    const nulls = await post("/v1/chat/completions", acme.key, {
      ...greedy,
      messages: [{ role: "user", content: [{ type: "text", text: "Hi there" }], name: null }],
      top_p: null, top_k: null, seed: null, stop: null, n: null, stream: null, stream_options: null, user: null,
      frequency_penalty: 0, presence_penalty: null, logprobs: false, top_logprobs: 0, tools: [], response_format: { type: "text" },
      // OpenAI's fields with no effect here are accepted and ignored.
      store: true, metadata: { team: "a" }, service_tier: "auto", prompt_cache_key: "k", safety_identifier: "u1", reasoning_effort: "low", verbosity: "low",
    });
    expect(nulls.status).toBe(200);
    expect((await nulls.json()).choices[0].message.content).toBe(plain.choices[0].message.content);

    const refused: [Record<string, unknown>, string, RegExp][] = [
      [{ response_format: { type: "xml" } }, "response_format.type", /Structured Outputs/],
      [{ frequency_penalty: 2.5 }, "frequency_penalty", /<=2/],
      [{ top_logprobs: 2 }, "top_logprobs", /needs logprobs: true/],
      [{ logprobs: true, top_logprobs: 21 }, "top_logprobs", /<=20/],
      [{ logprobs: true, n: 2, max_tokens: 4097 }, "max_tokens", /n × max_tokens \(2 × 4097\) may be at most 8192/],
      [{ logit_bias: { "12": 101 } }, "logit_bias.12", /<=100/],
      [{ logit_bias: { abc: 5 } }, "logit_bias.abc", /token ids/],
      [{ logit_bias: { "012": 5 } }, "logit_bias.012", /token ids/],
      [{ logit_bias: { "999999": 5 } }, "logit_bias", /outside the vocabulary/],
      [{ stop: ["a", "b", "c", "d", "e"] }, "stop", /up to 4 strings/],
      [{ messages: [{ role: "user", content: [{ type: "image_url", image_url: { url: "x" } }] }] }, "messages.0.content.0", /only text parts/],
      [{ messages: [{ role: "function", content: "x" }] }, "messages.0.role", /system, developer, user, assistant or tool/],
      [{ functions: [{ name: "f" }] }, "functions", /deprecated form of tools/],
      // A misspelt option is named rather than silently left out.
      [{ max_token: 5 }, "max_token", /not a field of this request/],
      [{ repetition_penalty: 1.1 }, "repetition_penalty", /not a field/],
      [{ web_search_options: {} }, "web_search_options", /web search is not supported/],
    ];
    for (const [extra, param, message] of refused) {
      const res = await post("/v1/chat/completions", acme.key, { ...greedy, messages: [{ role: "user", content: "Hi" }], ...extra });
      expect(res.status, param).toBe(400);
      expect((await res.json()).error, param).toMatchObject({ code: "invalid_request", param, message: expect.stringMatching(message) });
    }
    for (const [extra, param, message] of [
      [{ prompt: ["one", "two"] }, "prompt", /exactly one string/],
      [{ echo: true, logprobs: 1 }, "echo", /echo with logprobs/],
      [{ best_of: 17 }, "best_of", /<=16/],
      [{ logprobs: 6 }, "logprobs", /<=5/],
      [{ top_logprobs: 2 }, "top_logprobs", /chat option/],
      [{ response_format: { type: "json_object" } }, "response_format", /v1\/chat\/completions/],
      [{ tools: [{ type: "function", function: { name: "f" } }] }, "tools", /v1\/chat\/completions/],
      [{ tool_choice: "auto" }, "tool_choice", /v1\/chat\/completions/],
      [{ temprature: 0.5 }, "temprature", /not a field of this request/],
    ] as const) {
      const res = await post("/v1/completions", acme.key, Object.assign({ ...greedy, prompt: "Hi" }, extra));
      expect(res.status, param).toBe(400);
      expect((await res.json()).error, param).toMatchObject({ param, message: expect.stringMatching(message) });
    }
    // Sent at their defaults, the chat options are accepted here too.
    const defaults = await post("/v1/completions", acme.key, { ...greedy, prompt: "Hi", response_format: { type: "text" }, top_logprobs: 0, tools: [], tool_choice: "none" });
    expect(defaults.status).toBe(200);
  });

  it("reports each token's logprobs and alternatives, the same streamed and whole", async () => {
    type Entry = { token: string; bytes: number[]; logprob: number; top_logprobs: { token: string; bytes: number[]; logprob: number }[] };
    const body = { model: acme.models[0], messages, max_tokens: 10, temperature: 0, logprobs: true, top_logprobs: 3 };
    const whole = await (await post("/v1/chat/completions", acme.key, body)).json();
    const entries = whole.choices[0].logprobs.content as Entry[];
    expect(whole.choices[0].logprobs.refusal).toBeNull();
    expect(entries).toHaveLength(whole.usage.completion_tokens);
    for (const e of entries) {
      expect(e.top_logprobs).toHaveLength(3);
      // Greedy: the token taken is the most likely one.
      expect(e.top_logprobs[0]).toEqual({ token: e.token, bytes: e.bytes, logprob: e.logprob });
      expect(e.logprob).toBeLessThanOrEqual(0);
      expect(e.top_logprobs.reduce((p, t) => p + Math.exp(t.logprob), 0)).toBeLessThanOrEqual(1 + 1e-6);
      expect(e.bytes).toHaveLength(1); // the byte-level tokenizer: one byte per token
    }
    const chunks = (await sse(await post("/v1/chat/completions", acme.key, { ...body, stream: true }))).slice(0, -1).map((d) => JSON.parse(d));
    expect(chunks.flatMap((ch) => ch.choices[0]?.logprobs?.content ?? [])).toEqual(entries);

    // logit_bias comes before logprobs: "x" all but forced has a logprob of about 0.
    const x = "x".charCodeAt(0);
    const forced = await (await post("/v1/chat/completions", acme.key, { ...body, max_tokens: 3, logit_bias: { [x]: 100 } })).json();
    expect(forced.choices[0].message.content).toBe("xxx");
    for (const e of forced.choices[0].logprobs.content as Entry[]) {
      expect(e).toMatchObject({ token: "x", bytes: [x] });
      expect(e.logprob).toBeGreaterThan(-1e-3);
    }
    // Without logprobs: null, as before.
    expect((await (await post("/v1/chat/completions", acme.key, { ...body, logprobs: false, top_logprobs: undefined })).json()).choices[0].logprobs).toBeNull();
  });

  it("answers n choices, choice i as a single answer with seed + i, the prompt billed once", async () => {
    const body = { model: acme.models[0], messages, max_tokens: 6, temperature: 1, seed: 41, logprobs: true };
    const three = await (await post("/v1/chat/completions", acme.key, { ...body, n: 3 })).json();
    expect(three.choices.map((ch: { index: number }) => ch.index)).toEqual([0, 1, 2]);
    const single = async (seed: number) => (await (await post("/v1/chat/completions", acme.key, { ...body, seed })).json()).choices[0];
    for (let i = 0; i < 3; i++) {
      const alone = await single(41 + i);
      expect({ ...three.choices[i], logprobs: null }).toEqual({ ...alone, index: i, logprobs: null });
      // The same tokens; their logprobs agree to float32 rounding (a batch of 3 sums in another order).
      const lp = (ch: { logprobs: { content: { token: string; logprob: number }[] } }) => ch.logprobs.content;
      expect(lp(three.choices[i]).map((t) => t.token)).toEqual(lp(alone).map((t) => t.token));
      lp(three.choices[i]).forEach((t, k) => expect(t.logprob).toBeCloseTo(lp(alone)[k].logprob, 4));
    }
    expect(new Set(three.choices.map((ch: { message: { content: string } }) => ch.message.content)).size).toBeGreaterThan(1);
    const one = await (await post("/v1/chat/completions", acme.key, body)).json();
    expect(three.usage.prompt_tokens).toBe(one.usage.prompt_tokens);
    expect(three.usage.completion_tokens).toBe(three.choices.reduce((n: number, ch: { logprobs: { content: unknown[] } }) => n + ch.logprobs.content.length, 0));

    // Streamed: each choice's chunks carry its index and add up to its text; each choice gets a finish chunk.
    const chunks = (await sse(await post("/v1/chat/completions", acme.key, { ...body, n: 3, stream: true }))).slice(0, -1).map((d) => JSON.parse(d) as Chunk & { choices: { index: number }[] });
    for (let i = 0; i < 3; i++) {
      const mine = chunks.map((ch) => ch.choices[0]).filter((ch) => ch?.index === i);
      expect(mine.map((ch) => ch.delta?.content ?? "").join("")).toBe(three.choices[i].message.content);
      expect(mine.at(-1)?.finish_reason).toBe(three.choices[i].finish_reason);
    }
    // More choices than the API allows, or than this runner's batch and queue can hold (2 + 1), are a 400.
    for (const n of [17, 4]) {
      const res = await post("/v1/chat/completions", acme.key, { ...body, n });
      expect(res.status, `n=${n}`).toBe(400);
      expect((await res.json()).error.param).toBe("n");
    }
  });

  it("samples differently from call to call without a seed, and repeats with one", async () => {
    const body = { model: stack.model, messages, max_tokens: 12, temperature: 1 };
    const answer = async (extra: Record<string, unknown>) => (await (await post("/v1/chat/completions", acme.key, { ...body, ...extra })).json()).choices[0].message.content;
    const unseeded = new Set([await answer({}), await answer({}), await answer({})]);
    expect(unseeded.size).toBeGreaterThan(1);
    expect(await answer({ seed: 3 })).toBe(await answer({ seed: 3 }));
  });

  it("answers one JSON object in JSON mode, ending when it closes", async () => {
    const body = { model: acme.models[0], messages: [{ role: "user", content: "Answer in JSON." }], temperature: 0, response_format: { type: "json_object" } };
    // "}" all but forced: the grammar still opens the object first, then closes it and ends the answer.
    const closed = await (await post("/v1/chat/completions", acme.key, { ...body, max_tokens: 20, logit_bias: { ["}".charCodeAt(0)]: 100 } })).json();
    expect(closed.choices[0].finish_reason).toBe("stop");
    expect(closed.choices[0].message.content).toMatch(/^\s{0,2}\{\}$/); // at most 2 whitespace bytes may lead
    expect(JSON.parse(closed.choices[0].message.content)).toEqual({});
    // Left to the untrained model: whatever it writes is JSON so far, and a finished answer parses.
    for (const stream of [false, true]) {
      const res = await post("/v1/chat/completions", acme.key, { ...body, max_tokens: 40, stream });
      const content = stream
        ? (await sse(res)).slice(0, -1).map((d) => (JSON.parse(d) as Chunk).choices[0]?.delta?.content ?? "").join("")
        : (await res.json()).choices[0].message.content;
      const json = new JsonObjectRecognizer();
      expect(json.push(new TextEncoder().encode(content)), content).toBe(true);
      if (json.done) expect(typeof JSON.parse(content)).toBe("object");
    }
  });

  it("answers an object that follows the json_schema (Structured Outputs), and names what it cannot enforce", async () => {
    const schema = {
      type: "object",
      properties: { answer: { enum: ["yes", "no", "not sure"] }, sure: { type: "boolean" }, note: { type: ["null", "boolean"] }, score: { type: "number" } },
      required: ["answer", "sure"],
      additionalProperties: false,
    };
    // The untrained model would spend its tokens on whitespace (the grammar allows pretty printing): ban it.
    const noSpace = Object.fromEntries([" ", "\t", "\n", "\r"].map((c) => [c.charCodeAt(0), -100]));
    const body = { model: acme.models[0], messages: [{ role: "user", content: "Yes or no?" }], max_tokens: 120, logit_bias: noSpace, response_format: { type: "json_schema", json_schema: { name: "verdict", schema, strict: true } } };
    for (const [temperature, seed] of [[0, 4], [1, 4], [1, 5], [1, 6]]) {
      const res = await (await post("/v1/chat/completions", acme.key, { ...body, temperature, seed })).json();
      expect(res.choices[0].finish_reason, res.choices[0].message.content).toBe("stop");
      const got = JSON.parse(res.choices[0].message.content);
      expect(["yes", "no", "not sure"]).toContain(got.answer);
      if ("score" in got) expect(Number.isFinite(got.score)).toBe(true);
      expect(typeof got.sure).toBe("boolean");
      for (const k of Object.keys(got)) expect(["answer", "sure", "note", "score"]).toContain(k);
    }
    const refused = await post("/v1/chat/completions", acme.key, { ...body, response_format: { type: "json_schema", json_schema: { name: "v", schema: { type: "object", properties: { s: { type: "string", pattern: "^a" } } } } } });
    expect(refused.status).toBe(400);
    expect((await refused.json()).error.message).toMatch(/properties\.s\.pattern: this keyword is not supported/);
    const noSchema = await post("/v1/chat/completions", acme.key, { ...body, response_format: { type: "json_schema" } });
    expect((await noSchema.json()).error.param).toBe("response_format.json_schema");
  });

  it("batches concurrent requests for different adapters without mixing them up", async () => {
    const models = [acme.models[0], stack.model, acme.models[1]];
    const ask = (model: string) => post("/v1/completions", acme.key, { model, prompt: "Once upon a time", max_tokens: 24, temperature: 0 }).then((r) => r.json());
    const alone: string[] = [];
    for (const m of models) alone.push((await ask(m)).choices[0].text);
    // The adapters really differ from each other and from the base model.
    expect(new Set(alone).size).toBe(3);
    const together = await Promise.all(models.map(ask));
    expect(together.map((r) => r.choices[0].text)).toEqual(alone);
  });

  it("answers 404 for another tenant's model and for an unknown one", async () => {
    for (const model of [other.models[0], "ft:tuneserve-micro:nobody::xyz", "no-such-model"]) {
      const res = await post("/v1/chat/completions", acme.key, { model, messages });
      expect(res.status, model).toBe(404);
      expect((await res.json()).error.param).toBe("model");
    }
    // The owner can call it.
    expect((await post("/v1/chat/completions", other.key, { model: other.models[0], messages, max_tokens: 2 })).status).toBe(200);
  });
});

describe("POST /v1/completions", () => {
  it("leaves special tokens out of the text, whole and streamed, while usage and logprobs count them", async () => {
    // <|im_start|> (258, special, not a stop token) and "x" both all but forced; the penalty makes them take turns.
    const x = "x".charCodeAt(0);
    const forcing = { max_tokens: 6, temperature: 0, frequency_penalty: 2, logit_bias: { 258: 100, [x]: 100 }, logprobs: true };
    type Choice = { message?: { content: string }; delta?: { content?: string }; text?: string; logprobs: { content?: { token: string }[]; tokens?: string[] } };
    const textOf = (c: Choice | undefined) => c?.message?.content ?? c?.delta?.content ?? c?.text ?? "";
    for (const [path, body] of [
      ["/v1/chat/completions", { model: stack.model, messages: [{ role: "user", content: "Say hello." }], ...forcing }],
      ["/v1/completions", { model: stack.model, prompt: "The quick brown fox", ...forcing, logprobs: 0 }],
    ] as const) {
      const whole = await (await post(path, acme.key, body)).json();
      const choice: Choice = whole.choices[0];
      const tokens = choice.logprobs.content?.map((e) => e.token) ?? choice.logprobs.tokens!;
      expect(tokens).toHaveLength(6);
      expect(whole.usage.completion_tokens).toBe(6);
      expect(tokens).toContain("<|im_start|>");
      expect(tokens).toContain("x");
      expect(textOf(choice)).toBe("x".repeat(tokens.filter((t) => t === "x").length));
      const chunks = (await sse(await post(path, acme.key, { ...body, stream: true }))).slice(0, -1).map((d) => JSON.parse(d) as { choices: Choice[] });
      expect(chunks.map((ch) => textOf(ch.choices[0])).join("")).toBe(textOf(choice));
    }
  });

  it("completes a prompt, as JSON and as a stream, stopping at a stop string", async () => {
    const body = { model: acme.models[0], prompt: "The quick brown fox", max_tokens: 8, temperature: 0 };
    const res = await post("/v1/completions", acme.key, body);
    expect(res.status).toBe(200);
    const whole = await res.json();
    expect(whole.object).toBe("text_completion");
    expect(whole.usage.prompt_tokens).toBe("The quick brown fox".length); // byte-level tokenizer, no BOS
    const streamed = await sse(await post("/v1/completions", acme.key, { ...body, stream: true }));
    expect(streamed.at(-1)).toBe("[DONE]");
    const chunks = streamed.slice(0, -1).map((d) => JSON.parse(d) as Chunk);
    expect(chunks.map((ch) => ch.choices[0]?.text ?? "").join("")).toBe(whole.choices[0].text);
    // A stop string taken from the greedy answer ends the text just before it.
    const text: string = whole.choices[0].text;
    const chars = [...text];
    const at = chars.findIndex((ch, i) => i > 0 && ch !== "\uFFFD");
    expect(at, `no usable stop character in ${JSON.stringify(text)}`).toBeGreaterThan(0);
    const stop = chars[at];
    const cut = await (await post("/v1/completions", acme.key, { ...body, stop })).json();
    expect(cut.choices[0].text).toBe(text.slice(0, text.indexOf(stop)));
    expect(cut.choices[0].finish_reason).toBe("stop");
  });

  it("answers, of best_of choices, the n with the highest log probability per token, billing them all", async () => {
    const body = { model: stack.model, prompt: "Pick the best:", max_tokens: 6, temperature: 1, seed: 7 };
    // 3: this test runner's batch and queue hold 3 sequences.
    const all = await (await post("/v1/completions", acme.key, { ...body, n: 3, logprobs: 0 })).json();
    const score = (ch: { logprobs: { token_logprobs: number[] } }) => ch.logprobs.token_logprobs.reduce((s, x) => s + x, 0) / ch.logprobs.token_logprobs.length;
    const ranked = [...all.choices].sort((x, y) => score(y) - score(x)).map((ch) => ch.text);
    const best = await (await post("/v1/completions", acme.key, { ...body, n: 2, best_of: 3 })).json();
    expect(best.choices.map((ch: { text: string }) => ch.text)).toEqual(ranked.slice(0, 2));
    expect(best.choices.map((ch: { index: number; logprobs: unknown }) => [ch.index, ch.logprobs])).toEqual([[0, null], [1, null]]);
    expect(best.usage).toEqual(all.usage); // all three were generated and are billed
    for (const [extra, message] of [
      [{ n: 3, best_of: 2 }, /at least n/],
      [{ best_of: 2, stream: true }, /cannot stream/],
    ] as const) {
      const res = await post("/v1/completions", acme.key, { ...body, ...extra });
      expect(res.status).toBe(400);
      expect((await res.json()).error).toMatchObject({ param: "best_of", message: expect.stringMatching(message) });
    }
  });

  it("starts the text with the prompt when asked to echo it, whole and streamed", async () => {
    const body = { model: stack.model, prompt: "Echo me:", max_tokens: 5, temperature: 0 };
    const plain = (await (await post("/v1/completions", acme.key, body)).json()).choices[0].text;
    const echoed = await (await post("/v1/completions", acme.key, { ...body, echo: true })).json();
    expect(echoed.choices[0].text).toBe("Echo me:" + plain);
    const chunks = (await sse(await post("/v1/completions", acme.key, { ...body, echo: true, stream: true }))).slice(0, -1).map((d) => JSON.parse(d) as Chunk);
    expect(chunks[0].choices[0].text).toBe("Echo me:");
    expect(chunks.map((ch) => ch.choices[0]?.text ?? "").join("")).toBe("Echo me:" + plain);
  });

  it("reports logprobs in the legacy shape: tokens, token_logprobs, top_logprobs and text_offset", async () => {
    const body = { model: acme.models[0], prompt: "The quick brown fox", max_tokens: 6, temperature: 0, logprobs: 2 };
    const whole = await (await post("/v1/completions", acme.key, body)).json();
    const lp = whole.choices[0].logprobs;
    expect(lp.tokens).toHaveLength(whole.usage.completion_tokens);
    expect(lp.token_logprobs).toHaveLength(lp.tokens.length);
    lp.top_logprobs.forEach((top: Record<string, number>, i: number) => {
      // The 2 alternatives and, as in OpenAI's legacy API, the sampled token (here the first of them).
      expect(Object.keys(top).length).toBeLessThanOrEqual(3);
      expect(top[lp.tokens[i]]).toBeGreaterThanOrEqual(lp.token_logprobs[i]);
      expect(Math.max(...Object.values(top))).toBe(lp.token_logprobs[i]);
    });
    // Each token's text starts at its offset in the returned text; a special token left out of it (<|im_start|>)
    // or a character's bytes (U+FFFD alone) sit where their text would be, in order, never past the end.
    const text: string = whole.choices[0].text;
    lp.tokens.forEach((t: string, i: number) => {
      expect(lp.text_offset[i]).toBeLessThanOrEqual(text.length);
      if (i > 0) expect(lp.text_offset[i]).toBeGreaterThanOrEqual(lp.text_offset[i - 1]);
      if (!t.includes("\uFFFD") && !/^<\|.+\|>$/.test(t)) expect(text.slice(lp.text_offset[i]).startsWith(t)).toBe(true);
    });
    const chunks = (await sse(await post("/v1/completions", acme.key, { ...body, stream: true }))).slice(0, -1).map((d) => JSON.parse(d));
    const streamed = chunks.map((ch) => ch.choices[0]?.logprobs).filter(Boolean);
    expect(streamed.flatMap((l) => l.tokens)).toEqual(lp.tokens);
    expect(streamed.flatMap((l) => l.text_offset)).toEqual(lp.text_offset);
  });
});

describe("logprobs with a stop string of several tokens", () => {
  it("streams the same tokens, text and text_offset as the whole answer", async () => {
    const body = { model: stack.model, prompt: "The quick brown fox", max_tokens: 24, temperature: 0, logprobs: 0 };
    const free = (await (await post("/v1/completions", acme.key, body)).json()).choices[0];
    const { tokens, text_offset: at }: { tokens: string[]; text_offset: number[] } = free.logprobs;
    const text: string = free.text;
    // Three tokens in a row that each write their own text (no character split over tokens, no special token):
    // the stop string is the first two and the third's first character, so the first two are held back whole,
    // then cut.
    const writes = (i: number) => tokens[i] !== undefined && tokens[i].length > 0 && !tokens[i].includes("\uFFFD") && text.startsWith(tokens[i], at[i]) && at[i + 1] === at[i] + tokens[i].length;
    const i = tokens.findIndex((_, k) => writes(k) && writes(k + 1) && writes(k + 2) && text.indexOf(tokens[k] + tokens[k + 1] + tokens[k + 2][0]) === at[k]);
    expect(i, JSON.stringify(tokens)).toBeGreaterThanOrEqual(0);
    const stop = tokens[i] + tokens[i + 1] + tokens[i + 2][0];
    const whole = (await (await post("/v1/completions", acme.key, { ...body, stop: [stop] })).json()).choices[0];
    expect(whole).toMatchObject({ text: text.slice(0, at[i]), finish_reason: "stop" });
    expect(whole.logprobs.tokens).toEqual(tokens.slice(0, i + 3));
    const chunks = (await sse(await post("/v1/completions", acme.key, { ...body, stop: [stop], stream: true }))).slice(0, -1).map((d) => JSON.parse(d));
    const streamed = chunks.map((ch) => ch.choices[0]?.logprobs).filter(Boolean);
    expect(chunks.map((ch) => ch.choices[0]?.text ?? "").join("")).toBe(whole.text);
    expect(streamed.flatMap((l) => l.tokens)).toEqual(whole.logprobs.tokens);
    expect(streamed.flatMap((l) => l.text_offset)).toEqual(whole.logprobs.text_offset);
  });
});

describe("a stop string that is a special token's text", () => {
  it("stops at that token, though the text leaves it out (stop: [\"<|im_start|>\"]), streamed or not", async () => {
    // The built-in model's byte-level tokenizer: 258 is <|im_start|>, special, and no stop token of a completion.
    const body = { model: stack.model, prompt: "The quick brown fox", max_tokens: 8, temperature: 0, logit_bias: { 258: 100 }, stop: ["<|im_start|>"], logprobs: 0 };
    const whole = await (await post("/v1/completions", acme.key, body)).json();
    expect(whole.choices[0]).toMatchObject({ text: "", finish_reason: "stop", logprobs: { tokens: ["<|im_start|>"], text_offset: [0] } });
    expect(whole.usage.completion_tokens).toBe(1);
    const chunks = (await sse(await post("/v1/completions", acme.key, { ...body, stream: true }))).slice(0, -1).map((d) => JSON.parse(d));
    expect(chunks.map((ch) => ch.choices[0]?.text ?? "").join("")).toBe("");
    expect(chunks.map((ch) => ch.choices[0]?.finish_reason).filter(Boolean)).toEqual(["stop"]);
    expect(chunks.flatMap((ch) => ch.choices[0]?.logprobs?.tokens ?? [])).toEqual(["<|im_start|>"]);
  });

  it("stops where the text with special tokens' text in place holds a stop string with one and more, streamed or not", async () => {
    const body = { model: stack.model, prompt: "The quick brown fox", max_tokens: 8, temperature: 0, logit_bias: { 258: 100 }, stop: ["<|im_start|><|im_start|>"], logprobs: 0 };
    const whole = await (await post("/v1/completions", acme.key, body)).json();
    expect(whole.choices[0]).toMatchObject({ text: "", finish_reason: "stop", logprobs: { tokens: ["<|im_start|>", "<|im_start|>"], text_offset: [0, 0] } });
    expect(whole.usage.completion_tokens).toBe(2);
    const chunks = (await sse(await post("/v1/completions", acme.key, { ...body, stream: true }))).slice(0, -1).map((d) => JSON.parse(d));
    expect(chunks.map((ch) => ch.choices[0]?.text ?? "").join("")).toBe("");
    expect(chunks.map((ch) => ch.choices[0]?.finish_reason).filter(Boolean)).toEqual(["stop"]);
    expect(chunks.flatMap((ch) => ch.choices[0]?.logprobs?.text_offset ?? [])).toEqual([0, 0]);
  });
});

describe("metering and backpressure", () => {
  it("records prompt and completion tokens once per request, visible in /v1/usage", async () => {
    const t = await tenantWithAdapters(stack, "meter", 1, 3);
    const usages: { prompt_tokens: number; completion_tokens: number }[] = [];
    for (let i = 0; i < 3; i++) {
      const r = await (await post("/v1/completions", t.key, { model: t.models[0], prompt: `hi ${i}`, max_tokens: 3 + i, temperature: 0 })).json();
      usages.push(r.usage);
    }
    const streamed = (await sse(await post("/v1/completions", t.key, { model: t.models[0], prompt: "hello", max_tokens: 5, stream: true, stream_options: { include_usage: true } }))).slice(0, -1).map((d) => JSON.parse(d) as Chunk);
    usages.push(streamed.at(-1)!.usage!);
    const res = await fetch(`${stack.apiUrl}/v1/usage?group_by=kind,model`, { headers: { Authorization: `Bearer ${t.key}` } });
    const buckets = (await res.json()).data as { kind: string; model: string; quantity: number }[];
    const sum = (k: "prompt_tokens" | "completion_tokens") => usages.reduce((s, u) => s + u[k], 0);
    expect(buckets.find((b) => b.kind === "prompt_tokens")).toMatchObject({ model: t.models[0], quantity: sum("prompt_tokens") });
    expect(buckets.find((b) => b.kind === "completion_tokens")).toMatchObject({ model: t.models[0], quantity: sum("completion_tokens") });
  });

  it("answers 503 when no runner serves the base model", async () => {
    const admin = await fetch(`${stack.apiUrl}/admin/v1/models`, {
      method: "POST",
      headers: { Authorization: `Bearer ${stack.adminToken}`, "Content-Type": "application/json" },
      body: JSON.stringify({ id: "unserved-micro", source: stack.modelDir }),
    });
    expect(admin.status).toBe(201);
    const res = await post("/v1/completions", acme.key, { model: "unserved-micro", prompt: "x" });
    expect(res.status).toBe(503);
  });
});

// Streams held open while the test looks at the runner: a longer context and a deeper, wider model of the
// built-in family, so that a held stream has seconds of decoding left and outlasts a stalled test process.
describe("a runner holding long streams", () => {
  let longDir: string;
  let long: ServeStack;
  let tenant: { key: string };
  const maxTokens = 2000;
  const stream = { prompt: "x", max_tokens: maxTokens, temperature: 0, stream: true };

  beforeAll(async () => {
    longDir = await mkdtemp(join(tmpdir(), "tuneserve-inference-long-"));
    const sizes = { hidden: 256, layers: 8, heads: 8, kvHeads: 2, headDim: 32, intermediate: 688 };
    long = await startServeStack({ dataDir: longDir, maxBatch: 2, maxQueue: 1, maxContext: 2048, base: { name: "tuneserve-long", sizes } });
    tenant = await tenantWithAdapters(long, "long", 0);
  });
  afterAll(async () => {
    await long?.close();
    await rm(longDir, { recursive: true, force: true });
  });

  const status = async () => {
    const r = await fetch(`${long.inference.url}/v1/status`, { headers: { Authorization: `Bearer ${long.runnerToken}` } });
    return ((await r.json()) as { models: Record<string, { running: number; waiting: number; rowSteps: number }> }).models[long.model];
  };
  const runnerHas = (running: number, waiting: number) =>
    waitFor(`the runner to have ${running} running and ${waiting} waiting`, async () => {
      const s = await status();
      return s.running === running && s.waiting === waiting ? s : undefined;
    }, 30_000, 20);

  it("answers 429 with Retry-After when the runner's batch and queue are full", async () => {
    await runnerHas(0, 0);
    // maxBatch 2 + maxQueue 1: three held streams fill it (the third one's answer waits for a slot).
    const held = [0, 1, 2].map(() => new AbortController());
    const streams = held.map((ac) => postTo(long, "/v1/completions", tenant.key, { model: long.model, ...stream }, ac.signal).catch(() => undefined));
    try {
      await runnerHas(2, 1);
      const results = await Promise.all(
        [0, 1, 2].map(() => postTo(long, "/v1/completions", tenant.key, { model: long.model, prompt: "x", max_tokens: 400, temperature: 0 })),
      );
      expect(results.map((r) => r.status)).toEqual([429, 429, 429]);
      for (const r of results) {
        expect(r.headers.get("retry-after")).toBe("1");
        expect((await r.json()).error.code).toBe("rate_limited");
      }
    } finally {
      for (const ac of held) ac.abort();
    }
    // The two it ran were answered (their first tokens went out); the queued one was dropped waiting.
    expect((await Promise.all(streams)).filter((r) => r?.status === 200).length).toBeGreaterThanOrEqual(2);
    await runnerHas(0, 0);
  });

  it("stops generating when a streaming client goes away", async () => {
    await runnerHas(0, 0);
    // A stalled test process can receive the whole stream in its first read, or cancel only after the sequence
    // ran to its end (1999 decode steps); such a try shows no cancel, so it is tried again. A runner that never
    // stops fails every try.
    let steps: number | undefined;
    for (let attempt = 1; steps === undefined; attempt++) {
      if (attempt > 3) throw new Error("every stream ran to its end although its client went away after the first chunk");
      const before = (await status()).rowSteps;
      const res = await postTo(long, "/v1/completions", tenant.key, { model: long.model, ...stream });
      expect(res.status).toBe(200);
      const reader = res.body!.getReader();
      const { value } = await reader.read();
      await reader.cancel();
      const decoded = (await runnerHas(0, 0)).rowSteps - before;
      if (!new TextDecoder().decode(value).includes("[DONE]") && decoded < maxTokens - 1) steps = decoded;
    }
    // Decoded rows since: far fewer than the 1999 steps the sequence would have run to the end.
    expect(steps).toBeLessThan(1500);
  });
});
