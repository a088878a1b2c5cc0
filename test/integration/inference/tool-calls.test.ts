// End to end: forced tool calls on /v1/chat/completions (tool_choice "required" or a named function) through the
// real API and runner with the built-in model: the answer is a call whose arguments follow the tool's
// parameters, whole, streamed and replayed; tools and earlier calls reach the chat template; what cannot be
// done is a 400 naming the field.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startServeStack, tenantWithAdapters, type ServeStack } from "../../../bench/stack.js";

let dir: string;
let stack: ServeStack;
let acme: { id: string; key: string; models: string[] };

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "tuneserve-tools-"));
  stack = await startServeStack({ dataDir: dir, maxBatch: 2, maxQueue: 2, maxContext: 1024 });
  acme = await tenantWithAdapters(stack, "acme", 1, 1);
});
afterAll(async () => {
  await stack?.close();
  await rm(dir, { recursive: true, force: true });
});

const post = (body: unknown, headers: Record<string, string> = {}) =>
  fetch(`${stack.apiUrl}/v1/chat/completions`, { method: "POST", headers: { Authorization: `Bearer ${acme.key}`, "Content-Type": "application/json", ...headers }, body: JSON.stringify(body) });

async function sse(res: Response): Promise<string[]> {
  return (await res.text())
    .split("\n\n")
    .filter((b) => b.startsWith("data: "))
    .map((b) => b.slice(6));
}

type ToolDelta = { index: number; id?: string; type?: string; function?: { name?: string; arguments?: string } };
type Chunk = { choices: { index: number; delta: { role?: string; content?: string | null; tool_calls?: ToolDelta[] }; finish_reason: string | null }[] };

/** Assembles streamed tool calls as the openai client does: by index, id and name from the first delta, arguments appended. */
function assemble(chunks: Chunk[]) {
  const calls: { id?: string; name?: string; arguments: string }[] = [];
  let finish: string | null = null;
  for (const ch of chunks) {
    for (const c of ch.choices) {
      for (const d of c.delta.tool_calls ?? []) {
        const call = (calls[d.index] ??= { arguments: "" });
        call.id ??= d.id;
        call.name ??= d.function?.name;
        call.arguments += d.function?.arguments ?? "";
      }
      finish ??= c.finish_reason;
    }
  }
  return { calls, finish };
}

// The untrained model writes what it likes inside strings; enums and booleans end quickly.
const weather = {
  type: "function",
  function: {
    name: "get_weather",
    description: "The weather in a city",
    parameters: { type: "object", properties: { city: { enum: ["Oslo", "Paris"] }, celsius: { type: "boolean" } }, required: ["city", "celsius"], additionalProperties: false },
  },
};
const lights = { type: "function", function: { name: "lights", parameters: { type: "object", properties: { on: { type: "boolean" } }, required: ["on"] } } };
const noSpace = Object.fromEntries([" ", "\t", "\n", "\r"].map((c) => [c.charCodeAt(0), -100]));
const messages = [{ role: "user", content: "Weather in Oslo?" }];
/** An object schema with `depth` levels of properties. */
const nested = (depth: number): Record<string, unknown> => {
  let schema: Record<string, unknown> = { type: "object", properties: {} };
  for (let i = 1; i < depth; i++) schema = { type: "object", properties: { a: schema } };
  return schema;
};

