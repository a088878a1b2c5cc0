// Requests fired at once (Promise.all against the real app): each race ends in one coherent state, with
// answers that agree with it and no 500 from a constraint that a read-then-write let through.
import { readFile } from "node:fs/promises";
import { and, eq } from "drizzle-orm";
import { afterEach, describe, expect, it } from "vitest";
import { blobCount, expectError, startTestApi, type TestApi } from "../../helpers/api.js";
import { blobKeys } from "../../../api/src/blob/port.js";
import { idempotencyKeys } from "../../../api/src/db/schema.js";
import { claimKey, KEY_TTL_SECONDS } from "../../../api/src/lib/idempotency-keys.js";
import { blobPath, createJob, jobEvents, microLlama, putJobOutputs, registerMicroLlama, registerRunner, runnerCall, runningJob, tenantWithFile } from "../../helpers/jobs.js";

const open: TestApi[] = [];
async function fresh(env: Record<string, string> = {}): Promise<TestApi> {
  const api = await startTestApi(env);
  open.push(api);
  return api;
}
afterEach(async () => {
  while (open.length) await open.pop()!.close();
});

/** Runs `f` while every db.batch waits a moment first, as on a loaded database: racing requests overlap. */
async function withSlowBatches<T>(api: TestApi, f: () => Promise<T>): Promise<T> {
  const db = api.deps.db as unknown as { batch(items: unknown[]): Promise<unknown[]> };
  const batch = db.batch;
  db.batch = async (items) => {
    await new Promise((ok) => setTimeout(ok, 20));
    return batch.call(db, items);
  };
  try {
    return await f();
  } finally {
    db.batch = batch;
  }
}

describe("admin model registration", () => {
  it("answers one of two registrations of one id at once 201 and the other 409, not a 500 from the primary key", async () => {
    const api = await fresh();
    const register = () => api.call("POST", "/admin/v1/models", { token: api.admin, json: { id: "micro-llama", source: `${microLlama}/base` } });
    const both = await Promise.all([register(), register(), register()]);
    expect(both.map((r) => r.status).sort()).toEqual([201, 409, 409]);
    for (const res of both.filter((r) => r.status === 409)) expect((await res.json()).error).toMatchObject({ code: "conflict", param: "id" });
  });
});

describe("runner registration", () => {
  it("takes a registration and its retry from the same process at once: both 200, one id (a 409 would make the runner exit)", async () => {
    const api = await fresh();
    await registerMicroLlama(api);
    const register = () => runnerCall(api, "/runners/register", { name: "gpu-1", instance: "instance-1", models: ["micro-llama"], capacity: 2 });
    const both = await Promise.all([register(), register()]);
    expect(both.map((r) => r.status)).toEqual([200, 200]);
    const [a, b] = await Promise.all(both.map((r) => r.json()));
    expect(a.id).toBe(b.id);
  });

  it("keeps a superseded process's runner heartbeat, racing the new process's registration, off the new process's row", async () => {
    const api = await fresh();
    await registerMicroLlama(api);
    const register = (instance: string) => runnerCall(api, "/runners/register", { name: "gpu-1", instance, models: ["micro-llama"], capacity: 2 });
    const { id } = (await (await register("instance-old")).json()) as { id: string };
    const [beat, taken] = await Promise.all([runnerCall(api, `/runners/${id}/heartbeat`, { instance: "instance-old", adapters: ["ft:micro-llama:t::old"] }), register("instance-new")]);
    expect(taken.status).toBe(200);
    // Either the heartbeat came first (200, then the registration reset the row) or it is told it was superseded.
    expect([200, 409]).toContain(beat.status);
    const row = (await (await api.call("GET", `/admin/v1/runners/${id}`, { token: api.admin })).json()) as { adapters: string[] };
    expect(row.adapters).toEqual([]);
  });
});

