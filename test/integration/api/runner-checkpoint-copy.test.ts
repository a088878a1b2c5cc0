// A recorded checkpoint is a copy of what the runner uploaded, under keys no presigned PUT link points at: its
// upload links stay valid until TUNESERVE_PRESIGN_SECONDS runs out, and whatever is PUT through them after the
// record (by the runner or anyone holding a link) changes neither the next lease's checkpoint nor the model the
// checkpoint is once its job has succeeded. A step is recorded once: recording it again keeps the first copy.
// Run on the local store (with its file copy, and without: streamed through the API, as on the R2 binding) and on
// S3 (s3rver, whose presigned PUT links take anything, as S3's do; copied by CopyObject).
import { readFile } from "node:fs/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { blobKeys } from "../../../api/src/blob/port.js";
import { checkpoints } from "../../../api/src/db/schema.js";
import { blobCount, expectError, startTestApi, type TestApi } from "../../helpers/api.js";
import { blobPath, createJob, microLlama, registerMicroLlama, registerRunner, runnerCall, tenantWithFile } from "../../helpers/jobs.js";
import { startS3rver, type TestS3 } from "../../helpers/s3rver.js";

const MAX_ADAPTER = 100_000;
const limits = { TUNESERVE_MAX_ADAPTER_BYTES: String(MAX_ADAPTER), TUNESERVE_MAX_BLOB_BYTES: String(2 * MAX_ADAPTER) };

interface Target {
  name: string;
  start(): Promise<TestApi>;
  /** PUTs `body` to a presigned link, as a runner does. */
  put(api: TestApi, url: string, body: Uint8Array<ArrayBuffer>): Promise<void>;
  /** Stores an object over the bounds at a link's key: what an S3 or R2 link lets through. */
  putOversize(api: TestApi, url: string, key: string, body: Uint8Array<ArrayBuffer>): Promise<void>;
  /** GETs a presigned link's bytes, as a runner does. */
  get(api: TestApi, url: string): Promise<Uint8Array>;
}

const local: Target = {
  name: "the local store",
  start: () => startTestApi(limits),
  async put(api, url, body) {
    expect((await api.call("PUT", blobPath(url), { body })).status).toBe(200);
  },
  // Its /blobs/ links refuse such a body (put-limit.test.ts): the object is written as an S3 link would let it be.
  async putOversize(api, _url, key, body) {
    await api.deps.blobs.put(key, body);
  },
  async get(api, url) {
    const res = await api.call("GET", blobPath(url));
    expect(res.status).toBe(200);
    return new Uint8Array(await res.arrayBuffer());
  },
};

// The R2 binding has no copy of its own: the API streams each file through, bounded as it streams.
const streamed: Target = {
  ...local,
  name: "the local store without its server-side copy",
  async start() {
    const api = await local.start();
    api.deps.blobs.copy = undefined;
    return api;
  },
};

let s3: TestS3 | undefined;
const putOverHttp = async (url: string, body: Uint8Array<ArrayBuffer>) => {
  expect((await fetch(url, { method: "PUT", body })).status).toBe(200);
};
const onS3: Target = {
  name: "S3 (s3rver)",
  async start() {
    s3 ??= await startS3rver();
    const prefix = `ckcopy-${Math.random().toString(36).slice(2)}`;
    return startTestApi({ ...limits, TUNESERVE_S3_BUCKET: s3.bucket, TUNESERVE_S3_ENDPOINT: s3.endpoint, TUNESERVE_S3_ACCESS_KEY_ID: s3.accessKeyId, TUNESERVE_S3_SECRET_ACCESS_KEY: s3.secretAccessKey, TUNESERVE_S3_PREFIX: prefix });
  },
  put: (_api, url, body) => putOverHttp(url, body),
  putOversize: (_api, url, _key, body) => putOverHttp(url, body),
  async get(_api, url) {
    const res = await fetch(url);
    expect(res.status).toBe(200);
    return new Uint8Array(await res.arrayBuffer());
  },
};
afterAll(async () => s3?.stop());

const fixture = (name: string) => readFile(`${microLlama}/adapter/${name}`).then((b) => new Uint8Array(b));
const text = (s: string) => new TextEncoder().encode(s);

