// A base model's tokenizer and chat template, noted at registration: jobs and requests that need what the model
// lacks are refused at once (400 naming the file), not leased to a runner that fails them later.
import { cp, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { writeByteLevelTokenizer } from "../../../gpu-runner/src/engine/tokenizer/byte-level.js";
import { baseModels } from "../../../api/src/db/schema.js";
import { summarizeConfig } from "../../../api/src/lib/model-shapes.js";
import { expectError, startTestApi, type TestApi } from "../../helpers/api.js";
import { chatLines, microLlama, preferenceLines, uploadFile } from "../../helpers/jobs.js";

let api: TestApi;
let dir: string;
let key: string;

/** Registers a copy of micro-llama's config.json with `extra` files beside it; returns the registered config. */
async function register(id: string, extra: (folder: string) => Promise<unknown>) {
  const folder = join(dir, id);
  await cp(`${microLlama}/base/config.json`, join(folder, "config.json"));
  await extra(folder);
  const res = await api.call("POST", "/admin/v1/models", { token: api.admin, json: { id, source: folder } });
  expect(res.status, await res.clone().text()).toBe(201);
  return ((await res.json()) as { config: Record<string, unknown> }).config;
}

const promptLines = (n: number) => Array.from({ length: n }, (_, i) => JSON.stringify({ prompt: `q${i}`, completion: `a${i}` })).join("\n") + "\n";

beforeAll(async () => {
  api = await startTestApi({ TUNESERVE_RUNNER_TOKEN: "runner-secret-for-model-text" });
  dir = await mkdtemp(join(tmpdir(), "model-text-"));
  key = (await api.tenant("acme")).key;
});
afterAll(async () => {
  await api.close();
  await rm(dir, { recursive: true, force: true });
});

const job = (model: string, file: string, method?: unknown) =>
  api.call("POST", "/v1/fine_tuning/jobs", { token: key, json: { model, training_file: file, ...(method ? { method } : {}) } });
const chat = (model: string) => api.call("POST", "/v1/chat/completions", { token: key, json: { model, messages: [{ role: "user", content: "hi" }] } });
const complete = (model: string) => api.call("POST", "/v1/completions", { token: key, json: { model, prompt: "hi" } });

describe("a base model's tokenizer and chat template", () => {
  it("are noted at registration: a template in tokenizer_config.json or in chat_template.jinja", async () => {
    expect(await register("full", (f) => writeByteLevelTokenizer(f))).toMatchObject({ has_tokenizer: true, has_chat_template: true });
    expect(await register("bare", async () => undefined)).toMatchObject({ has_tokenizer: false, has_chat_template: false });
    const jinja = await register("jinja", async (f) => {
      await writeByteLevelTokenizer(f);
      await writeFile(join(f, "tokenizer_config.json"), JSON.stringify({ eos_token: "<|eos|>" }));
      await writeFile(join(f, "chat_template.jinja"), "{% for m in messages %}{{ m.content }}{% endfor %}");
    });
    expect(jinja).toMatchObject({ has_tokenizer: true, has_chat_template: true });
  });

  it("a tokenizer_config.json that is not JSON is a 400 at registration", async () => {
    const folder = join(dir, "broken");
    await cp(`${microLlama}/base/config.json`, join(folder, "config.json"));
    await writeFile(join(folder, "tokenizer_config.json"), "{not json");
    const err = await expectError(await api.call("POST", "/admin/v1/models", { token: api.admin, json: { id: "broken", source: folder } }), 400, "invalid_request");
    expect(err).toMatchObject({ param: "source", message: expect.stringMatching(/tokenizer_config.json is not valid JSON/) });
  });

  it("without a chat template: chat and preference files are refused, prompt/completion trains; chat requests are refused", async () => {
    await register("plain", async (f) => {
      await writeByteLevelTokenizer(f);
      await writeFile(join(f, "tokenizer_config.json"), JSON.stringify({ eos_token: "<|eos|>" }));
    });
    const chatFile = await uploadFile(api, key, chatLines(3));
    let err = await expectError(await job("plain", chatFile), 400, "invalid_request");
    expect(err).toMatchObject({ param: "training_file", message: expect.stringMatching(/base model 'plain' cannot render chat records: tokenizer_config.json has no chat_template/) });
    err = await expectError(await job("plain", await uploadFile(api, key, preferenceLines(3)), { type: "dpo" }), 400, "invalid_request");
    expect(err.message).toMatch(/cannot render preference records/);
    expect((await job("plain", await uploadFile(api, key, promptLines(3)))).status).toBe(200);

    err = await expectError(await chat("plain"), 400, "invalid_request");
    expect(err).toMatchObject({ param: "messages", message: expect.stringMatching(/model 'plain' has no chat template .*use \/v1\/completions/) });
  });

  it("without a tokenizer: every job and every text request is refused", async () => {
    const err = await expectError(await job("bare", await uploadFile(api, key, promptLines(3))), 400, "invalid_request");
    expect(err).toMatchObject({ param: "training_file", message: expect.stringMatching(/base model 'bare' has no tokenizer.json/) });
    expect((await expectError(await complete("bare"), 400, "invalid_request")).param).toBe("prompt");
    expect((await expectError(await chat("bare"), 400, "invalid_request")).param).toBe("messages");
  });

  it("a model registered before they were noted is read again once, on its first job or request, and stored", async () => {
    const folder = join(dir, "plain");
    const old = { ...summarizeConfig(JSON.parse(await readFile(join(folder, "config.json"), "utf8"))), has_tokenizer: undefined, has_chat_template: undefined };
    delete old.max_position_embeddings;
    await api.deps.db.insert(baseModels).values({ id: "older", source: folder, config: JSON.stringify(old), createdAt: 1 });
    const err = await expectError(await job("older", await uploadFile(api, key, chatLines(3))), 400, "invalid_request");
    expect(err.message).toMatch(/base model 'older' cannot render chat records/);
    const row = await api.call("GET", "/admin/v1/models/older", { token: api.admin });
    expect(((await row.json()) as { config: object }).config).toMatchObject({ has_tokenizer: true, has_chat_template: false, max_position_embeddings: 2048 });
    expect((await expectError(await chat("older"), 400, "invalid_request")).param).toBe("messages");
  });

  it("with both: jobs of every format are created (chat requests then wait for a runner)", async () => {
    expect((await job("full", await uploadFile(api, key, chatLines(3)))).status).toBe(200);
    expect((await chat("full")).status).toBe(503);
  });
});