describe("fine-tuning job creation under Idempotency-Key", () => {
  it("lets a creation withdrawn by the active-job quota run again on its retry, instead of replaying the withdrawn job", async () => {
    const api = await fresh({ TUNESERVE_MAX_ACTIVE_JOBS: "1" });
    await registerMicroLlama(api);
    const t = await tenantWithFile(api);
    const create = (key: string) => api.call("POST", "/v1/fine_tuning/jobs", { token: t.key, json: { model: "micro-llama", training_file: t.fileId }, headers: { "Idempotency-Key": key } });
    const keys = ["k-0", "k-1", "k-2", "k-3"];
    // Slow batched writes (a busy database) let every creation pass the quota's pre-check before any is written.
    const raced = await withSlowBatches(api, () => Promise.all(keys.map(create)));
    expect(raced.map((r) => r.status).filter((s) => s === 200)).toHaveLength(1);
    // At least one of them passed the quota's pre-check and was withdrawn after its insert (the path under test).
    const all = (await (await api.call("GET", "/v1/fine_tuning/jobs", { token: t.key })).json()).data as { status: string }[];
    expect(all.filter((j) => j.status === "cancelled").length).toBeGreaterThan(0);
    // The refused ones' retries (same key, as SDKs retry a 429) are judged again: still over the quota.
    for (const [i, res] of raced.entries()) {
      if (res.status === 200) continue;
      expect(res.status).toBe(429);
      const retry = await create(keys[i]);
      expect(retry.headers.get("Idempotent-Replayed")).toBeNull();
      expect(retry.status).toBe(429);
    }
    // Once the quota has room, the retry creates a job, and a further retry replays that one.
    const winner = (await raced.find((r) => r.status === 200)!.json()) as { id: string };
    expect((await api.call("POST", `/v1/fine_tuning/jobs/${winner.id}/cancel`, { token: t.key })).status).toBe(200);
    const loser = keys[raced.findIndex((r) => r.status !== 200)];
    const made = await create(loser);
    expect(made.status).toBe(200);
    const job = (await made.json()) as { id: string; status: string };
    expect(job.status).toBe("queued");
    const replay = await create(loser);
    expect(replay.headers.get("Idempotent-Replayed")).toBe("true");
    expect(((await replay.json()) as { id: string }).id).toBe(job.id);
  });
});

/** Holds every blob put whose key starts with `prefix` until `open` is called; `reached` resolves at the first. */
function gatePuts(api: TestApi, prefix: string) {
  const put = api.deps.blobs.put;
  let open!: () => void;
  let arrived!: () => void;
  const gate = new Promise<void>((ok) => (open = ok));
  const reached = new Promise<void>((ok) => (arrived = ok));
  api.deps.blobs.put = async (key, ...rest) => {
    if (key.startsWith(prefix)) {
      arrived();
      await gate;
    }
    return put.call(api.deps.blobs, key, ...rest);
  };
  return { reached, open: () => (open(), (api.deps.blobs.put = put)) };
}

