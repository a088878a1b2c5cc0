// The official `openai` npm client against the API in-process (no runner): its typed errors read our envelope
// (code, message, param and OpenAI's type), its retries follow our Retry-After and x-should-retry, and its
// auto-pagination walks our lists. Generation through the client: test/integration/inference/openai-client.test.ts.
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestApi, type TestApi } from "../../helpers/api.js";
import { chatLines, registerMicroLlama } from "../../helpers/jobs.js";

let api: TestApi;
beforeAll(async () => {
  api = await startTestApi();
  await registerMicroLlama(api);
});
afterAll(() => api.close());

/** A client of a new tenant (with these limits), counting the HTTP requests it sends. */
async function clientOf(opts: { limits?: Record<string, number>; maxRetries?: number } = {}) {
  const res = await api.call("POST", "/admin/v1/tenants", { token: api.admin, json: { name: "sdk", limits: opts.limits } });
  const key = ((await res.json()) as { api_key: string }).api_key;
  const sent = { count: 0 };
  const fetch = (input: string | URL | Request, init?: RequestInit) => {
    sent.count++;
    return api.fetch(input, init);
  };
  return { client: new OpenAI({ baseURL: "http://localhost/v1", apiKey: key, maxRetries: opts.maxRetries ?? 0, fetch }), sent };
}

const upload = (client: OpenAI, name = "train.jsonl") => client.files.create({ file: new File([chatLines(3)], name), purpose: "fine-tune" });

describe("errors", () => {
  it("reads code, message, param and type from the envelope, as the client's error classes", async () => {
    const { client } = await clientOf();
    const missing = await client.models.retrieve("gpt-nope").catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(OpenAI.NotFoundError);
    const nf = missing as InstanceType<typeof OpenAI.NotFoundError>;
    expect(nf.error).toMatchObject({ code: "not_found", message: "model 'gpt-nope' not found", param: "model", type: "invalid_request_error", request_id: expect.stringMatching(/^req_/) });
    expect([nf.code, nf.param, nf.type]).toEqual(["not_found", "model", "invalid_request_error"]);
    expect(nf.requestID).toBe((nf.error as { request_id: string }).request_id);

    const bad = await client.fineTuning.jobs.create({ model: "micro-llama", training_file: "file-nope", integrations: [] }).catch((e: unknown) => e);
    expect(bad).toBeInstanceOf(OpenAI.BadRequestError);
    expect(bad).toMatchObject({ code: "invalid_request", param: "integrations", type: "invalid_request_error" });

    const anon = new OpenAI({ baseURL: "http://localhost/v1", apiKey: "sk-wrong", maxRetries: 0, fetch: api.fetch });
    const denied = await anon.models.list().catch((e: unknown) => e);
    expect(denied).toBeInstanceOf(OpenAI.AuthenticationError);
    expect(denied).toMatchObject({ code: "unauthorized", type: "authentication_error" });
  });

  it("tells the client not to retry a 409 that waiting cannot resolve", async () => {
    const { client, sent } = await clientOf({ maxRetries: 2 });
    const file = await upload(client);
    const job = await client.fineTuning.jobs.create({ model: "micro-llama", training_file: file.id });
    await client.fineTuning.jobs.cancel(job.id);
    const before = sent.count;
    await expect(client.fineTuning.jobs.cancel(job.id)).rejects.toMatchObject({ status: 409, code: "conflict", type: "invalid_request_error" });
    // The client retries a 409 by default (a lock timeout, to OpenAI), twice with backoff; this one is sent once.
    expect(sent.count - before).toBe(1);
  });

  it("retries a 429 rate_limited after its Retry-After, and then gets through", async () => {
    const { client, sent } = await clientOf({ limits: { requests_per_minute: 1 }, maxRetries: 1 });
    // Two seconds before the minute turns on the API's clock: the second call is refused with Retry-After 1–2.
    const now = api.deps.now();
    api.advance((((58 - (now % 60)) % 60) + 60) % 60);
    await client.models.list();
    const started = Date.now();
    const page = await client.fineTuning.jobs.list().withResponse();
    expect(sent.count).toBe(3);
    expect(page.response.status).toBe(200);
    expect(Date.now() - started).toBeGreaterThanOrEqual(900);
  });
});

describe("files, models and jobs", () => {
  it("uploads, gets, downloads and deletes a file, and reads models and a job, as the client's types say", async () => {
    const { client } = await clientOf();
    const file = await upload(client);
    expect(file).toMatchObject({ object: "file", purpose: "fine-tune", status: "processed", filename: "train.jsonl", bytes: chatLines(3).length });
    expect(await client.files.retrieve(file.id)).toEqual(file);
    expect(await (await client.files.content(file.id)).text()).toBe(chatLines(3));
    const models = [];
    for await (const m of client.models.list()) models.push(m);
    expect(models).toContainEqual(expect.objectContaining({ id: "micro-llama", object: "model", owned_by: expect.any(String), created: expect.any(Number) }));
    expect((await client.models.retrieve("micro-llama")).id).toBe("micro-llama");
    await expect(client.models.delete("micro-llama")).rejects.toBeInstanceOf(OpenAI.BadRequestError);
    const job = await client.fineTuning.jobs.create({ model: "micro-llama", training_file: file.id, suffix: "sdk" });
    expect(await client.fineTuning.jobs.retrieve(job.id)).toMatchObject({ id: job.id, object: "fine_tuning.job", status: "queued", training_file: file.id, result_files: [], error: null });
    await client.fineTuning.jobs.cancel(job.id);
    expect(await client.files.delete(file.id)).toEqual({ id: file.id, object: "file", deleted: true });
    await expect(client.files.retrieve(file.id)).rejects.toMatchObject({ status: 404, param: "file_id" });
  });
});

describe("pagination", () => {
  it("walks files newest first, or oldest first with order=asc, a page at a time", async () => {
    const { client } = await clientOf();
    const ids = [];
    for (const name of ["a.jsonl", "b.jsonl", "c.jsonl"]) ids.push((await upload(client, name)).id);
    const desc = [];
    for await (const f of client.files.list({ limit: 1 })) desc.push(f.id);
    expect(desc).toEqual([...ids].reverse());
    const asc = [];
    for await (const f of client.files.list({ limit: 2, order: "asc" })) asc.push(f.id);
    expect(asc).toEqual(ids);
    const first = await client.files.list({ limit: 2, order: "asc" });
    expect([first.has_more, first.hasNextPage(), first.data.map((f) => f.id)]).toEqual([true, true, ids.slice(0, 2)]);
  });

  it("walks jobs and a job's events page by page", async () => {
    const { client } = await clientOf();
    const file = await upload(client);
    const jobs = [];
    for (let i = 0; i < 3; i++) jobs.push((await client.fineTuning.jobs.create({ model: "micro-llama", training_file: file.id })).id);
    await client.fineTuning.jobs.cancel(jobs[0]);
    const listed = [];
    for await (const j of client.fineTuning.jobs.list({ limit: 1 })) listed.push(j.id);
    expect(listed).toEqual([...jobs].reverse());
    const events = [];
    for await (const e of client.fineTuning.jobs.listEvents(jobs[0], { limit: 1 })) events.push(e);
    expect(events.length).toBeGreaterThanOrEqual(2);
    expect(events.every((e) => e.object === "fine_tuning.job.event")).toBe(true);
    const checkpoints = [];
    for await (const c of client.fineTuning.jobs.checkpoints.list(jobs[0])) checkpoints.push(c);
    expect(checkpoints).toEqual([]);
  });
});