describe.each([local, streamed, onS3])("recorded checkpoints on $name", (target) => {
  let api: TestApi;
  beforeAll(async () => {
    api = await target.start();
    await registerMicroLlama(api);
  });
  afterAll(() => api?.close());

  /** A tenant's job, leased to a runner of its own. */
  async function leasedJob() {
    const t = await tenantWithFile(api, `t${Math.random().toString(36).slice(2, 8)}`);
    const job = await createJob(api, t.key, { training_file: t.fileId });
    const r = await registerRunner(api, `r-${job.id}`);
    expect((await runnerCall(api, "/jobs/lease", { runner_id: r })).status).toBe(200);
    return { t, job, r };
  }

  /** A tenant's job leased by a runner of its own, with a checkpoint uploaded at step 1 and recorded. */
  async function recorded() {
    const { t, job, r } = await leasedJob();
    const files = { "adapter_config.json": await fixture("adapter_config.json"), "adapter_model.safetensors": await fixture("adapter_model.safetensors"), "optimizer.safetensors": text("optimizer state at step 1") };
    const up = await (await runnerCall(api, `/jobs/${job.id}/checkpoints/uploads`, { runner_id: r, step: 1, files: Object.keys(files) })).json();
    for (const [name, body] of Object.entries(files)) await target.put(api, up.urls[name], body);
    const record = () => runnerCall(api, `/jobs/${job.id}/checkpoints`, { runner_id: r, step: 1, metrics: { train_loss: 1 } });
    const res = await record();
    expect(res.status).toBe(200);
    return { t, job, r, files, urls: up.urls as Record<string, string>, record, ck: await res.json() };
  }

  /** The files of the checkpoint the job's next lease resumes from, as its runner fetches them. */
  async function resumedFiles(job: { id: string }, r: string, on = api): Promise<Record<string, Uint8Array>> {
    const failed = await runnerCall(on, `/jobs/${job.id}/fail`, { runner_id: r, error: { code: "runner_shutdown", message: "bye" }, retryable: true });
    expect(failed.status).toBe(200);
    const lease = await (await runnerCall(on, "/jobs/lease", { runner_id: r })).json();
    expect(lease.job.id).toBe(job.id);
    expect(lease.urls.checkpoint.step).toBe(1);
    const urls = lease.urls.checkpoint.files as Record<string, string>;
    return Object.fromEntries(await Promise.all(Object.entries(urls).map(async ([name, url]) => [name, await target.get(on, url)] as const)));
  }

  it("hands the next lease, and a model call, the files as recorded, whatever is PUT to the upload links after", async () => {
    const { t, job, r, files, urls } = await recorded();
    // The links are still valid: the overwrite goes through, to keys nothing reads any more.
    const later = { "adapter_config.json": text('{"r": 64}'), "adapter_model.safetensors": text("other weights"), "optimizer.safetensors": text("other state") };
    for (const [name, body] of Object.entries(later)) await target.put(api, urls[name], body);

    expect(await resumedFiles(job, r)).toEqual(files);

    // Once the job has succeeded the checkpoint is a model: runners serving it fetch the recorded PEFT files.
    const outputs = (await (await runnerCall(api, `/jobs/${job.id}/outputs/uploads`, { runner_id: r, attempt: 2 })).json()).urls;
    for (const name of ["adapter_config.json", "adapter_model.safetensors"]) await target.put(api, outputs[name], await fixture(name));
    const done = await (await runnerCall(api, `/jobs/${job.id}/complete`, { runner_id: r, attempt: 2, trained_tokens: 10 })).json();
    expect(done.job.status).toBe("succeeded");
    const ck = (await (await api.call("GET", `/v1/fine_tuning/jobs/${job.id}/checkpoints`, { token: t.key })).json()).data[0];
    const served = await (await api.call("GET", `/internal/v1/adapters/${encodeURIComponent(ck.fine_tuned_model_checkpoint)}/files`, { token: api.runner })).json();
    for (const f of served.files as { name: keyof typeof files; url: string }[]) expect(await target.get(api, f.url)).toEqual(files[f.name]);

    // Deleting the fine-tuned model deletes the recorded copy and what was PUT to the upload keys alike.
    expect((await api.call("DELETE", `/v1/models/${encodeURIComponent(done.adapter.model)}`, { token: t.key })).status).toBe(200);
    expect(await blobCount(api, blobKeys.jobCheckpoints(t.id, job.id))).toBe(0);
  });

  it("keeps the first copy when a recorded step is recorded again, even over oversize files PUT since", async () => {
    const { t, job, r, files, urls, record, ck } = await recorded();
    const weights = blobKeys.checkpointUpload(t.id, job.id, 1, 1) + "adapter_model.safetensors";
    await target.putOversize(api, urls["adapter_model.safetensors"], weights, new Uint8Array(MAX_ADAPTER + 1));

    const again = await record();
    expect(again.status).toBe(200);
    expect((await again.json()).id).toBe(ck.id);
    expect(await resumedFiles(job, r)).toEqual(files);
  });

  it("measures what it copied: a file written over the bounds after the record listed it is refused, and no copy is kept", async () => {
    const { t, job, r } = await leasedJob();
    const up = await (await runnerCall(api, `/jobs/${job.id}/checkpoints/uploads`, { runner_id: r, step: 1, files: ["optimizer.safetensors"] })).json();
    await target.put(api, up.urls["optimizer.safetensors"], text("state"));
    const key = blobKeys.checkpointUpload(t.id, job.id, 1, 1) + "optimizer.safetensors";
    // Written again once the record has listed (and measured) the uploads, before it copies them.
    const list = api.deps.blobs.list;
    api.deps.blobs.list = (prefix) => {
      api.deps.blobs.list = list;
      return (async function* () {
        yield* list.call(api.deps.blobs, prefix);
        await target.putOversize(api, up.urls["optimizer.safetensors"], key, new Uint8Array(2 * MAX_ADAPTER + 1));
      })();
    };
    try {
      const res = await runnerCall(api, `/jobs/${job.id}/checkpoints`, { runner_id: r, step: 1, metrics: {} });
      expect((await expectError(res, 413, "payload_too_large")).message).toBe(`checkpoint step 1: optimizer.safetensors is ${2 * MAX_ADAPTER + 1} bytes, over TUNESERVE_MAX_BLOB_BYTES=${2 * MAX_ADAPTER}; its files were deleted`);
    } finally {
      api.deps.blobs.list = list;
    }
    expect(await blobCount(api, blobKeys.jobCheckpoints(t.id, job.id))).toBe(0);
    expect((await (await api.call("GET", `/v1/fine_tuning/jobs/${job.id}/checkpoints`, { token: t.key })).json()).data).toEqual([]);
  });

  it("records a step recorded twice at once once, with one copy", async () => {
    const { t, job, r } = await leasedJob();
    const up = await (await runnerCall(api, `/jobs/${job.id}/checkpoints/uploads`, { runner_id: r, step: 1, files: ["a.bin", "b.bin"] })).json();
    for (const name of ["a.bin", "b.bin"]) await target.put(api, up.urls[name], text(name));
    const record = () => runnerCall(api, `/jobs/${job.id}/checkpoints`, { runner_id: r, step: 1, metrics: {} });
    const answers = await Promise.all([record(), record()]);
    expect(answers.map((a) => a.status)).toEqual([200, 200]);
    const [a, b] = await Promise.all(answers.map((x) => x.json()));
    expect(b.id).toBe(a.id);
    expect(await blobCount(api, blobKeys.checkpoint(t.id, job.id, a.id))).toBe(2);
    expect(await blobCount(api, blobKeys.jobCheckpoints(t.id, job.id))).toBe(2);
  });

  it("answers a record that lists the uploads only after a record of the same step won (and deleted them) with that checkpoint", async () => {
    const { job, r } = await leasedJob();
    const up = await (await runnerCall(api, `/jobs/${job.id}/checkpoints/uploads`, { runner_id: r, step: 1, files: ["a.bin"] })).json();
    await target.put(api, up.urls["a.bin"], text("a"));
    const record = () => runnerCall(api, `/jobs/${job.id}/checkpoints`, { runner_id: r, step: 1, metrics: {} });
    // The other record runs whole between this one's look for a recorded step and its listing of the uploads.
    const list = api.deps.blobs.list;
    let won: Response | undefined;
    api.deps.blobs.list = (prefix) => {
      api.deps.blobs.list = list;
      return (async function* () {
        won = await record();
        yield* list.call(api.deps.blobs, prefix);
      })();
    };
    let late: Response;
    try {
      late = await record();
    } finally {
      api.deps.blobs.list = list;
    }
    expect(won?.status).toBe(200);
    expect(late.status).toBe(200);
    expect((await late.json()).id).toBe((await won!.json()).id);
  });

  it("closes what it read from an upload when the store fails the copy before reading it", async (ctx) => {
    // Only a store without a copy of its own reads an upload through the API.
    if (api.deps.blobs.copy) return ctx.skip();
    const { job, r } = await leasedJob();
    const up = await (await runnerCall(api, `/jobs/${job.id}/checkpoints/uploads`, { runner_id: r, step: 1, files: ["a.bin"] })).json();
    await target.put(api, up.urls["a.bin"], text("a"));
    const { get, put } = api.deps.blobs;
    let cancelled = false;
    api.deps.blobs.get = async (key) => {
      const obj = await get.call(api.deps.blobs, key);
      // Its file handle (or S3 connection) stays open until the stream is read to its end or cancelled.
      const reader = obj!.body.getReader();
      const body = new ReadableStream<Uint8Array>({
        pull: async (c) => {
          const { value, done } = await reader.read();
          if (done) c.close();
          else c.enqueue(value);
        },
        cancel: (why) => {
          cancelled = true;
          return reader.cancel(why);
        },
      });
      return { ...obj!, body };
    };
    api.deps.blobs.put = async () => {
      throw new Error("the store is unavailable");
    };
    try {
      expect((await runnerCall(api, `/jobs/${job.id}/checkpoints`, { runner_id: r, step: 1, metrics: {} })).status).toBe(500);
    } finally {
      Object.assign(api.deps.blobs, { get, put });
    }
    expect(cancelled).toBe(true);
  });

  it("answers 413 for a copy that streams past TUNESERVE_MAX_BLOB_BYTES, even where the store wraps the stream's error in its own", async (ctx) => {
    if (api.deps.blobs.copy) return ctx.skip(); // a store that copies itself streams nothing through the API
    const { t, job, r } = await leasedJob();
    const up = await (await runnerCall(api, `/jobs/${job.id}/checkpoints/uploads`, { runner_id: r, step: 1, files: ["a.bin"] })).json();
    await target.put(api, up.urls["a.bin"], text("a"));
    const { get, put } = api.deps.blobs;
    // The object read is larger than the size the store gave for it (written again as it was read).
    api.deps.blobs.get = async (key) => {
      const obj = await get.call(api.deps.blobs, key);
      await obj?.body.cancel();
      return obj && { ...obj, body: new Response(new Uint8Array(2 * MAX_ADAPTER + 1)).body! };
    };
    api.deps.blobs.put = (key, body, opts) =>
      put.call(api.deps.blobs, key, body, opts).catch((e: unknown) => {
        throw new Error("upload failed", { cause: e });
      });
    try {
      const res = await runnerCall(api, `/jobs/${job.id}/checkpoints`, { runner_id: r, step: 1, metrics: {} });
      expect((await expectError(res, 413, "payload_too_large")).message).toBe(`checkpoint step 1: a.bin is over TUNESERVE_MAX_BLOB_BYTES=${2 * MAX_ADAPTER}; its files were deleted`);
    } finally {
      Object.assign(api.deps.blobs, { get, put });
    }
    expect(await blobCount(api, blobKeys.jobCheckpoints(t.id, job.id))).toBe(0);
  });

  it("keeps the files of a checkpoint recorded before copies were made (at its upload keys) when its step is recorded again", async () => {
    const { t, job, r } = await leasedJob();
    const up = await (await runnerCall(api, `/jobs/${job.id}/checkpoints/uploads`, { runner_id: r, step: 1, files: ["optimizer.safetensors"] })).json();
    await target.put(api, up.urls["optimizer.safetensors"], text("state"));
    // The row an older API wrote: its prefix is the upload keys of then, the step's (shared by every attempt).
    const uploads = blobKeys.legacyCheckpointUpload(t.id, job.id, 1);
    await api.deps.blobs.put(uploads + "optimizer.safetensors", text("state"));
    await api.deps.db.insert(checkpoints).values({ id: "ftckpt-legacy" + job.id.slice(-8), jobId: job.id, step: 1, blobPrefix: uploads, metrics: "{}", format: null, createdAt: api.deps.now() });
    const again = await runnerCall(api, `/jobs/${job.id}/checkpoints`, { runner_id: r, step: 1, metrics: {} });
    expect((await again.json()).id).toBe("ftckpt-legacy" + job.id.slice(-8));
    expect(await blobCount(api, uploads)).toBe(1);
  });

  it("records the holder's uploads, not what a runner that lost its lease PUTs through its old links after the takeover", async () => {
    // An API of its own: the clock moves past every lease, which would hand the jobs of the other tests over too.
    const own = await target.start();
    try {
      await registerMicroLlama(own);
      const t = await tenantWithFile(own, "takeover");
      const job = await createJob(own, t.key, { training_file: t.fileId });
      const [stale, holder] = [await registerRunner(own, "stale"), await registerRunner(own, "holder")];
      const first = await (await runnerCall(own, "/jobs/lease", { runner_id: stale })).json();
      const old = (await (await runnerCall(own, `/jobs/${job.id}/checkpoints/uploads`, { runner_id: stale, attempt: 1, step: 1, files: ["a.bin", "b.bin"] })).json()).urls;
      // The first runner freezes; its lease expires and the second takes the job over.
      own.advance(first.lease.expires_at - own.deps.now() + 1);
      const second = await (await runnerCall(own, "/jobs/lease", { runner_id: holder })).json();
      expect(second.lease).toMatchObject({ runner_id: holder, attempt: 2 });
      const fresh = (await (await runnerCall(own, `/jobs/${job.id}/checkpoints/uploads`, { runner_id: holder, attempt: 2, step: 1, files: ["a.bin", "b.bin"] })).json()).urls;
      const files = { "a.bin": text("holder's a"), "b.bin": text("holder's b") };
      for (const [name, body] of Object.entries(files)) await target.put(own, fresh[name], body);
      // The first runner wakes up and PUTs its step 1 through the links it still holds, after the holder's uploads.
      for (const name of ["a.bin", "b.bin"]) await target.put(own, old[name], text(`stale ${name}`));

      const res = await runnerCall(own, `/jobs/${job.id}/checkpoints`, { runner_id: holder, attempt: 2, step: 1, metrics: {} });
      expect(res.status).toBe(200);
      expect(await resumedFiles(job, holder, own)).toEqual(files);

      // The stale runner's uploads are under the job's checkpoints: its end deletes them with the rest.
      expect((await own.call("POST", `/v1/fine_tuning/jobs/${job.id}/cancel`, { token: t.key })).status).toBe(200);
      expect(await blobCount(own, blobKeys.jobCheckpoints(t.id, job.id))).toBe(0);
    } finally {
      await own.close();
    }
  });

  it("records the files a runner PUT through links it got before upload keys were per attempt, where its attempt has none", async () => {
    const { t, job, r } = await leasedJob();
    // What a link signed by the older API wrote: the step's keys shared by every attempt.
    const legacy = blobKeys.legacyCheckpointUpload(t.id, job.id, 1);
    await api.deps.blobs.put(legacy + "state.bin", text("uploaded before the deploy"));
    const res = await runnerCall(api, `/jobs/${job.id}/checkpoints`, { runner_id: r, attempt: 1, step: 1, metrics: {} });
    expect(res.status).toBe(200);
    expect(await blobCount(api, legacy)).toBe(0);
    expect(await resumedFiles(job, r)).toEqual({ "state.bin": text("uploaded before the deploy") });
  });

  it("reads the step's shared keys of an older API only when the holder's attempt uploaded nothing for it", async () => {
    const { t, job, r } = await leasedJob();
    await api.deps.blobs.put(blobKeys.legacyCheckpointUpload(t.id, job.id, 1) + "stale.bin", text("a stale runner's"));
    const up = await (await runnerCall(api, `/jobs/${job.id}/checkpoints/uploads`, { runner_id: r, attempt: 1, step: 1, files: ["state.bin"] })).json();
    await target.put(api, up.urls["state.bin"], text("the holder's"));
    expect((await runnerCall(api, `/jobs/${job.id}/checkpoints`, { runner_id: r, attempt: 1, step: 1, metrics: {} })).status).toBe(200);
    expect(await resumedFiles(job, r)).toEqual({ "state.bin": text("the holder's") });
  });

  it("has the store copy the files where it can: none of their bytes pass through the API", async (ctx) => {
    if (!api.deps.blobs.copy) return ctx.skip();
    const get = api.deps.blobs.get;
    const read: string[] = [];
    api.deps.blobs.get = (key) => {
      read.push(key);
      return get.call(api.deps.blobs, key);
    };
    try {
      await recorded();
    } finally {
      api.deps.blobs.get = get;
    }
    expect(read.filter((k) => k.includes("/checkpoints/"))).toEqual([]);
  });

  it("keeps no second copy of a recorded checkpoint at its upload keys", async () => {
    const { t, job } = await recorded();
    expect(await blobCount(api, blobKeys.checkpointUpload(t.id, job.id, 1, 1))).toBe(0);
    expect(await blobCount(api, blobKeys.jobCheckpoints(t.id, job.id))).toBe(3);
  });
});
