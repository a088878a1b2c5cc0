// The official `openai` npm client against the real API and runner: chat and text completions (echoed, streamed), streaming with
// usage, the model list, errors as the client's typed errors, a retried call with an Idempotency-Key, and a
// fine-tuning job created, filtered by metadata, paused, resumed and cancelled.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import OpenAI from "openai";
import { afterAll, beforeAll, expect, it } from "vitest";
import { startServeStack, tenantWithAdapters, type ServeStack } from "../../../bench/stack.js";

let dir: string;
let stack: ServeStack;
let client: OpenAI;
let adapterModel: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "tuneserve-openai-client-"));
  stack = await startServeStack({ dataDir: dir, maxBatch: 2, maxContext: 1024 });
  const t = await tenantWithAdapters(stack, "sdk", 1, 3);
  adapterModel = t.models[0];
  client = new OpenAI({ baseURL: `${stack.apiUrl}/v1`, apiKey: t.key, maxRetries: 0 });
});
afterAll(async () => {
  await stack?.close();
  await rm(dir, { recursive: true, force: true });
});

it("chats with an adapter, streamed and not, with the same greedy text and usage", async () => {
  const body = { model: adapterModel, messages: [{ role: "user" as const, content: "Say hello." }], max_tokens: 10, temperature: 0 };
  const r = await client.chat.completions.create(body);
  expect(r.object).toBe("chat.completion");
  expect(r.choices[0].message.role).toBe("assistant");
  // Required (string | null) in the client's ChatCompletionMessage: this server never refuses in words.
  expect(r.choices[0].message.refusal).toBeNull();
  expect(Object.keys(r.choices[0].message)).toEqual(["role", "content", "refusal"]);
  expect(r.usage!.completion_tokens).toBeGreaterThan(0);

  const stream = await client.chat.completions.create({ ...body, stream: true, stream_options: { include_usage: true } });
  let text = "";
  let usage: OpenAI.CompletionUsage | undefined;
  for await (const chunk of stream) {
    text += chunk.choices[0]?.delta?.content ?? "";
    usage = chunk.usage ?? usage;
  }
  expect(text).toBe(r.choices[0].message.content);
  expect(usage).toEqual(r.usage);
});

it("runs text completions, lists models and maps errors onto the client's error classes", async () => {
  const c = await client.completions.create({ model: stack.model, prompt: "Hi", max_tokens: 3, temperature: 0, logprobs: 1 });
  expect(c.object).toBe("text_completion");
  expect(c.choices[0].logprobs?.token_logprobs).toHaveLength(c.usage!.completion_tokens);
  const streamed = await client.completions.create({ model: stack.model, prompt: "Hi", max_tokens: 3, temperature: 0, echo: true, stream: true, stream_options: { include_usage: true } });
  const chunks = [];
  for await (const chunk of streamed) chunks.push(chunk);
  expect(chunks.map((k) => k.choices[0]?.text ?? "").join("")).toBe(`Hi${(await client.completions.create({ model: stack.model, prompt: "Hi", max_tokens: 3, temperature: 0 })).choices[0].text}`);
  expect(chunks.at(-1)).toMatchObject({ object: "text_completion", choices: [], usage: { prompt_tokens: expect.any(Number), completion_tokens: expect.any(Number) } });
  await expect(client.completions.create({ model: stack.model, prompt: "Hi", suffix: "!" })).rejects.toMatchObject({ status: 400, param: "suffix" });
  const lp = await client.chat.completions.create({ model: stack.model, messages: [{ role: "user", content: "Hi" }], max_tokens: 3, temperature: 0, logprobs: true, top_logprobs: 2, n: 2 });
  expect(lp.choices.map((ch) => ch.index)).toEqual([0, 1]);
  const json = await client.chat.completions.create({ model: stack.model, messages: [{ role: "user", content: "JSON" }], max_tokens: 8, temperature: 0, response_format: { type: "json_object" }, logit_bias: { ["}".charCodeAt(0)]: 100 } });
  expect(JSON.parse(json.choices[0].message.content!)).toEqual({});
  const noSpace = Object.fromEntries([" ", "\t", "\n", "\r"].map((c) => [c.charCodeAt(0), -100]));
  const schema = { type: "object", properties: { answer: { enum: ["yes", "no"] } }, required: ["answer"], additionalProperties: false };
  const structured = await client.chat.completions.create({ model: stack.model, messages: [{ role: "user", content: "?" }], max_tokens: 40, temperature: 0, logit_bias: noSpace, response_format: { type: "json_schema", json_schema: { name: "verdict", schema, strict: true } } });
  expect(["yes", "no"]).toContain(JSON.parse(structured.choices[0].message.content!).answer);
  expect(lp.choices.flatMap((ch) => ch.logprobs?.content?.map((t) => t.top_logprobs.length) ?? [])).toEqual(Array(lp.usage!.completion_tokens).fill(2));
  const ids = [];
  for await (const m of client.models.list()) ids.push(m.id);
  expect(ids).toEqual(expect.arrayContaining([stack.model, adapterModel]));
  await expect(client.chat.completions.create({ model: "ft:nobody", messages: [{ role: "user", content: "x" }] })).rejects.toBeInstanceOf(OpenAI.NotFoundError);
  await expect(client.chat.completions.create({ model: stack.model, messages: [{ role: "user", content: "x" }], temperature: 9 })).rejects.toBeInstanceOf(OpenAI.BadRequestError);
});