describe("complete racing the job's end", () => {
  it("leaves no adapter or results files of a complete that lost to a cancel made while it copied them", async () => {
    const api = await fresh();
    const { t, job, r } = await runningJob(api);
    await putJobOutputs(api, job.id, r);
    const adapterFolder = blobKeys.adapter(t.id, `adp_${job.id.slice("ftjob-".length)}`);
    // The complete is copying the adapter into the tenant's folder when the tenant cancels (and the cancel's
    // clean-up finds nothing there yet).
    const gate = gatePuts(api, adapterFolder);
    const completing = runnerCall(api, `/jobs/${job.id}/complete`, { runner_id: r, trained_tokens: 10 });
    await gate.reached;
    expect((await (await api.call("POST", `/v1/fine_tuning/jobs/${job.id}/cancel`, { token: t.key })).json()).status).toBe("cancelled");
    gate.open();
    expect((await expectError(await completing, 409, "lease_lost")).message).toMatch(/cancelled/);
    expect(await blobCount(api, adapterFolder)).toBe(0);
    expect(await blobCount(api, blobKeys.jobAllResults(t.id, job.id))).toBe(0);
    expect(await blobCount(api, blobKeys.jobOutputs(t.id, job.id))).toBe(0);
    const got = (await (await api.call("GET", `/v1/fine_tuning/jobs/${job.id}`, { token: t.key })).json()) as { status: string; fine_tuned_model: string | null };
    expect(got).toMatchObject({ status: "cancelled", fine_tuned_model: null });
    expect((await (await api.call("GET", "/v1/adapters", { token: t.key })).json()).data).toEqual([]);
  });

  it("answers 409 lease_lost, not 500, to a complete whose outputs a cancel deleted between checking and reading them", async () => {
    const api = await fresh();
    const { t, job, r } = await runningJob(api);
    await putJobOutputs(api, job.id, r);
    const get = api.deps.blobs.get;
    const read: ReadableStream<Uint8Array>[] = [];
    const readOutput = async (key: string) => {
      const obj = await get.call(api.deps.blobs, key);
      if (obj) read.push(obj.body);
      return obj;
    };
    api.deps.blobs.get = async (key) => {
      if (key.startsWith(blobKeys.jobOutputs(t.id, job.id))) {
        api.deps.blobs.get = readOutput;
        expect((await api.call("POST", `/v1/fine_tuning/jobs/${job.id}/cancel`, { token: t.key })).status).toBe(200);
      }
      return readOutput(key);
    };
    try {
      const res = await runnerCall(api, `/jobs/${job.id}/complete`, { runner_id: r, attempt: 1, trained_tokens: 10 });
      expect((await expectError(res, 409, "lease_lost")).message).toMatch(/cancelled/);
      // The output still found (opened before the clean-up deleted it) was closed, not left holding its file.
      expect(read.length).toBeGreaterThan(0);
      for (const body of read) expect((await body.getReader().read()).done).toBe(true);
    } finally {
      api.deps.blobs.get = get;
    }
  });

  it("ends a job raced by a cancel and its runner's complete in one state, billed once as that state says", async () => {
    const api = await fresh();
    await registerMicroLlama(api);
    const t = await tenantWithFile(api);
    const r = await registerRunner(api, "r");
    for (let i = 0; i < 4; i++) {
      const job = await createJob(api, t.key, { training_file: t.fileId });
      expect((await runnerCall(api, "/jobs/lease", { runner_id: r })).status).toBe(200);
      const progress = { step: 3, total_steps: 10, epoch: 0.3, loss: 1, trained_tokens: 300 };
      expect((await runnerCall(api, `/jobs/${job.id}/heartbeat`, { runner_id: r, attempt: 1, progress })).status).toBe(200);
      await putJobOutputs(api, job.id, r);
      // The runner's complete and its retry, and the tenant's cancel sent at once or a little later.
      const cancel = async () => {
        await new Promise((ok) => setTimeout(ok, [0, 2, 20, 200][i]));
        return api.call("POST", `/v1/fine_tuning/jobs/${job.id}/cancel`, { token: t.key });
      };
      const complete = () => runnerCall(api, `/jobs/${job.id}/complete`, { runner_id: r, attempt: 1, trained_tokens: 1000 });
      const [cancelled, ...completes] = await Promise.all([cancel(), complete(), complete()]);
      const got = (await (await api.call("GET", `/v1/fine_tuning/jobs/${job.id}`, { token: t.key })).json()) as { status: string; trained_tokens: number | null; fine_tuned_model: string | null };
      const events = (await (await api.call("GET", `/admin/v1/usage/events?tenant_id=${t.id}&limit=100`, { token: api.admin })).json()).data as { id: string; data: { quantity: number } }[];
      const billed = events.filter((e) => e.id === `job:${job.id}:training_tokens`);
      expect(billed).toHaveLength(1);
      if (got.status === "succeeded") {
        expect(cancelled.status).toBe(409);
        expect(completes.map((res) => res.status)).toEqual([200, 200]);
        expect(billed[0].data.quantity).toBe(1000);
        expect(got.fine_tuned_model).not.toBeNull();
      } else {
        expect(got).toMatchObject({ status: "cancelled", fine_tuned_model: null, trained_tokens: 300 });
        expect(cancelled.status).toBe(200);
        expect(completes.map((res) => res.status)).toEqual([409, 409]);
        expect(billed[0].data.quantity).toBe(300);
        expect(await blobCount(api, blobKeys.adapter(t.id, `adp_${job.id.slice("ftjob-".length)}`))).toBe(0);
      }
    }
  });
});

