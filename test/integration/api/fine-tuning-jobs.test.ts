import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { expectError, startTestApi, type TestApi } from "../../helpers/api.js";
import { chatLines, createJob, preferenceLines, registerMicroLlama, registerRunner, runnerCall, tenantWithFile, uploadFile } from "../../helpers/jobs.js";
import { stallNextCall } from "../../helpers/stall.js";

let api: TestApi;
beforeAll(async () => {
  api = await startTestApi({ TUNESERVE_MAX_LORA_RANK: "32" });
  await registerMicroLlama(api);
});
afterAll(() => api.close());

describe("POST /v1/fine_tuning/jobs", () => {
  it("creates one job for requests retried with the same Idempotency-Key", async () => {
    const t = await tenantWithFile(api, "idem-jobs", chatLines(10));
    const post = (json: unknown, key: string) => api.call("POST", "/v1/fine_tuning/jobs", { token: t.key, json, headers: { "Idempotency-Key": key } });
    const body = { model: "micro-llama", training_file: t.fileId, suffix: "once" };
    const first = await post(body, "job-key-1");
    expect(first.status).toBe(200);
    const job = await first.json();
    // The retry gets that job as it is now; another request under the same key is refused.
    await api.call("POST", `/v1/fine_tuning/jobs/${job.id}/cancel`, { token: t.key });
    const again = await post(body, "job-key-1");
    expect(again.headers.get("Idempotent-Replayed")).toBe("true");
    expect(await again.json()).toMatchObject({ id: job.id, status: "cancelled" });
    // An optional field sent as null is the same request as one that leaves it out.
    const nulls = await post({ ...body, validation_file: null, seed: null, method: null, hyperparameters: null, adapter: null }, "job-key-1");
    expect((await nulls.json()).id).toBe(job.id);
    // So are defaults written out, and hyperparameters given the older way.
    const spelled = await post({ ...body, method: { type: "supervised" }, adapter: { r: 8 } }, "job-key-1");
    expect((await spelled.json()).id).toBe(job.id);
    expect((await (await post({ ...body, hyperparameters: { n_epochs: "auto" } }, "job-key-1")).json()).id).toBe(job.id);
    expect((await (await post({ ...body, hyperparameters: { n_epochs: 3, learning_rate_multiplier: 1, seq_len: 512 } }, "job-key-1")).json()).id).toBe(job.id);
    const listed = { ...body, adapter: { target_modules: ["v_proj", "q_proj", "k_proj", "o_proj", "up_proj", "gate_proj", "down_proj", "q_proj"] } };
    expect((await (await post(listed, "job-key-1")).json()).id).toBe(job.id);
    const other = await expectError(await post({ ...body, suffix: "twice" }, "job-key-1"), 400, "invalid_request");
    expect(other.param).toBe("Idempotency-Key");
    const list = await (await api.call("GET", "/v1/fine_tuning/jobs", { token: t.key })).json();
    expect(list.data.map((j: { id: string }) => j.id)).toEqual([job.id]);
    // A failed creation leaves the key free for a retry that succeeds.
    await expectError(await post({ ...body, training_file: "file-missing" }, "job-key-2"), 404, "not_found");
    expect((await post({ ...body, training_file: "file-missing" }, "job-key-2")).status).toBe(404);
    expect((await post(body, "job-key-3")).status).toBe(200);
  });

  it("withdraws the job of an attempt that stalled until a retry took its key over: one job trains", async () => {
    const t = await tenantWithFile(api, "idem-race", chatLines(10));
    const post = () => api.call("POST", "/v1/fine_tuning/jobs", { token: t.key, json: { model: "micro-llama", training_file: t.fileId }, headers: { "Idempotency-Key": "race" } });
    // Attempt A claims the key, then stalls (its training-file lookup waits on a gate).
    const stall = stallNextCall(api.deps.db.query.files, "findFirst");
    const a = post();
    await stall.reached;
    expect((await post()).status).toBe(409);
    api.advance(61); // past STALE_RUNNING_SECONDS with no heartbeat: B takes the key over
    const b = await post();
    expect(b.status).toBe(200);
    const jobB = await b.json();
    stall.release();
    const ra = await a;
    expect(ra.status).toBe(409);
    const jobs = (await (await api.call("GET", "/v1/fine_tuning/jobs", { token: t.key })).json()).data as { id: string; status: string }[];
    expect(jobs.filter((j) => j.status !== "cancelled").map((j) => j.id)).toEqual([jobB.id]);
    expect((await (await post()).json()).id).toBe(jobB.id);
  });

  it("creates a queued job with auto settings resolved and the OpenAI shape", async () => {
    const t = await tenantWithFile(api, "acme", chatLines(100));
    const job = await createJob(api, t.key, { training_file: t.fileId, suffix: "support" });
    expect(job).toMatchObject({
      object: "fine_tuning.job",
      model: "micro-llama",
      status: "queued",
      training_file: t.fileId,
      validation_file: null,
      fine_tuned_model: null,
      finished_at: null,
      trained_tokens: null,
      organization_id: t.id,
      user_provided_suffix: "support",
      error: null,
      estimated_finish: null,
      progress: null,
      // 100 examples → batch 2 by the auto rule; lr = 2e-4 × 1.
      hyperparameters: { n_epochs: 3, batch_size: 2, learning_rate_multiplier: 1, learning_rate: 2e-4 },
      adapter: { type: "lora", r: 8, alpha: 16, dropout: 0, target_modules: ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"] },
    });
    expect(job.id).toMatch(/^ftjob-/);
    expect(job.method).toEqual({ type: "supervised", supervised: { hyperparameters: job.hyperparameters } });
    expect(Number.isInteger(job.seed)).toBe(true);
    const events = await (await api.call("GET", `/v1/fine_tuning/jobs/${job.id}/events`, { token: t.key })).json();
    expect(events.data.map((e: { message: string }) => e.message)).toEqual([
      "No runner serving base model micro-llama is online now; the job waits in the queue until one is",
      expect.stringContaining("moving job to queued state"),
      `Validating training file: ${t.fileId}`,
      `Created fine-tuning job: ${job.id}`,
    ]);
    expect(events.data[0]).toMatchObject({ object: "fine_tuning.job.event", level: "info", type: "message", data: null });
    // With a live runner for its model, a job is not told it waits for one.
    await registerRunner(api, "ready");
    const served = await (await api.call("POST", "/v1/fine_tuning/jobs", { token: t.key, json: { model: "micro-llama", training_file: t.fileId } })).json();
    const said = await (await api.call("GET", `/v1/fine_tuning/jobs/${served.id}/events`, { token: t.key })).json();
    expect(said.data[0].message).toMatch(/moving job to queued state/);
  });

  it("keeps explicit hyperparameters, seed, validation file and adapter options", async () => {
    const t = await tenantWithFile(api);
    const valid = await uploadFile(api, t.key);
    const job = await createJob(api, t.key, {
      training_file: t.fileId,
      validation_file: valid,
      seed: 42,
      method: { type: "supervised", supervised: { hyperparameters: { n_epochs: 2, batch_size: 4, learning_rate_multiplier: 0.5, seq_len: 1024 } } },
      adapter: { type: "lora", r: 4, alpha: 8, dropout: 0.1, target_modules: ["v_proj", "q_proj", "q_proj"], use_rslora: true },
    });
    expect(job).toMatchObject({
      seed: 42,
      validation_file: valid,
      hyperparameters: { n_epochs: 2, batch_size: 4, learning_rate_multiplier: 0.5, learning_rate: 1e-4, seq_len: 1024 },
      adapter: { r: 4, alpha: 8, dropout: 0.1, target_modules: ["v_proj", "q_proj"], use_rslora: true },
    });
  });

  it("takes top-level hyperparameters as older OpenAI clients send them, and null as not set", async () => {
    const t = await tenantWithFile(api);
    const legacy = await createJob(api, t.key, { training_file: t.fileId, hyperparameters: { n_epochs: 5, batch_size: 2 } });
    expect(legacy.hyperparameters).toMatchObject({ n_epochs: 5, batch_size: 2, learning_rate_multiplier: 1 });
    const nulls = await createJob(api, t.key, { training_file: t.fileId, method: null, adapter: null, hyperparameters: null, suffix: null, seed: null });
    expect(nulls.hyperparameters).toMatchObject({ n_epochs: 3, learning_rate_multiplier: 1, seq_len: 512 });
    const tooLong = await api.call("POST", "/v1/fine_tuning/jobs", { token: t.key, json: { training_file: t.fileId, model: "micro-llama", hyperparameters: { seq_len: 4096 } } });
    expect(tooLong.status).toBe(400);
    expect(((await tooLong.json()) as { error: unknown }).error).toMatchObject({ param: "hyperparameters.seq_len", message: expect.stringMatching(/max_position_embeddings \(2048\)/) });
    expect(nulls.adapter).toMatchObject({ type: "lora", r: 8, alpha: 16 });
    const both = await api.call("POST", "/v1/fine_tuning/jobs", {
      token: t.key,
      json: { model: "micro-llama", training_file: t.fileId, hyperparameters: { n_epochs: 2 }, method: { type: "supervised" } },
    });
    expect((await expectError(both, 400, "invalid_request")).param).toBe("hyperparameters");
  });

  it("refuses unknown models, foreign files and bad adapter options, naming the param", async () => {
    const t = await tenantWithFile(api);
    const other = await tenantWithFile(api, "other");
    const bad = async (body: Record<string, unknown>, status: number, code: string, param: string) => {
      const err = await expectError(await api.call("POST", "/v1/fine_tuning/jobs", { token: t.key, json: { model: "micro-llama", training_file: t.fileId, ...body } }), status, code);
      expect(err.param).toBe(param);
      return err;
    };
    await bad({ model: "nope" }, 404, "not_found", "model");
    await bad({ training_file: other.fileId }, 404, "not_found", "training_file");
    await bad({ validation_file: "file-missing" }, 404, "not_found", "validation_file");
    expect((await bad({ adapter: { r: 64 } }, 400, "invalid_request", "adapter.r")).message).toContain("32");
    await bad({ adapter: { r: 0 } }, 400, "invalid_request", "adapter.r");
    await bad({ adapter: { alpha: 0 } }, 400, "invalid_request", "adapter.alpha");
    await bad({ adapter: { alpha: 1e308 } }, 400, "invalid_request", "adapter.alpha");
    await bad({ adapter: { dropout: 1 } }, 400, "invalid_request", "adapter.dropout");
    expect((await bad({ adapter: { target_modules: ["lm_head"] } }, 400, "invalid_request", "adapter.target_modules")).message).toContain("q_proj");
    await bad({ suffix: "a:b" }, 400, "invalid_request", "suffix");
    await bad({ method: { type: "reinforcement" } }, 400, "invalid_request", "method.type");
    // DPO trains on preference pairs, which this chat file is not.
    expect((await bad({ method: { type: "dpo" } }, 400, "invalid_request", "training_file")).message).toMatch(/holds chat records; method.type "dpo" trains on preference pairs/);
    await bad({ method: { type: "dpo", dpo: { hyperparameters: { beta: 0 } } } }, 400, "invalid_request", "method.dpo.hyperparameters.beta");
    expect((await bad({ method: { type: "dpo", supervised: {} } }, 400, "invalid_request", "method.supervised")).message).toMatch(/not a field/);
    await bad({ hyperparameters: { n_epochs: 0 } }, 400, "invalid_request", "hyperparameters.n_epochs");
    await bad({ method: { type: "supervised", supervised: { hyperparameters: { n_epochs: 0 } } } }, 400, "invalid_request", "method.supervised.hyperparameters.n_epochs");
    const epochs = await bad({ method: { type: "supervised", supervised: { hyperparameters: { n_epochs: "many" } } } }, 400, "invalid_request", "method.supervised.hyperparameters.n_epochs");
    expect(epochs.message).toMatch(/n_epochs must be "auto" or an integer 1–50/);
    // An unknown field is named rather than silently dropped.
    expect((await bad({ integrations: [{ type: "wandb" }] }, 400, "invalid_request", "integrations")).message).toMatch(/integrations/);
    await bad({ metadata: Object.fromEntries(Array.from({ length: 17 }, (_, i) => [`k${i}`, "v"])) }, 400, "invalid_request", "metadata");
    await bad({ metadata: { ["k".repeat(65)]: "v" } }, 400, "invalid_request", `metadata.${"k".repeat(65)}`);
    await bad({ metadata: { team: 5 } }, 400, "invalid_request", "metadata.team");
  });

  it("creates a DPO job on a file of preference pairs, and refuses pairs for supervised fine-tuning", async () => {
    const t = await tenantWithFile(api, "dpo", preferenceLines(4));
    const job = await createJob(api, t.key, { training_file: t.fileId, method: { type: "dpo", dpo: { hyperparameters: { n_epochs: 2 } } } });
    const hp = { n_epochs: 2, batch_size: 1, learning_rate_multiplier: 1, learning_rate: 2e-4, seq_len: 512, beta: 0.1 };
    expect(job.method).toEqual({ type: "dpo", dpo: { hyperparameters: hp } });
    expect(job.hyperparameters).toEqual(hp);
    const beta = await createJob(api, t.key, { training_file: t.fileId, method: { type: "dpo", dpo: { hyperparameters: { beta: 0.5 } } } });
    expect((beta.method as { dpo: { hyperparameters: { beta: number } } }).dpo.hyperparameters.beta).toBe(0.5);
    for (const body of [{}, { method: { type: "supervised" } }]) {
      const err = await expectError(await api.call("POST", "/v1/fine_tuning/jobs", { token: t.key, json: { model: "micro-llama", training_file: t.fileId, ...body } }), 400, "invalid_request");
      expect(err.param).toBe("training_file");
      expect(err.message).toMatch(/holds preference pairs; train on them with method: \{"type": "dpo"\}/);
    }
    const chat = await uploadFile(api, t.key);
    const val = await expectError(await api.call("POST", "/v1/fine_tuning/jobs", { token: t.key, json: { model: "micro-llama", training_file: t.fileId, validation_file: chat, method: { type: "dpo" } } }), 400, "invalid_request");
    expect(val.param).toBe("validation_file");
    for (const j of [job, beta]) await api.call("POST", `/v1/fine_tuning/jobs/${j.id}/cancel`, { token: t.key });
  });

  it("keeps the job's metadata and filters the list by it", async () => {
    const t = await tenantWithFile(api, "meta");
    const create = (metadata?: Record<string, string>) => createJob(api, t.key, { training_file: t.fileId, metadata });
    const blue = await create({ team: "blue", run: "7" });
    const red = await create({ team: "red" });
    const plain = await create();
    expect(blue.metadata).toEqual({ team: "blue", run: "7" });
    expect(plain.metadata).toBeNull();
    expect((await (await api.call("GET", `/v1/fine_tuning/jobs/${red.id}`, { token: t.key })).json()).metadata).toEqual({ team: "red" });
    const ids = async (query: string) => (await (await api.call("GET", `/v1/fine_tuning/jobs?${query}`, { token: t.key })).json()).data.map((j: { id: string }) => j.id);
    expect(await ids("metadata[team]=blue")).toEqual([blue.id]);
    expect(await ids("metadata%5Bteam%5D=red")).toEqual([red.id]);
    expect(await ids("metadata[team]=blue&metadata[run]=8")).toEqual([]);
    expect(await ids("metadata=null")).toEqual([plain.id]);
    await expectError(await api.call("GET", "/v1/fine_tuning/jobs?metadata=blue", { token: t.key }), 400, "invalid_request");
    for (const j of [blue, red, plain]) await api.call("POST", `/v1/fine_tuning/jobs/${j.id}/cancel`, { token: t.key });
  });
});

describe("list, get, cancel", () => {
  it("lists newest first with pagination and hides other tenants' jobs (404)", async () => {
    const a = await tenantWithFile(api, "a");
    const b = await tenantWithFile(api, "b");
    const jobs = [];
    for (let i = 0; i < 3; i++) jobs.push(await createJob(api, a.key, { training_file: a.fileId }));
    const first = await (await api.call("GET", "/v1/fine_tuning/jobs?limit=2", { token: a.key })).json();
    expect(first.data.map((j: { id: string }) => j.id)).toEqual([jobs[2].id, jobs[1].id]);
    expect(first.has_more).toBe(true);
    const second = await (await api.call("GET", `/v1/fine_tuning/jobs?limit=2&after=${first.last_id}`, { token: a.key })).json();
    expect(second.data.map((j: { id: string }) => j.id)).toEqual([jobs[0].id]);
    expect((await (await api.call("GET", "/v1/fine_tuning/jobs", { token: b.key })).json()).data).toEqual([]);
    const id = jobs[0].id;
    expect((await api.call("GET", `/v1/fine_tuning/jobs/${id}`, { token: a.key })).status).toBe(200);
    for (const path of [`/v1/fine_tuning/jobs/${id}`, `/v1/fine_tuning/jobs/${id}/events`, `/v1/fine_tuning/jobs/${id}/checkpoints`]) {
      await expectError(await api.call("GET", path, { token: b.key }), 404, "not_found");
    }
    await expectError(await api.call("POST", `/v1/fine_tuning/jobs/${id}/cancel`, { token: b.key }), 404, "not_found");
    expect((await (await api.call("GET", `/v1/fine_tuning/jobs/${id}`, { token: a.key })).json()).status).toBe("queued");
  });

  it("cancels a queued job at once; a second cancel is a conflict; a runner never gets it", async () => {
    const t = await tenantWithFile(api, "cancel");
    const job = await createJob(api, t.key, { training_file: t.fileId });
    const res = await api.call("POST", `/v1/fine_tuning/jobs/${job.id}/cancel`, { token: t.key });
    const cancelled = await res.json();
    expect(cancelled).toMatchObject({ status: "cancelled" });
    expect(cancelled.finished_at).toBeTypeOf("number");
    await expectError(await api.call("POST", `/v1/fine_tuning/jobs/${job.id}/cancel`, { token: t.key }), 409, "conflict");
    const events = await (await api.call("GET", `/v1/fine_tuning/jobs/${job.id}/events?limit=1`, { token: t.key })).json();
    expect(events.data[0].message).toBe("The job was cancelled");
    expect(events.has_more).toBe(true);
    // Drain the queue: the cancelled job must not be among what runners lease.
    const runner = await registerRunner(api, "drain");
    for (;;) {
      const lease = await runnerCall(api, "/jobs/lease", { runner_id: runner });
      if (lease.status === 204) break;
      expect((await lease.json()).job.id).not.toBe(job.id);
    }
  });
});

describe("GET /v1/usage", () => {
  it("validates its query", async () => {
    const t = await api.tenant("usage-q");
    await expectError(await api.call("GET", "/v1/usage?group_by=week", { token: t.key }), 400, "invalid_request");
    await expectError(await api.call("GET", "/v1/usage?start=yesterday", { token: t.key }), 400, "invalid_request");
    await expectError(await api.call("GET", "/v1/usage?start=2000&end=1000", { token: t.key }), 400, "invalid_request");
    await expectError(await api.call("GET", "/v1/usage?start=2020-01-01&end=2025-01-01", { token: t.key }), 400, "invalid_request");
    const empty = await (await api.call("GET", "/v1/usage?start=2025-01-01&end=2025-01-31", { token: t.key })).json();
    expect(empty).toMatchObject({ object: "list", start_time: 1735689600, end_time: 1738281600, group_by: ["day", "kind"], data: [] });
    // The default start (30 days before end) never goes below 0.
    expect(await (await api.call("GET", "/v1/usage?end=1000", { token: t.key })).json()).toMatchObject({ start_time: 0, end_time: 1000 });
  });
});
