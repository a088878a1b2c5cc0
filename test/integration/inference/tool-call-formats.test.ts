// End to end: tool calls on /v1/chat/completions through the real API and runner with the built-in model under
// other chat templates than its Hermes one. Llama 3.1-style (test/helpers/llama3-template.ts): "auto" is taken, a
// call the model begins (steered with logit_bias to open with `{`) is held to the tools' grammar keyed
// "parameters" and answered as tool_calls, whole, streamed and replayed; text stays text; forced calls use the
// format too. Mistral-style (test/helpers/mistral-template.ts): "auto" is taken (the untrained model cannot be
// steered to spell [TOOL_CALLS]: auto-call-formats.test.ts writes such calls), forced calls open with
// [TOOL_CALLS] [. The newer Mistral style (test/helpers/mistral-v11-template.ts): "auto" is taken, history with
// calls renders, a named call opens with [TOOL_CALLS]name[ARGS], a call among several with [TOOL_CALLS]. A template of none of these formats is still
// refused "auto" with a 400 naming tool_choice.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startServeStack, tenantWithAdapters } from "../../../bench/stack.js";
import { BUILTIN_MODEL_NAME, ensureBuiltinModel } from "../../../gpu-runner/src/models/builtin.js";
import { useLlama3Template } from "../../helpers/llama3-template.js";
import { useMistralTemplate } from "../../helpers/mistral-template.js";
import { useMistralV11Template } from "../../helpers/mistral-v11-template.js";
import { useChatTemplate } from "../../helpers/chat-template.js";

/** A stack serving the built-in model with its chat template replaced by `retemplate` before the runner reads it. */
async function stackWith(prefix: string, retemplate: (modelDir: string) => Promise<void>) {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  await retemplate(await ensureBuiltinModel(join(dir, "models", BUILTIN_MODEL_NAME)));
  const stack = await startServeStack({ dataDir: dir, maxBatch: 2, maxQueue: 4, maxContext: 1024 });
  const tenant = await tenantWithAdapters(stack, "acme", 0);
  const post = (body: Record<string, unknown>, headers: Record<string, string> = {}) =>
    fetch(`${stack.apiUrl}/v1/chat/completions`, { method: "POST", headers: { Authorization: `Bearer ${tenant.key}`, "Content-Type": "application/json", ...headers }, body: JSON.stringify({ model: stack.model, ...body }) });
  return { dir, stack, post };
}

type Chunk = { choices: { index: number; delta: { content?: string | null; tool_calls?: { index: number; id?: string; function?: { name?: string; arguments?: string } }[] }; finish_reason: string | null }[] };
const chunksOf = async (res: Response): Promise<Chunk[]> =>
  (await res.text())
    .split("\n\n")
    .filter((b) => b.startsWith("data: {"))
    .map((b) => JSON.parse(b.slice(6)) as Chunk);

const weather = {
  type: "function",
  function: {
    name: "get_weather",
    parameters: { type: "object", properties: { city: { enum: ["Oslo", "Paris"] }, celsius: { type: "boolean" } }, required: ["city", "celsius"], additionalProperties: false },
  },
};
const lights = { type: "function", function: { name: "lights", parameters: { type: "object", properties: { on: { type: "boolean" } }, required: ["on"], additionalProperties: false } } };
const messages = [{ role: "user", content: "Weather in Oslo?" }];
// The byte-level tokenizer's token ids are the bytes: steer the untrained model to begin with `{`, or with text.
const byte = (ch: string) => String(ch.charCodeAt(0));
const noSpace = Object.fromEntries([" ", "\t", "\n", "\r"].map((c) => [byte(c), -100]));
const opensCall = { ...noSpace, [byte("{")]: 100 };

/** A stack for the enclosing describe, started before its tests and closed and removed after them. */
function useStack(prefix: string, retemplate: (modelDir: string) => Promise<void>): () => Awaited<ReturnType<typeof stackWith>> {
  let stack: Awaited<ReturnType<typeof stackWith>> | undefined;
  beforeAll(async () => {
    stack = await stackWith(prefix, retemplate);
  });
  afterAll(async () => {
    await stack?.stack.close();
    if (stack) await rm(stack.dir, { recursive: true, force: true });
  });
  return () => stack!;
}

/** A history with an earlier call (an OpenAI-style id) and its result renders, and text answers stay text, whole and streamed. */
async function expectHistoryRendersAndTextStaysText(post: Awaited<ReturnType<typeof stackWith>>["post"]) {
  const round = [
    ...messages,
    { role: "assistant", content: null, tool_calls: [{ id: "call_req_1_0", type: "function", function: { name: "lights", arguments: '{"on":true}' } }] },
    { role: "tool", tool_call_id: "call_req_1_0", content: '"done"' },
    { role: "user", content: "Thanks." },
  ];
  for (const stream of [false, true]) {
    const res = await post({ messages: round, tools: [weather, lights], max_tokens: 6, temperature: 0, logit_bias: { [byte("H")]: 100 }, stream });
    expect(res.status).toBe(200);
    if (!stream) expect((await res.json()).choices[0].message).toMatchObject({ content: "HHHHHH" });
    else expect((await chunksOf(res)).flatMap((c) => c.choices).map((d) => d.delta.content ?? "").join("")).toBe("HHHHHH");
  }
}