describe("forced tool calls", () => {
  it("calls the named function with arguments that follow its parameters (finish_reason stop, as OpenAI's)", async () => {
    const body = { model: acme.models[0], messages, tools: [weather, lights], tool_choice: { type: "function", function: { name: "get_weather" } }, max_tokens: 60, temperature: 1, seed: 3, logit_bias: noSpace };
    const res = await post(body);
    expect(res.status).toBe(200);
    const r = await res.json();
    const choice = r.choices[0];
    expect(choice.finish_reason).toBe("stop");
    expect(choice.message.content).toBeNull();
    expect(choice.message.tool_calls).toHaveLength(1);
    const call = choice.message.tool_calls[0];
    expect(call).toMatchObject({ id: `call_${r.id.slice("chatcmpl-".length)}_0`, type: "function", function: { name: "get_weather" } });
    const args = JSON.parse(call.function.arguments);
    // Spaced as a call is written: at most one space between JSON tokens, no newlines or tabs.
    expect(call.function.arguments).not.toMatch(/[\t\r\n]| {2}/);
    expect(["Oslo", "Paris"]).toContain(args.city);
    expect(typeof args.celsius).toBe("boolean");
    expect(Object.keys(args).sort()).toEqual(["celsius", "city"]);

    // Streamed: the first delta names the call, the arguments follow token by token and add up to the same text.
    const chunks = (await sse(await post({ ...body, stream: true }))).slice(0, -1).map((d) => JSON.parse(d) as Chunk);
    expect(chunks[0].choices[0].delta).toMatchObject({ role: "assistant", content: null, tool_calls: [{ index: 0, type: "function", function: { name: "get_weather", arguments: "" } }] });
    const streamed = assemble(chunks);
    expect(streamed.calls).toEqual([{ id: expect.stringMatching(/^call_.+_0$/), name: "get_weather", arguments: call.function.arguments }]);
    expect(streamed.finish).toBe("stop");
  });

  it('calls one of the tools with "required" (finish_reason tool_calls), for every choice', async () => {
    const body = { model: acme.models[0], messages, tools: [weather, lights], tool_choice: "required", max_tokens: 80, temperature: 1, seed: 5, n: 3, logit_bias: noSpace };
    const r = await (await post(body)).json();
    expect(r.choices).toHaveLength(3);
    for (const choice of r.choices) {
      expect(choice.finish_reason).toBe("tool_calls");
      const call = choice.message.tool_calls[0];
      expect(call.id).toBe(`call_${r.id.slice("chatcmpl-".length)}_${choice.index}`);
      const args = JSON.parse(call.function.arguments);
      if (call.function.name === "lights") expect(typeof args.on).toBe("boolean");
      else expect(call.function.name === "get_weather" && ["Oslo", "Paris"].includes(args.city)).toBe(true);
    }
    // Streamed, each choice's call comes whole once its text has ended.
    const chunks = (await sse(await post({ ...body, stream: true }))).slice(0, -1).map((d) => JSON.parse(d) as Chunk);
    for (const choice of r.choices) {
      const mine = chunks.map((ch) => ({ choices: ch.choices.filter((c) => c.index === choice.index) }));
      const streamed = assemble(mine);
      expect(streamed.finish).toBe("tool_calls");
      expect(streamed.calls).toEqual([{ id: expect.stringMatching(new RegExp(`^call_.+_${choice.index}$`)), name: choice.message.tool_calls[0].function.name, arguments: choice.message.tool_calls[0].function.arguments }]);
    }
  });

  it("opens the call in the template's own format (<tool_call>) for the model to go on with", async () => {
    const base = { model: stack.model, messages, tools: [weather, lights], max_tokens: 40, temperature: 0, logit_bias: noSpace };
    const none = await (await post({ ...base, tool_choice: "none", max_tokens: 1 })).json();
    const named = await (await post({ ...base, tool_choice: { type: "function", function: { name: "get_weather" } } })).json();
    const required = await (await post({ ...base, tool_choice: "required" })).json();
    // The built-in tokenizer spells one token per byte.
    expect(named.usage.prompt_tokens - none.usage.prompt_tokens).toBe('<tool_call>\n{"name": "get_weather", "arguments": '.length);
    expect(required.usage.prompt_tokens - none.usage.prompt_tokens).toBe("<tool_call>\n".length);
    expect(JSON.parse(named.choices[0].message.tool_calls[0].function.arguments)).toHaveProperty("city");
  });

  it("replays a call under its Idempotency-Key with the same id", async () => {
    const body = { model: stack.model, messages, tools: [lights], tool_choice: "required", max_tokens: 30, temperature: 0, logit_bias: noSpace };
    const headers = { "Idempotency-Key": `tools-${Date.now()}` };
    const first = await (await post(body, headers)).json();
    const again = await post(body, headers);
    expect(again.headers.get("Idempotent-Replayed")).toBe("true");
    expect(await again.json()).toEqual(first);
    const replayed = assemble((await sse(await post({ ...body, stream: true }, { "Idempotency-Key": headers["Idempotency-Key"] + "-s" }))).slice(0, -1).map((d) => JSON.parse(d) as Chunk));
    expect(replayed.calls[0].name).toBe("lights");
  });

  it("lists the tools and earlier calls in the prompt, and answers in text with tool_choice none", async () => {
    const plain = await (await post({ model: stack.model, messages, max_tokens: 4, temperature: 0 })).json();
    const listed = await (await post({ model: stack.model, messages, tools: [weather], tool_choice: "none", max_tokens: 4, temperature: 0 })).json();
    expect(typeof listed.choices[0].message.content).toBe("string");
    expect(listed.choices[0].message.tool_calls).toBeUndefined();
    expect(listed.usage.prompt_tokens - plain.usage.prompt_tokens).toBeGreaterThan(JSON.stringify(weather).length / 2);
    // A full round: the call, its answer, and a text reply after it.
    const round = [
      ...messages,
      { role: "assistant", content: null, tool_calls: [{ id: "call_1", type: "function", function: { name: "get_weather", arguments: '{"city":"Oslo","celsius":true}' } }] },
      { role: "tool", tool_call_id: "call_1", content: "4 degrees" },
    ];
    const after = await post({ model: stack.model, messages: round, tools: [weather], tool_choice: "none", max_tokens: 4, temperature: 0 });
    expect(after.status).toBe(200);
    expect((await after.json()).usage.prompt_tokens).toBeGreaterThan(listed.usage.prompt_tokens + '{"name": "get_weather", "arguments": {"city": "Oslo", "celsius": true}}4 degrees'.length);
  });

  it("refuses what it cannot do with a 400 naming the field", async () => {
    const cases: [Record<string, unknown>, string, RegExp][] = [
      [{ tool_choice: "required" }, "tool_choice", /needs tools/],
      [{ tools: [weather], tool_choice: { type: "function", function: { name: "nope" } } }, "tool_choice.function.name", /not one of the tools/],
      [{ tools: [weather, weather], tool_choice: "required" }, "tools", /two tools are named get_weather/],
      [{ tools: [weather], tool_choice: "required", response_format: { type: "json_object" } }, "response_format", /cannot also follow response_format/],
      [{ tools: [weather], tool_choice: "required", stop: ":" }, "stop", /cut a forced tool call's JSON short/],
      [{ messages: [...messages, { role: "tool", tool_call_id: "call_9", content: "x" }], tools: [weather], tool_choice: "none" }, "messages.1.tool_call_id", /no earlier assistant turn/],
      [{ messages: [{ role: "tool", content: "x" }] }, "messages.0.tool_call_id", /names the call/],
      [{ messages: [{ role: "user", content: null }] }, "messages.0.content", /content is required/],
      [{ tools: [{ type: "function", function: { name: "f", parameters: { type: "object", properties: { s: { type: "string", format: "date" } } } } }], tool_choice: "required" }, "tools.0.function.parameters.properties.s.format", /not supported/],
      [{ tools: [{ type: "function", function: { name: "f", parameters: { type: "string" } } }], tool_choice: "required" }, "tools.0.function.parameters", /top level must be an object/],
      // Every call is answered by a tool turn before the conversation goes on, as OpenAI checks.
      [{ messages: [...messages, { role: "assistant", tool_calls: [{ id: "c1", type: "function", function: { name: "get_weather", arguments: "{}" } }] }, { role: "user", content: "and?" }], tools: [weather] }, "messages.1.tool_calls", /c1 have no tool turn answering them/],
      [{ messages: [...messages, { role: "assistant", tool_calls: [{ id: "c1", type: "function", function: { name: "get_weather", arguments: "{}" } }, { id: "c2", type: "function", function: { name: "get_weather", arguments: "{}" } }] }, { role: "tool", tool_call_id: "c2", content: "1" }], tools: [weather] }, "messages.1.tool_calls", /c1 have no tool turn/],
      // Under auto, a strict tool's parameters must be enforceable.
      [{ tools: [{ type: "function", function: { name: "f", strict: true, parameters: { type: "object", properties: { s: { type: "string", format: "date" } } } } }] }, "tools.0.function.parameters.properties.s.format", /not supported/],
      // Nested past what recursive readers take: refused up front, under auto too.
      [{ tools: [{ type: "function", function: { name: "f", parameters: nested(2000) } }] }, "tools.0.function.parameters", /nested deeper than 64 levels/],
      [{ tools: [weather], response_format: { type: "json_schema", json_schema: { name: "x", schema: nested(40) } }, tool_choice: "none" }, "response_format.json_schema.schema", /nested deeper than 64 levels/],
      [{ messages: [...messages, { role: "assistant", tool_calls: [{ id: "c1", type: "function", function: { name: "get_weather", arguments: "[".repeat(20000) } }] }], tools: [weather] }, "messages.1.tool_calls.0.function.arguments", /nested deeper than 64 levels/],
    ];
    for (const [extra, param, message] of cases) {
      const res = await post({ model: stack.model, messages, max_tokens: 4, ...extra });
      const body = await res.json();
      expect(res.status, JSON.stringify(extra)).toBe(400);
      expect(body.error.param, JSON.stringify(body)).toBe(param);
      expect(body.error.message).toMatch(message);
    }
  });

  it("lets go of an Idempotency-Key whose request the runner refused, so the corrected request can use it", async () => {
    const headers = { "Idempotency-Key": `refused-${Date.now()}` };
    const bad = { type: "function", function: { name: "f", parameters: { type: "object", properties: { s: { type: "string", pattern: "^a" } } } } };
    const body = { model: stack.model, messages, tool_choice: "required", max_tokens: 8, temperature: 0, logit_bias: noSpace };
    expect((await post({ ...body, tools: [bad] }, headers)).status).toBe(400);
    const fixed = await post({ ...body, tools: [lights] }, headers);
    expect(fixed.status).toBe(200);
    expect((await fixed.json()).choices[0].message.tool_calls[0].function.name).toBe("lights");
  });

  it('answers in text with tool_choice "auto" (the default) when the model writes no <tool_call>', async () => {
    for (const extra of [{}, { tool_choice: "auto", stream: true }]) {
      const res = await post({ model: stack.model, messages, tools: [weather], max_tokens: 8, temperature: 0, ...extra });
      expect(res.status).toBe(200);
      if (!("stream" in extra)) {
        const r = await res.json();
        expect(typeof r.choices[0].message.content).toBe("string");
        expect(r.choices[0].message.tool_calls).toBeUndefined();
        expect(r.choices[0].finish_reason).toBe("length");
      } else expect((await sse(res)).at(-1)).toBe("[DONE]");
    }
  });

  it("calls a function that takes no parameters with {}", async () => {
    const r = await (await post({ model: stack.model, messages, tools: [{ type: "function", function: { name: "ping" } }], tool_choice: "required", max_tokens: 8, temperature: 0, logit_bias: noSpace })).json();
    expect(r.choices[0].message.tool_calls[0].function).toEqual({ name: "ping", arguments: "{}" });
  });
});