it("gets a forced tool call whole, from the stream helper, and parsed", async () => {
  const noSpace = Object.fromEntries([" ", "\t", "\n", "\r"].map((c) => [c.charCodeAt(0), -100]));
  const parameters = { type: "object", properties: { city: { enum: ["Oslo", "Paris"] }, celsius: { type: "boolean" } }, required: ["city", "celsius"], additionalProperties: false };
  const body = {
    model: adapterModel,
    messages: [{ role: "user" as const, content: "Weather?" }],
    tools: [{ type: "function" as const, function: { name: "get_weather", parameters, strict: true } }],
    tool_choice: "required" as const,
    max_tokens: 40,
    temperature: 0,
    logit_bias: noSpace,
  };
  const r = await client.chat.completions.create(body);
  const call = r.choices[0].message.tool_calls![0];
  expect(r.choices[0].message).toMatchObject({ role: "assistant", content: null, refusal: null });
  expect(call.type === "function" && call.function.name).toBe("get_weather");
  const streamed = await client.chat.completions.stream(body).finalChatCompletion();
  // The helper also parses a strict tool's arguments.
  expect(streamed.choices[0].message.tool_calls).toMatchObject([{ type: "function", function: { name: "get_weather", arguments: call.type === "function" ? call.function.arguments : "" } }]);
  expect(streamed.choices[0].finish_reason).toBe("tool_calls");
  const parsed = await client.chat.completions.parse(body);
  const args = parsed.choices[0].message.tool_calls![0];
  expect(args.type === "function" && args.function.parsed_arguments).toEqual(JSON.parse(call.type === "function" ? call.function.arguments : ""));
});

it("replays a call retried with the same Idempotency-Key", async () => {
  const body = { model: stack.model, messages: [{ role: "user" as const, content: "Once more" }], max_tokens: 8, temperature: 1, seed: 9 };
  const opts = { headers: { "Idempotency-Key": "sdk-retry-1" } };
  const first = await client.chat.completions.create(body, opts).withResponse();
  const again = await client.chat.completions.create(body, opts).withResponse();
  expect(again.response.headers.get("idempotent-replayed")).toBe("true");
  expect(again.data).toEqual(first.data);
});

it("creates, filters, pauses, resumes and cancels a fine-tuning job through the client", async () => {
  const lines = Array.from({ length: 4 }, (_, i) => JSON.stringify({ messages: [{ role: "user", content: `q${i}` }, { role: "assistant", content: `a${i}` }] })).join("\n");
  const file = await client.files.create({ file: await OpenAI.toFile(Buffer.from(lines), "train.jsonl"), purpose: "fine-tune" });
  const job = await client.fineTuning.jobs.create({ model: stack.model, training_file: file.id, metadata: { team: "sdk" }, method: { type: "supervised", supervised: { hyperparameters: { n_epochs: 50 } } } });
  expect(job.metadata).toEqual({ team: "sdk" });
  const listed = [];
  for await (const j of client.fineTuning.jobs.list({ metadata: { team: "sdk" } })) listed.push(j.id);
  expect(listed).toEqual([job.id]);
  expect((await client.fineTuning.jobs.pause(job.id)).status).toBe("paused");
  expect((await client.fineTuning.jobs.resume(job.id)).status).toBe("queued");
  expect((await client.fineTuning.jobs.cancel(job.id)).status).toBe("cancelled");
  await expect(client.fineTuning.jobs.resume(job.id)).rejects.toBeInstanceOf(OpenAI.ConflictError);
});