/** Checks a get_weather call's arguments against its parameters. */
function expectWeatherArguments(text: string) {
  const args = JSON.parse(text);
  expect(Object.keys(args).sort()).toEqual(["celsius", "city"]);
  expect(["Oslo", "Paris"]).toContain(args.city);
  expect(typeof args.celsius).toBe("boolean");
}

describe("a Llama 3.1-style template", () => {
  const llama = useStack("tuneserve-llama3-tools-", useLlama3Template);

  it('takes tool_choice "auto" and answers a call the model begins as tool_calls, held to the parameters', async () => {
    const res = await llama().post({ messages, tools: [weather, lights], max_tokens: 120, temperature: 0, logit_bias: opensCall });
    expect(res.status).toBe(200);
    const r = await res.json();
    const choice = r.choices[0];
    expect(choice.finish_reason, JSON.stringify(choice)).toBe("tool_calls");
    expect(choice.message.content).toBeNull();
    expect(choice.message.tool_calls).toHaveLength(1);
    expect(choice.message.tool_calls[0]).toMatchObject({ id: `call_${r.id.slice("chatcmpl-".length)}_0`, type: "function", function: { name: "get_weather" } });
    expectWeatherArguments(choice.message.tool_calls[0].function.arguments);

    // Streamed: no content, the call whole at the end, the same as the answer's.
    const chunks = await chunksOf(await llama().post({ messages, tools: [weather, lights], max_tokens: 120, temperature: 0, logit_bias: opensCall, stream: true }));
    const deltas = chunks.flatMap((c) => c.choices);
    expect(deltas.map((d) => d.delta.content ?? "").join("")).toBe("");
    expect(deltas.flatMap((d) => d.delta.tool_calls ?? []).map((c) => c.function)).toEqual([choice.message.tool_calls[0].function]);
    expect(deltas.at(-1)!.finish_reason).toBe("tool_calls");
  });

  it("keeps the call's text as content when max_tokens cuts it, and text answers as text", async () => {
    const cut = await (await llama().post({ messages, tools: [weather], max_tokens: 6, temperature: 0, logit_bias: opensCall })).json();
    expect(cut.choices[0].finish_reason).toBe("length");
    expect(cut.choices[0].message.tool_calls).toBeUndefined();
    expect(cut.choices[0].message.content).toMatch(/^\{"/);
    for (const stream of [false, true]) {
      const res = await llama().post({ messages, tools: [weather], max_tokens: 6, temperature: 0, logit_bias: { [byte("H")]: 100 }, stream });
      expect(res.status).toBe(200);
      if (!stream) {
        const r = await res.json();
        expect(r.choices[0].message.content).toBe("HHHHHH");
        expect(r.choices[0].message.tool_calls).toBeUndefined();
        expect(r.choices[0].finish_reason).toBe("length");
      } else {
        const deltas = (await chunksOf(res)).flatMap((c) => c.choices);
        expect(deltas.map((d) => d.delta.content ?? "").join("")).toBe("HHHHHH");
        expect(deltas.some((d) => d.delta.tool_calls)).toBe(false);
      }
    }
  });

  it("replays an auto call under its Idempotency-Key as a call", async () => {
    const body = { messages, tools: [lights], max_tokens: 60, temperature: 0, logit_bias: opensCall };
    const headers = { "Idempotency-Key": `llama-auto-${Date.now()}` };
    const first = await (await llama().post(body, headers)).json();
    expect(first.choices[0].message.tool_calls[0].function.name).toBe("lights");
    const again = await llama().post(body, headers);
    expect(again.headers.get("Idempotent-Replayed")).toBe("true");
    expect(await again.json()).toEqual(first);
    const streamHeaders = { "Idempotency-Key": `${headers["Idempotency-Key"]}-s` };
    await (await llama().post({ ...body, stream: true }, streamHeaders)).text();
    const replayed = await llama().post({ ...body, stream: true }, streamHeaders);
    expect(replayed.headers.get("Idempotent-Replayed")).toBe("true");
    const calls = (await chunksOf(replayed)).flatMap((c) => c.choices).flatMap((d) => d.delta.tool_calls ?? []);
    expect(calls.map((c) => c.function?.name)).toEqual(["lights"]);
  });

  it("forces calls in the template's format: opened with the name and parameters key, or keyed parameters among several", async () => {
    const base = { messages, tools: [weather, lights], max_tokens: 120, temperature: 0, logit_bias: noSpace };
    const none = await (await llama().post({ ...base, tool_choice: "none", max_tokens: 1 })).json();
    const named = await (await llama().post({ ...base, tool_choice: { type: "function", function: { name: "get_weather" } } })).json();
    // The built-in tokenizer spells one token per byte.
    expect(named.usage.prompt_tokens - none.usage.prompt_tokens).toBe('{"name": "get_weather", "parameters": '.length);
    expectWeatherArguments(named.choices[0].message.tool_calls[0].function.arguments);
    const required = await (await llama().post({ ...base, tool_choice: "required" })).json();
    expect(required.choices[0].finish_reason, JSON.stringify(required.choices[0])).toBe("tool_calls");
    const call = required.choices[0].message.tool_calls[0].function;
    if (call.name === "lights") expect(typeof JSON.parse(call.arguments).on).toBe("boolean");
    else expectWeatherArguments(call.arguments);
  });
});

describe("a Mistral-style template", () => {
  const mistral = useStack("tuneserve-mistral-tools-", useMistralTemplate);

  it('takes tool_choice "auto", answering text as text, and renders an earlier call and its result (its OpenAI-style id renamed for the template)', async () => {
    await expectHistoryRendersAndTextStaysText(mistral().post);
  });

  it("forces calls opened with [TOOL_CALLS] and the array, as the template writes them", async () => {
    const base = { messages, tools: [weather, lights], max_tokens: 120, temperature: 0, logit_bias: noSpace };
    const none = await (await mistral().post({ ...base, tool_choice: "none", max_tokens: 1 })).json();
    const named = await (await mistral().post({ ...base, tool_choice: { type: "function", function: { name: "get_weather" } } })).json();
    expect(named.usage.prompt_tokens - none.usage.prompt_tokens).toBe('[TOOL_CALLS] [{"name": "get_weather", "arguments": '.length);
    expectWeatherArguments(named.choices[0].message.tool_calls[0].function.arguments);
    const required = await (await mistral().post({ ...base, tool_choice: "required" })).json();
    expect(required.choices[0].finish_reason, JSON.stringify(required.choices[0])).toBe("tool_calls");
  });
});

describe("a newer Mistral-style template ([TOOL_CALLS]name[CALL_ID]id[ARGS]{…})", () => {
  const v11 = useStack("tuneserve-mistral-v11-tools-", (modelDir) => useMistralV11Template(modelDir, { callIds: true }));

  it('takes tool_choice "auto", answering text as text, and renders an earlier call and its result (its id renamed for the template)', async () => {
    await expectHistoryRendersAndTextStaysText(v11().post);
  });

  it("forces a named call opened with [TOOL_CALLS]name[ARGS], and a call among several opened with [TOOL_CALLS] and written name[ARGS]{…}", async () => {
    const base = { messages, tools: [weather, lights], max_tokens: 120, temperature: 0, logit_bias: noSpace };
    const none = await (await v11().post({ ...base, tool_choice: "none", max_tokens: 1 })).json();
    const named = await (await v11().post({ ...base, tool_choice: { type: "function", function: { name: "get_weather" } } })).json();
    expect(named.usage.prompt_tokens - none.usage.prompt_tokens).toBe("[TOOL_CALLS]get_weather[ARGS]".length);
    expectWeatherArguments(named.choices[0].message.tool_calls[0].function.arguments);
    for (const stream of [false, true]) {
      const res = await v11().post({ ...base, tool_choice: "required", stream, ...(stream ? { stream_options: { include_usage: true } } : {}) });
      const choices = stream ? (await chunksOf(res)).flatMap((c) => c.choices) : [(await res.json()).choices[0]];
      const calls = stream ? choices.flatMap((d) => d.delta.tool_calls ?? []) : choices[0].message.tool_calls;
      expect(choices.at(-1)!.finish_reason, JSON.stringify(choices)).toBe("tool_calls");
      expect(calls).toHaveLength(1);
      const call = calls[0].function;
      if (call.name === "lights") expect(typeof JSON.parse(call.arguments).on).toBe("boolean");
      else expectWeatherArguments(call.arguments);
    }
    const required = await (await v11().post({ ...base, tool_choice: "required" })).json();
    expect(required.usage.prompt_tokens - none.usage.prompt_tokens).toBe("[TOOL_CALLS]".length);
  });
});

describe("a template that writes none of the formats", () => {
  const plain = useStack("tuneserve-plain-tools-", (modelDir) =>
      useChatTemplate(modelDir, "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>{% endfor %}<|im_start|>assistant\n"),);

  it('is refused "auto" with a 400 naming tool_choice, and still takes forced calls', async () => {
    for (const extra of [{}, { tool_choice: "auto" }, { tool_choice: "auto", stream: true }]) {
      const res = await plain().post({ messages, tools: [weather], max_tokens: 4, ...extra });
      expect(res.status, JSON.stringify(extra)).toBe(400);
      const body = await res.json();
      expect(body.error.param).toBe("tool_choice");
      expect(body.error.message).toMatch(/^tool_choice: "auto" needs a chat template that writes tool calls in a format this server reads/);
    }
    const forced = await plain().post({ messages, tools: [lights], tool_choice: "required", max_tokens: 30, temperature: 0, logit_bias: noSpace });
    expect(forced.status).toBe(200);
    expect((await forced.json()).choices[0].message.tool_calls[0].function.name).toBe("lights");
  });
});
