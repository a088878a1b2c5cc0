// A runner newer than the API that says back a tool_call_format the API does not know: the completion is still
// answered (200), its text as content and its finish_reason as the runner said, whole, streamed and replayed,
// rather than a 500 for the whole answer. The runner is a stand-in (a plain HTTP server speaking the protocol),
// since the real one only writes the formats this API knows.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it, vi } from "vitest";
import { startServeStack, tenantWithAdapters, type ServeStack } from "../../../bench/stack.js";
import type { LocalServer } from "../../helpers/http-server.js";
import { listenCannedRunner, registerStandInRunner } from "../../helpers/stand-in-runner.js";

const model = "future-runner-micro";
const text = '<tool_call>{"name": "lights", "arguments": {"on": true}}</tool_call>';
const usage = { prompt_tokens: 9, completion_tokens: 5 };
let dir: string;
let stack: ServeStack;
let runner: LocalServer;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "tuneserve-unknown-call-format-"));
  stack = await startServeStack({ dataDir: dir, maxBatch: 1, maxContext: 512 });
  runner = await listenCannedRunner([text], "future_format", usage);
  await registerStandInRunner(stack, model, "future-runner", runner.url);
});
afterAll(async () => {
  await runner?.close();
  await stack?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

const lights = { type: "function", function: { name: "lights", parameters: { type: "object", properties: { on: { type: "boolean" } } } } };
const t = () => tenantWithAdapters(stack, `future-${Math.random().toString(36).slice(2, 8)}`, 0);
const post = (key: string, body: Record<string, unknown>, headers: Record<string, string> = {}) =>
  fetch(`${stack.apiUrl}/v1/chat/completions`, {
    method: "POST",
    headers: { Authorization: `Bearer ${key}`, "Content-Type": "application/json", ...headers },
    body: JSON.stringify({ model, messages: [{ role: "user", content: "Lights on" }], tools: [lights], max_tokens: 8, ...body }),
  });

it("answers the text as content, finish_reason the runner's, and replays it so under the same Idempotency-Key", async () => {
  const { key } = await t();
  const warn = vi.spyOn(console, "warn").mockImplementation(() => undefined);
  const res = await post(key, {}, { "Idempotency-Key": "future-1" });
  expect(res.status).toBe(200);
  // The API (in this process) tells its operator why the calls went out as text.
  expect(warn.mock.calls.flat().join("\n")).toMatch(/tool_call_format "future_format", which this API does not know: answered as text content; upgrade the API/);
  warn.mockRestore();
  const body = await res.json();
  expect(body.choices[0]).toMatchObject({ finish_reason: "stop", message: { role: "assistant", content: text } });
  expect(body.choices[0].message.tool_calls).toBeUndefined();
  const again = await post(key, {}, { "Idempotency-Key": "future-1" });
  expect(again.headers.get("Idempotent-Replayed")).toBe("true");
  expect(await again.json()).toEqual(body);
});

it("streams the text as content, finish_reason the runner's", async () => {
  const { key } = await t();
  const res = await post(key, { stream: true });
  expect(res.status).toBe(200);
  const chunks = (await res.text())
    .split("\n\n")
    .filter((b) => b.startsWith("data: {"))
    .map((b) => JSON.parse(b.slice(6)) as { choices: { delta: { content?: string; tool_calls?: unknown }; finish_reason: string | null }[] });
  const choices = chunks.flatMap((c) => c.choices);
  expect(choices.map((c) => c.delta.content ?? "").join("")).toBe(text);
  expect(choices.some((c) => c.delta.tool_calls)).toBe(false);
  expect(choices.at(-1)!.finish_reason).toBe("stop");
});
