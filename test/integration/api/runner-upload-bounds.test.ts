// What a runner stored through presigned PUT links is bounded when it reports it: an S3 or R2 link takes any size
// (only the API's own /blobs/ links stop at TUNESERVE_MAX_BLOB_BYTES), so recording a checkpoint checks each file
// against TUNESERVE_MAX_BLOB_BYTES and its adapter files against TUNESERVE_MAX_ADAPTER_BYTES, and complete checks
// the final adapter against TUNESERVE_MAX_ADAPTER_BYTES. A refused upload is deleted and nothing is billed for it.
// Run on the local store and on S3 (s3rver, whose presigned PUT links take anything, as S3's do).
import { readFile } from "node:fs/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { blobKeys } from "../../../api/src/blob/port.js";
import { blobCount, expectError, startTestApi, type TestApi } from "../../helpers/api.js";
import { blobPath, createJob, jobEvents, microLlama, registerMicroLlama, registerRunner, runnerCall, tenantWithFile } from "../../helpers/jobs.js";
import { startS3rver, type TestS3 } from "../../helpers/s3rver.js";

const MAX_ADAPTER = 100_000;
const MAX_BLOB = 2 * MAX_ADAPTER;
const limits = { TUNESERVE_MAX_ADAPTER_BYTES: String(MAX_ADAPTER), TUNESERVE_MAX_BLOB_BYTES: String(MAX_BLOB) };

interface Target {
  name: string;
  start(): Promise<TestApi>;
  /** PUTs `body` to a presigned link, as a runner does. */
  put(api: TestApi, url: string, key: string, body: Uint8Array<ArrayBuffer>): Promise<void>;
  /** Stores an object over TUNESERVE_MAX_BLOB_BYTES at a link's key: what an S3 or R2 link lets through. */
  putOversize(api: TestApi, url: string, key: string, body: Uint8Array<ArrayBuffer>): Promise<void>;
}

const local: Target = {
  name: "the local store",
  start: () => startTestApi(limits),
  async put(api, url, _key, body) {
    expect((await api.call("PUT", blobPath(url), { body })).status).toBe(200);
  },
  // Its /blobs/ links refuse such a body (put-limit.test.ts): the object is written as an S3 link would let it be.
  async putOversize(api, _url, key, body) {
    await api.deps.blobs.put(key, body);
  },
};

let s3: TestS3 | undefined;
const putOverHttp = async (_api: TestApi, url: string, _key: string, body: Uint8Array<ArrayBuffer>) => {
  expect((await fetch(url, { method: "PUT", body })).status).toBe(200);
};
const onS3: Target = {
  name: "S3 (s3rver)",
  async start() {
    s3 ??= await startS3rver();
    const prefix = `bounds-${Math.random().toString(36).slice(2)}`;
    return startTestApi({ ...limits, TUNESERVE_S3_BUCKET: s3.bucket, TUNESERVE_S3_ENDPOINT: s3.endpoint, TUNESERVE_S3_ACCESS_KEY_ID: s3.accessKeyId, TUNESERVE_S3_SECRET_ACCESS_KEY: s3.secretAccessKey, TUNESERVE_S3_PREFIX: prefix });
  },
  put: putOverHttp,
  putOversize: putOverHttp,
};
afterAll(async () => s3?.stop());

const fixture = (name: string) => readFile(`${microLlama}/adapter/${name}`).then((b) => new Uint8Array(b));