describe("lease racing a cancel", () => {
  it("writes no failure event on a job cancelled while the lease that found its training file deleted was failing it", async () => {
    const api = await fresh();
    await registerMicroLlama(api);
    const t = await tenantWithFile(api);
    const job = await createJob(api, t.key, { training_file: t.fileId });
    expect((await api.call("DELETE", `/v1/files/${t.fileId}`, { token: t.key })).status).toBe(200);
    const r = await registerRunner(api, "r");
    // The tenant cancels while the lease looks the job's training file up.
    const files = api.deps.db.query.files;
    const findFirst = files.findFirst;
    files.findFirst = ((...args: Parameters<typeof findFirst>) => {
      files.findFirst = findFirst;
      return (async () => {
        expect((await api.call("POST", `/v1/fine_tuning/jobs/${job.id}/cancel`, { token: t.key })).status).toBe(200);
        return findFirst.apply(files, args);
      })();
    }) as typeof findFirst;
    try {
      expect((await runnerCall(api, "/jobs/lease", { runner_id: r })).status).toBe(204);
    } finally {
      files.findFirst = findFirst;
    }
    const got = (await (await api.call("GET", `/v1/fine_tuning/jobs/${job.id}`, { token: t.key })).json()) as { status: string; error: unknown };
    expect(got).toMatchObject({ status: "cancelled", error: null });
    expect((await jobEvents(api, t.key, job.id)).filter((e) => e.message.startsWith("The job failed"))).toEqual([]);
  });
});

describe("checkpoint racing a cancel", () => {
  it("records no checkpoint of a job cancelled while the runner recorded it, and answers 409 lease_lost", async () => {
    const api = await fresh();
    await registerMicroLlama(api);
    const t = await tenantWithFile(api);
    const r = await registerRunner(api, "r");
    // The tenant cancels while the record call counts the uploaded files: before it finds them (its clean-up
    // deletes them first) or once it has.
    for (const when of ["before", "after"] as const) {
      const job = await createJob(api, t.key, { training_file: t.fileId });
      expect((await runnerCall(api, "/jobs/lease", { runner_id: r })).status).toBe(200);
      const up = (await (await runnerCall(api, `/jobs/${job.id}/checkpoints/uploads`, { runner_id: r, attempt: 1, step: 5, files: ["state.json"] })).json()) as { urls: Record<string, string> };
      expect((await api.call("PUT", blobPath(up.urls["state.json"]), { body: "{}" })).status).toBe(200);
      const cancel = async () => expect((await api.call("POST", `/v1/fine_tuning/jobs/${job.id}/cancel`, { token: t.key })).status).toBe(200);
      const list = api.deps.blobs.list;
      api.deps.blobs.list = (prefix) => {
        api.deps.blobs.list = list;
        return (async function* () {
          if (when === "before") await cancel();
          yield* list.call(api.deps.blobs, prefix);
          if (when === "after") await cancel();
        })();
      };
      try {
        const res = await runnerCall(api, `/jobs/${job.id}/checkpoints`, { runner_id: r, attempt: 1, step: 5, metrics: { train_loss: 1 } });
        expect((await expectError(res, 409, "lease_lost")).message).toMatch(/cancelled/);
      } finally {
        api.deps.blobs.list = list;
      }
      expect((await (await api.call("GET", `/v1/fine_tuning/jobs/${job.id}/checkpoints`, { token: t.key })).json()).data).toEqual([]);
      expect((await jobEvents(api, t.key, job.id)).filter((e) => e.message.startsWith("Checkpoint saved"))).toEqual([]);
    }
  });
});

