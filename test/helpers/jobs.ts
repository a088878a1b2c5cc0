// Helpers for fine-tuning job tests: a registered base model, an uploaded training file, a job, a runner.
import { readFileSync } from "node:fs";
import { copyFile, mkdtemp, readFile, rename, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { writeByteLevelTokenizer } from "../../gpu-runner/src/engine/tokenizer/byte-level.js";
import { afterEach } from "vitest";
import { startTestApi, type TestApi } from "./api.js";
import { fixturesDir } from "./fixtures.js";

export const microLlama = `${fixturesDir}/micro-llama`;

/**
 * The folder `micro-llama` is registered from: the fixture's config.json (the API reads no weights) with a
 * byte-level tokenizer and chat template beside it, since the API refuses chat jobs for a model without them.
 * Made once per machine (test processes race to rename it into place).
 */
export const microLlamaSource = join(tmpdir(), "tuneserve-test-micro-llama-v1");
let made: Promise<string> | null = null;
export function microLlamaFolder(): Promise<string> {
  made ??= (async () => {
    if (await stat(join(microLlamaSource, "tokenizer.json")).then(() => true, () => false)) return microLlamaSource;
    const dir = await mkdtemp(`${microLlamaSource}.tmp-`);
    await copyFile(`${microLlama}/base/config.json`, join(dir, "config.json"));
    await writeByteLevelTokenizer(dir);
    await rename(dir, microLlamaSource).catch(() => rm(dir, { recursive: true, force: true }));
    return microLlamaSource;
  })();
  return made;
}

/** Registers micro-llama (see microLlamaSource) as base model `micro-llama` (once per test API). */
export async function registerMicroLlama(api: TestApi): Promise<void> {
  const res = await api.call("POST", "/admin/v1/models", { token: api.admin, json: { id: "micro-llama", source: await microLlamaFolder() } });
  if (res.status !== 201 && res.status !== 409) throw new Error(`model register failed: ${res.status} ${await res.text()}`);
}

export const chatLines = (n: number) =>
  Array.from({ length: n }, (_, i) => JSON.stringify({ messages: [{ role: "user", content: `q${i}` }, { role: "assistant", content: `a${i}` }] })).join("\n") + "\n";

/** DPO lines: a question, the answer to prefer and the one not to. */
export const preferenceLines = (n: number) =>
  Array.from({ length: n }, (_, i) =>
    JSON.stringify({ input: { messages: [{ role: "user", content: `q${i}` }] }, preferred_output: [{ role: "assistant", content: `good${i}` }], non_preferred_output: [{ role: "assistant", content: `bad${i}` }] }),
  ).join("\n") + "\n";

/** Uploads a chat JSONL file through POST /v1/files; returns its id. */
export async function uploadFile(api: TestApi, key: string, content = chatLines(3)): Promise<string> {
  const form = new FormData();
  form.append("purpose", "fine-tune");
  form.append("file", new Blob([content], { type: "application/jsonl" }), "train.jsonl");
  const res = await api.call("POST", "/v1/files", { token: key, body: form });
  if (res.status !== 201) throw new Error(`upload failed: ${res.status} ${await res.text()}`);
  return ((await res.json()) as { id: string }).id;
}

/** The form of POST /v1/adapters for the micro-llama fixture's PEFT adapter (its files read as they are). */
export function microLlamaAdapterForm(suffix?: string): FormData {
  const f = new FormData();
  f.set("base_model", "micro-llama");
  if (suffix) f.set("suffix", suffix);
  f.set("adapter_config", new Blob([readFileSync(`${microLlama}/adapter/adapter_config.json`)]), "adapter_config.json");
  f.set("adapter_model", new Blob([readFileSync(`${microLlama}/adapter/adapter_model.safetensors`)]), "adapter_model.safetensors");
  return f;
}

/** A tenant with one training file, ready to create jobs. */
export async function tenantWithFile(api: TestApi, name = "acme", content?: string) {
  const t = await api.tenant(name);
  const fileId = await uploadFile(api, t.key, content);
  return { ...t, fileId };
}

export async function createJob(api: TestApi, key: string, body: Record<string, unknown>) {
  const res = await api.call("POST", "/v1/fine_tuning/jobs", { token: key, json: { model: "micro-llama", ...body } });
  if (res.status !== 200) throw new Error(`job create failed: ${res.status} ${await res.text()}`);
  return (await res.json()) as { id: string; status: string; [k: string]: unknown };
}

export async function registerRunner(api: TestApi, name: string, models = ["micro-llama"]): Promise<string> {
  const res = await api.call("POST", "/internal/v1/runners/register", { token: api.runner, json: { name, models, capacity: 4 } });
  if (res.status !== 200) throw new Error(`runner register failed: ${res.status} ${await res.text()}`);
  return ((await res.json()) as { id: string }).id;
}

/** A tenant's job on micro-llama, leased by runner "r": the start of most lease-protocol tests. */
export async function runningJob(api: TestApi) {
  await registerMicroLlama(api);
  const t = await tenantWithFile(api);
  const job = await createJob(api, t.key, { training_file: t.fileId });
  const r = await registerRunner(api, "r");
  const res = await runnerCall(api, "/jobs/lease", { runner_id: r });
  if (res.status !== 200) throw new Error(`expected a lease, got ${res.status} ${await res.text()}`);
  return { t, job, r };
}

/** A job's events as its tenant lists them (the newest first, up to 100). */
export type JobEvent = { message: string; type: string; data: Record<string, unknown> | null };
export async function jobEvents(api: TestApi, key: string, jobId: string): Promise<JobEvent[]> {
  return ((await (await api.call("GET", `/v1/fine_tuning/jobs/${jobId}/events?limit=100`, { token: key })).json()) as { data: JobEvent[] }).data;
}

/** POST to a runner route with the runner token. */
export const runnerCall = (api: TestApi, path: string, json: unknown) => api.call("POST", `/internal/v1${path}`, { token: api.runner, json });

/** A URL from the local blob store, called in-process through the same app. */
export const blobPath = (url: string) => {
  const u = new URL(url);
  return u.pathname + u.search;
};

/** PUTs micro-llama's adapter files to the links the job's output uploads give its runner, as a runner does before complete. */
export async function putJobOutputs(api: TestApi, jobId: string, runnerId: string): Promise<void> {
  const outputs = (await (await runnerCall(api, `/jobs/${jobId}/outputs/uploads`, { runner_id: runnerId })).json()).urls as Record<string, string>;
  for (const name of ["adapter_config.json", "adapter_model.safetensors"]) {
    const res = await api.call("PUT", blobPath(outputs[name]), { body: new Uint8Array(await readFile(`${microLlama}/adapter/${name}`)) });
    if (res.status !== 200) throw new Error(`PUT ${name}: ${res.status} ${await res.text()}`);
  }
}

/**
 * A fresh API with micro-llama registered, one per call (each test its own database, so the global queue holds
 * only its jobs), all closed after each test.
 */
export function freshMicroLlamaApis(): (env?: Record<string, string>) => Promise<TestApi> {
  const open: TestApi[] = [];
  afterEach(async () => {
    while (open.length) await open.pop()!.close();
  });
  return async (env = {}) => {
    const api = await startTestApi({ TUNESERVE_LEASE_SECONDS: "60", ...env });
    open.push(api);
    await registerMicroLlama(api);
    return api;
  };
}