describe.each([local, onS3])("upload bounds on $name", (target) => {
  let api: TestApi;
  beforeAll(async () => {
    api = await target.start();
    await registerMicroLlama(api);
  });
  afterAll(() => api?.close());

  /** A tenant's job leased by a runner of its own. */
  async function leased() {
    const t = await tenantWithFile(api, `t${Math.random().toString(36).slice(2, 8)}`);
    const job = await createJob(api, t.key, { training_file: t.fileId });
    const r = await registerRunner(api, `r-${job.id}`);
    expect((await runnerCall(api, "/jobs/lease", { runner_id: r })).status).toBe(200);
    return { t, job, r };
  }

  /** Uploads a checkpoint's files at step 1 (`oversize` through putOversize) and records it; returns the answer. */
  async function checkpoint(job: { id: string }, tenantId: string, r: string, files: Record<string, Uint8Array<ArrayBuffer>>, oversize: string | null) {
    const up = await (await runnerCall(api, `/jobs/${job.id}/checkpoints/uploads`, { runner_id: r, step: 1, files: Object.keys(files) })).json();
    for (const [name, body] of Object.entries(files)) {
      const key = blobKeys.checkpointUpload(tenantId, job.id, 1, 1) + name;
      await (name === oversize ? target.putOversize : target.put)(api, up.urls[name], key, body);
    }
    return runnerCall(api, `/jobs/${job.id}/checkpoints`, { runner_id: r, step: 1, metrics: { train_loss: 1 }, format: 3 });
  }

  async function expectNoCheckpoint(t: { id: string; key: string }, job: { id: string }) {
    // Neither its uploads nor a copy of them are kept.
    expect(await blobCount(api, blobKeys.jobCheckpoints(t.id, job.id))).toBe(0);
    expect((await (await api.call("GET", `/v1/fine_tuning/jobs/${job.id}/checkpoints`, { token: t.key })).json()).data).toEqual([]);
    expect((await jobEvents(api, t.key, job.id)).map((e) => e.message)).not.toContainEqual(expect.stringMatching(/^Checkpoint saved/));
  }

  it("refuses a checkpoint with a file over TUNESERVE_MAX_BLOB_BYTES, and deletes its files", async () => {
    const { t, job, r } = await leased();
    const files = { "adapter_config.json": await fixture("adapter_config.json"), "adapter_model.safetensors": await fixture("adapter_model.safetensors"), "optimizer.safetensors": new Uint8Array(MAX_BLOB + 1) };
    const err = await expectError(await checkpoint(job, t.id, r, files, "optimizer.safetensors"), 413, "payload_too_large");
    expect(err.message).toBe(`checkpoint step 1: optimizer.safetensors is ${MAX_BLOB + 1} bytes, over TUNESERVE_MAX_BLOB_BYTES=${MAX_BLOB}; its files were deleted`);
    expect(err.param).toBe("step");
    await expectNoCheckpoint(t, job);
  });

  it("refuses a checkpoint whose adapter files are over TUNESERVE_MAX_ADAPTER_BYTES together, and deletes its files", async () => {
    const { t, job, r } = await leased();
    const config = await fixture("adapter_config.json");
    const weights = new Uint8Array(MAX_ADAPTER - config.length + 1);
    const err = await expectError(await checkpoint(job, t.id, r, { "adapter_config.json": config, "adapter_model.safetensors": weights, "optimizer.safetensors": new Uint8Array(10) }, null), 413, "payload_too_large");
    expect(err.message).toBe(`checkpoint step 1: its adapter (adapter_config.json, adapter_model.safetensors) is ${MAX_ADAPTER + 1} bytes, over TUNESERVE_MAX_ADAPTER_BYTES=${MAX_ADAPTER}; its files were deleted`);
    await expectNoCheckpoint(t, job);
  });

  it("records a checkpoint within both bounds", async () => {
    const { t, job, r } = await leased();
    const files = { "adapter_config.json": await fixture("adapter_config.json"), "adapter_model.safetensors": await fixture("adapter_model.safetensors"), "optimizer.safetensors": new Uint8Array(MAX_BLOB) };
    const res = await checkpoint(job, t.id, r, files, "optimizer.safetensors");
    expect(res.status).toBe(200);
    // Copied to the checkpoint's own keys, measured there (record-checkpoint.ts).
    expect(await blobCount(api, blobKeys.checkpoint(t.id, job.id, (await res.json()).id))).toBe(3);
  });

  it("refuses a final adapter over TUNESERVE_MAX_ADAPTER_BYTES and deletes it; a fitting one then completes the job, billed once", async () => {
    const { t, job, r } = await leased();
    const out = blobKeys.jobOutput(t.id, job.id, 1);
    const putOutputs = async (weights: Uint8Array<ArrayBuffer>) => {
      const { urls } = await (await runnerCall(api, `/jobs/${job.id}/outputs/uploads`, { runner_id: r })).json();
      await target.put(api, urls["adapter_config.json"], out + "adapter_config.json", await fixture("adapter_config.json"));
      await target.put(api, urls["adapter_model.safetensors"], out + "adapter_model.safetensors", weights);
    };
    const complete = () => runnerCall(api, `/jobs/${job.id}/complete`, { runner_id: r, trained_tokens: 1234 });
    const billed = async () => (await (await api.call("GET", "/v1/usage?group_by=kind", { token: t.key })).json()).data;

    await putOutputs(new Uint8Array(MAX_ADAPTER));
    const err = await expectError(await complete(), 400, "invalid_file");
    expect(err.message).toMatch(new RegExp(`^the adapter is \\d+ bytes, over TUNESERVE_MAX_ADAPTER_BYTES=${MAX_ADAPTER}; its uploaded files were deleted`));
    expect(await blobCount(api, out)).toBe(0);
    expect((await (await api.call("GET", `/v1/fine_tuning/jobs/${job.id}`, { token: t.key })).json()).status).toBe("running");
    expect(await billed()).toEqual([]);

    await putOutputs(await fixture("adapter_model.safetensors"));
    const done = await (await complete()).json();
    expect(done.job).toMatchObject({ status: "succeeded", trained_tokens: 1234 });
    expect((await (await complete()).json()).adapter.id).toBe(done.adapter.id);
    expect(await billed()).toEqual([expect.objectContaining({ kind: "training_tokens", quantity: 1234 })]);
  });
});

describe("upload bounds in the OpenAPI document", () => {
  it("lists the checkpoint record's 413 payload_too_large", async () => {
    const api = await startTestApi(limits);
    try {
      const doc = await (await api.call("GET", "/openapi.json")).json();
      expect(Object.keys(doc.paths["/internal/v1/jobs/{job_id}/checkpoints"].post.responses)).toContain("413");
    } finally {
      await api.close();
    }
  });
});
