// The runner's own POST /v1/generate, streamed with logprobs: each token's text_offset is the one its JSON answer
// gives, also where a stop string of several tokens cuts text the runner held back (docs/inference.md, runner
// protocol). The API corrects what it relays (api/src/inference/stream.ts); the runner's stream is right alone.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import type { GenerateEvent, GenerateResponse } from "../../../api/src/inference/runner-protocol.js";
import { BUILTIN_MODEL_NAME, BUILTIN_SIZES, ensureBuiltinModel } from "../../../gpu-runner/src/models/builtin.js";
import { startInferenceServer, type InferenceServer } from "../../../gpu-runner/src/serve/server.js";

const TOKEN = "run_runner-stream-offsets-test-token-0123";
let dir: string;
let server: InferenceServer;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "tuneserve-runner-offsets-"));
  const modelDir = await ensureBuiltinModel(join(dir, "model"), BUILTIN_SIZES, BUILTIN_MODEL_NAME);
  // No API behind it: a base model's generation needs none.
  server = await startInferenceServer({ apiUrl: "http://127.0.0.1:9", runnerToken: TOKEN, listen: "127.0.0.1:0", models: { [BUILTIN_MODEL_NAME]: modelDir }, cacheDir: join(dir, "cache"), maxContext: 512 });
});
afterAll(async () => {
  await server?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

const generate = (body: Record<string, unknown>) =>
  fetch(`${server.url}/v1/generate`, {
    method: "POST",
    headers: { Authorization: `Bearer ${TOKEN}`, "Content-Type": "application/json" },
    body: JSON.stringify({ request_id: "offsets", model: BUILTIN_MODEL_NAME, input: { prompt: "The quick brown fox" }, max_tokens: 24, temperature: 0, logprobs: 0, ...body }),
  });
const whole = async (body: Record<string, unknown>) => (await (await generate(body)).json()) as GenerateResponse & { choices: NonNullable<GenerateResponse["choices"]> };
async function events(body: Record<string, unknown>): Promise<GenerateEvent[]> {
  const text = await (await generate({ ...body, stream: true })).text();
  return text
    .split("\n\n")
    .filter((b) => b.startsWith("data: "))
    .map((b) => JSON.parse(b.slice(6)) as GenerateEvent);
}
const deltas = (es: GenerateEvent[]) => es.flatMap((e) => (e.type === "delta" ? [e] : []));

it("streams the text_offset of its JSON answer when a stop string of several tokens cuts held-back text", async () => {
  const free = (await whole({})).choices[0];
  const tokens = free.logprobs!.map((e) => e.token);
  const at = free.logprobs!.map((e) => e.text_offset!);
  // Three tokens in a row that each write their own text: the stop string is the first two and the third's first
  // character, so the runner holds the first two back whole, then cuts them.
  const writes = (i: number) => tokens[i] !== undefined && tokens[i].length > 0 && !tokens[i].includes("\uFFFD") && free.text.startsWith(tokens[i], at[i]) && at[i + 1] === at[i] + tokens[i].length;
  const i = tokens.findIndex((_, k) => writes(k) && writes(k + 1) && writes(k + 2) && free.text.indexOf(tokens[k] + tokens[k + 1] + tokens[k + 2][0]) === at[k]);
  expect(i, JSON.stringify(tokens)).toBeGreaterThanOrEqual(0);
  const stop = [tokens[i] + tokens[i + 1] + tokens[i + 2][0]];
  const cut = (await whole({ stop })).choices[0];
  expect(cut).toMatchObject({ text: free.text.slice(0, at[i]), finish_reason: "stop" });
  // The cut tokens sit at the text's end in the JSON answer.
  expect(cut.logprobs!.slice(i).map((e) => e.text_offset)).toEqual([at[i], at[i], at[i]]);
  const streamed = deltas(await events({ stop }));
  expect(streamed.map((d) => d.text).join("")).toBe(cut.text);
  expect(streamed.flatMap((d) => (d.token === null ? [] : [d.token]))).toEqual(cut.tokens);
  expect(streamed.flatMap((d) => (d.logprob ? [d.logprob] : []))).toEqual(cut.logprobs);
});

it("streams the text_offset of its JSON answer without a stop string, several choices apart", async () => {
  const answer = await whole({ n: 2, temperature: 1, seed: 5 });
  const streamed = await events({ n: 2, temperature: 1, seed: 5 });
  for (const [index, choice] of answer.choices.entries()) {
    const own = deltas(streamed).filter((d) => (d.index ?? 0) === index);
    expect(own.map((d) => d.text).join("")).toBe(choice.text);
    expect(own.flatMap((d) => (d.logprob ? [d.logprob] : []))).toEqual(choice.logprobs);
  }
  // The first delta sent says what the API bills a cut stream by, whichever choice it is.
  expect(deltas(streamed)[0].prompt_tokens).toBe(answer.usage.prompt_tokens);
});