describe("adapter downloads racing the adapter's delete", () => {
  it("answers 404, not 500, to a download or link request whose adapter is deleted between its lookup and reading the file", async () => {
    const api = await fresh();
    await registerMicroLlama(api);
    const t = await api.tenant();
    const upload = async () => {
      const form = new FormData();
      form.set("base_model", "micro-llama");
      for (const name of ["adapter_config.json", "adapter_model.safetensors"]) {
        form.set(name.replace(/\.[a-z]+$/, ""), new Blob([new Uint8Array(await readFile(`${microLlama}/adapter/${name}`))]), name);
      }
      const res = await api.call("POST", "/v1/adapters", { token: t.key, body: form });
      expect(res.status).toBe(201);
      return ((await res.json()) as { id: string }).id;
    };
    const { get, head } = api.deps.blobs;
    // The tenant's DELETE runs to its end while the request is between finding the row and reading the file.
    const deletedFirst = async (id: string, path: string) => {
      const hook =
        <A extends unknown[], R>(f: (...a: A) => Promise<R>) =>
        async (...a: A): Promise<R> => {
          Object.assign(api.deps.blobs, { get, head });
          expect((await api.call("DELETE", `/v1/adapters/${id}`, { token: t.key })).status).toBe(200);
          return f.apply(api.deps.blobs, a);
        };
      Object.assign(api.deps.blobs, { get: hook(get), head: hook(head) });
      try {
        return await api.call("GET", path, { token: t.key });
      } finally {
        Object.assign(api.deps.blobs, { get, head });
      }
    };
    const a = await upload();
    await expectError(await deletedFirst(a, `/v1/adapters/${a}/files/adapter_model.safetensors`), 404, "not_found");
    const b = await upload();
    await expectError(await deletedFirst(b, `/v1/adapters/${b}/files`), 404, "not_found");
  });
});

describe("job heartbeats at once", () => {
  it("writes one metrics event for a step that two heartbeats racing each other report (a retry and its first try)", async () => {
    const api = await fresh();
    const { t, job, r } = await runningJob(api);
    const beat = (step: number) => runnerCall(api, `/jobs/${job.id}/heartbeat`, { runner_id: r, attempt: 1, progress: { step, total_steps: 10, epoch: step / 10, loss: 2 - step / 10 } });
    for (const step of [1, 2]) expect((await Promise.all([beat(step), beat(step), beat(step)])).map((res) => res.status)).toEqual([200, 200, 200]);
    expect((await jobEvents(api, t.key, job.id)).filter((e) => e.type === "metrics").map((e) => e.data?.step)).toEqual([2, 1]);
  });
});

describe("an expired Idempotency-Key forgotten while it is claimed again", () => {
  it("claims the key anew instead of answering 409 'still running' for a request that no longer exists", async () => {
    const api = await fresh();
    const t = await api.tenant();
    const { db } = api.deps;
    const ref = { tenantId: t.id, key: "reused", hash: "h", now: api.deps.now() };
    expect(await claimKey(db, { ...ref, requestId: "req_first" })).toEqual({ kind: "run" });
    const mine = and(eq(idempotencyKeys.tenantId, t.id), eq(idempotencyKeys.key, "reused"));
    await db.update(idempotencyKeys).set({ state: "done", result: JSON.stringify({ id: "x" }) }).where(mine);
    // A day later the key is claimed again; between finding it taken and renewing it, another request's
    // clean-up of the tenant's expired keys deletes it.
    const later = ref.now + KEY_TTL_SECONDS + 60;
    const update = db.update.bind(db);
    let forgotten = false;
    const racing = new Proxy(db, {
      get(target, prop, receiver) {
        if (prop !== "update") return Reflect.get(target, prop, receiver);
        return (table: typeof idempotencyKeys) => {
          const builder = update(table);
          if (forgotten) return builder;
          forgotten = true;
          const set = builder.set.bind(builder);
          builder.set = ((values: never) => {
            const query = set(values);
            const then = query.then.bind(query);
            query.then = ((ok: never, fail: never) => db.delete(idempotencyKeys).where(mine).then(() => then(ok, fail))) as typeof query.then;
            return query;
          }) as typeof builder.set;
          return builder;
        };
      },
    });
    expect(await claimKey(racing, { ...ref, requestId: "req_second", now: later })).toEqual({ kind: "run" });
    expect(forgotten).toBe(true);
    const [row] = await db.select().from(idempotencyKeys).where(mine);
    expect(row).toMatchObject({ state: "running", requestId: "req_second" });
  });
});

