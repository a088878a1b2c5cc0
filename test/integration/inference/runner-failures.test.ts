// The inference server when things go wrong: a streaming client that leaves while its request waits, and a
// serving worker whose thread dies (out of memory, say): it fails its requests, and the runner starts a new one
// for the next request instead of answering 500 to every request from then on; and a server that closes (SIGTERM)
// while it answers.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it, vi } from "vitest";
import { ensureBuiltinModel } from "../../../gpu-runner/src/models/builtin.js";
import { startInferenceServer, type InferenceServer } from "../../../gpu-runner/src/serve/server.js";
import { LocalAdapterSource } from "../../../gpu-runner/src/serve/source.js";
import { ServeWorker } from "../../../gpu-runner/src/serve/worker-client.js";

const TOKEN = "runner-token";
let dir: string;
let server: InferenceServer;
const started: ServeWorker[] = [];
/** While set, a worker started on the first model folder waits for it (a restart made slow on purpose). */
let gate: Promise<void> | null = null;
let modelDir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "tuneserve-worker-crash-"));
  modelDir = await ensureBuiltinModel(join(dir, "model"));
  const start = ServeWorker.start.bind(ServeWorker);
  vi.spyOn(ServeWorker, "start").mockImplementation(async (init) => {
    if (gate && init.modelDir === modelDir) await gate;
    const w = await start(init);
    started.push(w);
    return w;
  });
  server = await startInferenceServer({ apiUrl: "http://127.0.0.1:9", runnerToken: TOKEN, listen: "127.0.0.1:0", models: { base: modelDir }, cacheDir: join(dir, "cache"), maxBatch: 1, maxContext: 512, source: new LocalAdapterSource({}) });
});
afterAll(async () => {
  vi.restoreAllMocks();
  await server?.close();
  await rm(dir, { recursive: true, force: true });
});

/** The built-in model's end tokens banned: a generation runs to max_tokens. */
const NO_EOS = { 257: -100, 259: -100 };
const auth = { Authorization: `Bearer ${TOKEN}` };
const generate = (maxTokens: number, o: { stream?: boolean; signal?: AbortSignal; url?: string } = {}) =>
  fetch(`${o.url ?? server.url}/v1/generate`, {
    method: "POST",
    headers: { ...auth, "Content-Type": "application/json" },
    body: JSON.stringify({ request_id: "r", model: "base", input: { tokens: [1, 2, 3] }, max_tokens: maxTokens, temperature: 0, logit_bias: NO_EOS, stream: o.stream ?? false }),
    signal: o.signal,
  });

it("drops a streaming request whose client leaves while it waits for a row", async () => {
  const worker = started[0];
  const running = generate(500);
  await vi.waitFor(() => expect(worker.inFlight).toBe(1));
  const ac = new AbortController();
  const waiting = generate(500, { stream: true, signal: ac.signal }).catch(() => undefined);
  await vi.waitFor(() => expect(worker.inFlight).toBe(2));
  ac.abort();
  await waiting;
  // Let go of at once, not when a row frees and its first token finds the connection closed.
  await vi.waitFor(() => expect(worker.inFlight).toBe(1), { timeout: 500 });
  expect((await running).status).toBe(200);
});

it("fails the requests in flight when the worker's thread dies, answers /v1/status, then serves again", async () => {
  const inFlight = generate(500);
  await vi.waitFor(() => expect(started[0].inFlight).toBe(1));
  expect(started).toHaveLength(1);
  // A message the worker's handler cannot read throws there, uncaught: the thread dies. (terminate() would
  // stop it inside session.run, which aborts the whole process.)
  (started[0] as unknown as { worker: { postMessage(m: unknown): void } }).worker.postMessage(null);
  const failed = await inFlight;
  expect(failed.status).toBe(500);
  expect((await failed.json()).error.code).toBe("generation_failed");
  // A dead worker never answers a stats message: the status page says it failed rather than hanging.
  const status = await fetch(`${server.url}/v1/status`, { headers: auth, signal: AbortSignal.timeout(5000) });
  expect(((await status.json()) as { models: Record<string, { error?: string }> }).models.base.error).toMatch(/Cannot read properties of null/);
  const again = await generate(3);
  expect(again.status).toBe(200);
  expect((await again.json()).usage.completion_tokens).toBe(3);
  expect(started).toHaveLength(2);
});

it("keeps the worker of a model's new files when a restart of its dead worker, on the old files, ends after the swap", async () => {
  const dead = started.at(-1)!;
  (dead as unknown as { worker: { postMessage(m: unknown): void } }).worker.postMessage(null);
  await vi.waitFor(() => expect(dead.broken).not.toBeNull());
  let open!: () => void;
  gate = new Promise((ok) => (open = ok));
  // The next request starts a new worker on the old folder (held at the gate) ...
  const request = generate(3);
  await vi.waitFor(() => expect(ServeWorker.start).toHaveBeenCalledTimes(started.length + 1));
  // ... while the model's files are replaced: the new files' worker takes over first.
  const newFiles = await ensureBuiltinModel(join(dir, "model-new"));
  await server.replaceModel("base", newFiles);
  const current = started.at(-1)!;
  open();
  gate = null;
  expect((await request).status).toBe(200);
  const restarted = started.at(-1)!;
  expect(restarted).not.toBe(current);
  // The late restart on the old folder is closed, not put in place of the new files' worker.
  await vi.waitFor(() => expect(restarted.broken).not.toBeNull());
  expect(current.broken).toBeNull();
  expect((await generate(3)).status).toBe(200);
});

it("finishes the answers in flight when it closes, answering /healthz meanwhile, and refuses new requests with a 503", async () => {
  // Were it unreachable while draining, the API's watch would give up on a long quiet answer and run it elsewhere.
  const own = await startInferenceServer({ apiUrl: "http://127.0.0.1:9", runnerToken: TOKEN, listen: "127.0.0.1:0", models: { base: await ensureBuiltinModel(join(dir, "model")) }, cacheDir: join(dir, "cache-drain"), maxBatch: 1, source: new LocalAdapterSource({}) });
  const inFlight = generate(500, { url: own.url });
  await vi.waitFor(() => expect(started.at(-1)!.inFlight).toBe(1));
  const closed = own.close();
  expect((await fetch(`${own.url}/healthz`)).status).toBe(200);
  const refused = await generate(3, { url: own.url });
  expect(refused.status).toBe(503);
  expect(refused.headers.get("Retry-After")).toBe("1");
  expect((await refused.json()).error.code).toBe("shutting_down");
  const answered = await inFlight;
  expect(answered.status).toBe(200);
  expect((await answered.json()).usage.completion_tokens).toBe(500);
  await closed;
  await expect(fetch(`${own.url}/healthz`)).rejects.toThrow();
});
