// Newer Mistral calls (tool_call_format mistral_v11) read back by the API end to end: a runner that says the format
// and writes text then `[TOOL_CALLS]name[ARGS]{…}` calls (one with the [CALL_ID] some templates write) is answered
// with that text as content and the calls as tool_calls named by the API, whole and streamed. The runner is a
// stand-in (a plain HTTP server speaking the protocol): the built-in model cannot be steered to write such calls
// (test/unit/serve/auto-call-formats.test.ts has the real runner write them).
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { startServeStack, tenantWithAdapters, type ServeStack } from "../../../bench/stack.js";
import type { LocalServer } from "../../helpers/http-server.js";
import { listenCannedRunner, registerStandInRunner } from "../../helpers/stand-in-runner.js";

const model = "mistral-v11-micro";
const pieces = ["Sure.", "[TOOL_CALLS]", "lights", "[CALL_ID]", "a1B2c3D4e", "[ARGS]", '{"on": ', "true}", "[TOOL_CALLS]", "lights", "[ARGS]", '{"on": false}'];
const usage = { prompt_tokens: 9, completion_tokens: pieces.length };
let dir: string;
let stack: ServeStack;
let runner: LocalServer;
/** A runner whose template writes no call ids (it says tool_call_ids false), answering the same text. */
const noIdsModel = "mistral-v11-no-ids-micro";
let noIdsRunner: LocalServer;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "tuneserve-mistral-v11-calls-"));
  stack = await startServeStack({ dataDir: dir, maxBatch: 1, maxContext: 512 });
  runner = await listenCannedRunner(pieces, "mistral_v11", usage);
  await registerStandInRunner(stack, model, "mistral-v11-runner", runner.url);
  noIdsRunner = await listenCannedRunner(pieces, "mistral_v11", usage, false);
  await registerStandInRunner(stack, noIdsModel, "mistral-v11-no-ids-runner", noIdsRunner.url);
});
afterAll(async () => {
  await runner?.close();
  await noIdsRunner?.close();
  await stack?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

const lights = { type: "function", function: { name: "lights", parameters: { type: "object", properties: { on: { type: "boolean" } } } } };
const post = async (body: Record<string, unknown>) => {
  const { key } = await tenantWithAdapters(stack, `v11-${Math.random().toString(36).slice(2, 8)}`, 0);
  return fetch(`${stack.apiUrl}/v1/chat/completions`, {
    method: "POST",
    headers: { Authorization: `Bearer ${key}`, "Content-Type": "application/json" },
    body: JSON.stringify({ model, messages: [{ role: "user", content: "Lights on, then off" }], tools: [lights], max_tokens: 40, ...body }),
  });
};
const calls = [
  { name: "lights", arguments: '{"on": true}' },
  { name: "lights", arguments: '{"on": false}' },
];

it("answers the text before the calls as content and each call as a tool call with the API's own id", async () => {
  const res = await post({});
  expect(res.status).toBe(200);
  const body = await res.json();
  const id = body.id.slice("chatcmpl-".length);
  expect(body.choices[0]).toMatchObject({ finish_reason: "tool_calls", message: { role: "assistant", content: "Sure." } });
  expect(body.choices[0].message.tool_calls).toEqual(calls.map((f, k) => ({ id: `call_${id}_0${k ? `_${k}` : ""}`, type: "function", function: f })));
});

it("streams the text as content as it comes and the calls whole at the end", async () => {
  const res = await post({ stream: true });
  expect(res.status).toBe(200);
  const chunks = (await res.text())
    .split("\n\n")
    .filter((b) => b.startsWith("data: {"))
    .map((b) => JSON.parse(b.slice(6)) as { choices: { delta: { content?: string; tool_calls?: { function: unknown }[] }; finish_reason: string | null }[] });
  const choices = chunks.flatMap((c) => c.choices);
  expect(choices.map((c) => c.delta.content ?? "").join("")).toBe("Sure.");
  expect(choices.flatMap((c) => c.delta.tool_calls ?? []).map((c) => c.function)).toEqual(calls);
  expect(choices.at(-1)!.finish_reason).toBe("tool_calls");
});

it("answers as text a call holding an id where the runner says its template writes none, whole, streamed and replayed", async () => {
  const text = pieces.join("");
  const whole = await post({ model: noIdsModel });
  expect(whole.status).toBe(200);
  expect((await whole.json()).choices[0]).toMatchObject({ finish_reason: "stop", message: { content: text } });
  const streamed = await post({ model: noIdsModel, stream: true });
  const choices = (await streamed.text())
    .split("\n\n")
    .filter((b) => b.startsWith("data: {"))
    .flatMap((b) => (JSON.parse(b.slice(6)) as { choices: { delta: { content?: string; tool_calls?: unknown[] }; finish_reason: string | null }[] }).choices);
  expect(choices.map((c) => c.delta.content ?? "").join("")).toBe(text);
  expect(choices.flatMap((c) => c.delta.tool_calls ?? [])).toEqual([]);
  expect(choices.at(-1)!.finish_reason).toBe("stop");
  // A retry under the same Idempotency-Key reads the stored answer as the runner said it: text again.
  const { key } = await tenantWithAdapters(stack, `v11-replay-${Math.random().toString(36).slice(2, 8)}`, 0);
  const send = () =>
    fetch(`${stack.apiUrl}/v1/chat/completions`, {
      method: "POST",
      headers: { Authorization: `Bearer ${key}`, "Content-Type": "application/json", "Idempotency-Key": "v11-no-ids" },
      body: JSON.stringify({ model: noIdsModel, messages: [{ role: "user", content: "Lights on, then off" }], tools: [lights], max_tokens: 40 }),
    });
  expect((await (await send()).json()).choices[0].message.content).toBe(text);
  const replayed = await send();
  expect(replayed.headers.get("Idempotent-Replayed")).toBe("true");
  expect((await replayed.json()).choices[0]).toMatchObject({ finish_reason: "stop", message: { content: text } });
});