describe("tenant writes at once", () => {
  async function adapterForm() {
    const form = new FormData();
    form.set("base_model", "micro-llama");
    for (const name of ["adapter_config.json", "adapter_model.safetensors"]) {
      form.set(name.replace(/\.[a-z]+$/, ""), new Blob([new Uint8Array(await readFile(`${microLlama}/adapter/${name}`))]), name);
    }
    return form;
  }

  it("keeps one API key of a tenant whose keys all revoke themselves at once, and answers each revoke 200 or 409", async () => {
    const api = await fresh();
    const t = await api.tenant();
    const secrets = [t.key];
    for (let i = 0; i < 3; i++) secrets.push(((await (await api.call("POST", "/v1/api_keys", { token: t.key, json: { name: `k${i}` } })).json()) as { key: string }).key);
    const own = await Promise.all(secrets.map(async (secret) => ((await (await api.call("GET", "/v1/api_keys", { token: secret })).json()) as { data: { id: string; prefix: string }[] }).data.find((k) => secret.startsWith(k.prefix))!.id));
    // Each request is authenticated with the key it revokes, so none is refused for a key another one revoked.
    const answers = await Promise.all(own.map((id, i) => api.call("DELETE", `/v1/api_keys/${id}`, { token: secrets[i] })));
    expect(answers.map((r) => r.status).sort()).toEqual([200, 200, 200, 409]);
    const rows = await api.deps.db.query.apiKeys.findMany({ where: (k, { eq: is }) => is(k.tenantId, t.id) });
    expect(rows.filter((k) => k.revokedAt === null)).toHaveLength(1);
  });

  it("deletes a file, a model and an adapter once when each is deleted three times at once: one 200, the rest 404", async () => {
    const api = await fresh();
    await registerMicroLlama(api);
    const t = await tenantWithFile(api);
    const thrice = (path: string) => Promise.all([0, 1, 2].map(() => api.call("DELETE", path, { token: t.key })));
    expect((await thrice(`/v1/files/${t.fileId}`)).map((r) => r.status).sort()).toEqual([200, 404, 404]);
    for (const of of ["model", "id"] as const) {
      const up = (await (await api.call("POST", "/v1/adapters", { token: t.key, body: await adapterForm() })).json()) as { id: string; model: string };
      const path = of === "model" ? `/v1/models/${encodeURIComponent(up.model)}` : `/v1/adapters/${up.id}`;
      expect((await thrice(path)).map((r) => r.status).sort()).toEqual([200, 404, 404]);
    }
    const billed = (await (await api.call("GET", `/admin/v1/usage/events?tenant_id=${t.id}&limit=100`, { token: api.admin })).json()).data as { id: string }[];
    expect(new Set(billed.map((e) => e.id)).size).toBe(billed.length);
  });

  it("keeps max_adapters when uploads race past it: the ones written past the limit are withdrawn (429), none is a 500", async () => {
    const api = await fresh({ TUNESERVE_MAX_ADAPTERS: "2" });
    await registerMicroLlama(api);
    const t = await api.tenant();
    const forms = await Promise.all([0, 1, 2, 3, 4].map(() => adapterForm()));
    const answers = await Promise.all(forms.map((body) => api.call("POST", "/v1/adapters", { token: t.key, body })));
    const statuses = answers.map((r) => r.status).sort();
    expect(statuses.filter((s) => s !== 201 && s !== 429)).toEqual([]);
    expect(statuses.filter((s) => s === 201)).toHaveLength(2);
    expect((await (await api.call("GET", "/v1/adapters", { token: t.key })).json()).data).toHaveLength(2);
  });
});
