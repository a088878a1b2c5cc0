// GET /internal/v1/models/{model_id}/files: the base model's presigned GET URLs a runner downloads to serve a
// blob-prefix model without a lease — runner token only, the envelope for unknown models, the lease's file set.
import { readFile, readdir } from "node:fs/promises";
import { afterEach, describe, expect, it } from "vitest";
import { expectError, startTestApi, type TestApi } from "../../helpers/api.js";
import { blobPath, createJob, microLlamaFolder, microLlamaSource, registerMicroLlama, registerRunner, runnerCall, tenantWithFile } from "../../helpers/jobs.js";

const open: TestApi[] = [];
afterEach(async () => {
  while (open.length) await open.pop()!.close();
});

/** An API with micro-llama's files (microLlamaFolder: config and tokenizer, no weights) in the blob store under models/blob-llama/, registered as base model blob-llama. */
async function apiWithBlobModel(): Promise<{ api: TestApi; files: Record<string, Uint8Array> }> {
  const api = await startTestApi();
  open.push(api);
  const files: Record<string, Uint8Array> = {};
  const folder = await microLlamaFolder();
  for (const name of await readdir(folder)) {
    files[name] = new Uint8Array(await readFile(`${folder}/${name}`));
    await api.deps.blobs.put(`models/blob-llama/${name}`, files[name]);
  }
  const res = await api.call("POST", "/admin/v1/models", { token: api.admin, json: { id: "blob-llama", source: "blob:models/blob-llama/" } });
  expect(res.status, await res.clone().text()).toBe(201);
  return { api, files };
}

const modelFiles = (api: TestApi, id: string, token = api.runner) => api.call("GET", `/internal/v1/models/${id}/files`, { token });

describe("GET /internal/v1/models/{model_id}/files", () => {
  it("needs the runner token", async () => {
    const { api } = await apiWithBlobModel();
    const t = await api.tenant();
    await expectError(await api.call("GET", "/internal/v1/models/blob-llama/files"), 401, "unauthorized");
    await expectError(await modelFiles(api, "blob-llama", t.key), 401, "unauthorized");
    await expectError(await modelFiles(api, "blob-llama", api.admin), 401, "unauthorized");
  });

  it("answers 404 with the error envelope for a model the API does not know", async () => {
    const { api } = await apiWithBlobModel();
    const err = await expectError(await modelFiles(api, "ghost"), 404, "not_found");
    expect(err).toMatchObject({ message: "base model 'ghost' not found", param: "model_id" });
    expect(err.request_id).toBeTruthy();
  });

  it("hands out URLs that download every file under the model's prefix, the same files a lease gives", async () => {
    const { api, files } = await apiWithBlobModel();
    const presign = api.deps.config.TUNESERVE_PRESIGN_SECONDS;
    const t0 = api.deps.now();
    const res = await modelFiles(api, "blob-llama");
    const t1 = api.deps.now();
    expect(res.status).toBe(200);
    const body = (await res.json()) as { id: string; source: string; expires_at: number; files: Record<string, string> };
    expect(body).toMatchObject({ id: "blob-llama", source: "blob:models/blob-llama/" });
    // The presign lifetime from the moment the API answered, which lies between t0 and t1.
    expect(body.expires_at).toBeGreaterThanOrEqual(t0 + presign);
    expect(body.expires_at).toBeLessThanOrEqual(t1 + presign);
    expect(Object.keys(body.files).sort()).toEqual(Object.keys(files).sort());
    for (const [name, url] of Object.entries(body.files)) {
      const got = await api.call("GET", blobPath(url));
      expect(got.status).toBe(200);
      expect(new Uint8Array(await got.arrayBuffer())).toEqual(files[name]);
    }

    const t = await tenantWithFile(api);
    await createJob(api, t.key, { model: "blob-llama", training_file: t.fileId });
    const runner = await registerRunner(api, "trainer", ["blob-llama"]);
    const lease = (await (await runnerCall(api, "/jobs/lease", { runner_id: runner })).json()) as { urls: { base_model: { files: Record<string, string> } } };
    expect(Object.keys(lease.urls.base_model.files).sort()).toEqual(Object.keys(body.files).sort());
  });

  it("names the files' revision, the lease's too, which changes only when a file is replaced, added or removed", async () => {
    const { api, files } = await apiWithBlobModel();
    const revision = async () => ((await (await modelFiles(api, "blob-llama")).json()) as { revision: string }).revision;
    const first = await revision();
    expect(first).toMatch(/^[0-9a-f]{32}$/);
    expect(await revision()).toBe(first);

    const t = await tenantWithFile(api);
    await createJob(api, t.key, { model: "blob-llama", training_file: t.fileId });
    const runner = await registerRunner(api, "trainer", ["blob-llama"]);
    const lease = (await (await runnerCall(api, "/jobs/lease", { runner_id: runner })).json()) as { urls: { base_model: { revision: string } } };
    expect(lease.urls.base_model.revision).toBe(first);

    // Re-uploaded under the same name with other bytes of the same length: the operator replaced the model.
    const replaced = new Uint8Array(files["config.json"]);
    replaced[replaced.length - 1] ^= 1;
    await api.deps.blobs.put("models/blob-llama/config.json", replaced);
    const second = await revision();
    expect(second).not.toBe(first);
    await api.deps.blobs.put("models/blob-llama/extra.txt", "x");
    const third = await revision();
    expect(third).not.toBe(second);
    await api.deps.blobs.delete("models/blob-llama/extra.txt");
    expect(await revision()).not.toBe(third);

    await registerMicroLlama(api);
    expect(await (await modelFiles(api, "micro-llama")).json()).toMatchObject({ files: null, revision: null });
  });

  it("lists each file's size and version, which its URL answers as the ETag and checks as If-Match (412 once replaced)", async () => {
    const { api, files } = await apiWithBlobModel();
    type Listing = { files: Record<string, string>; objects: Record<string, { size: number; version: string | null }> };
    const listing = async () => (await (await modelFiles(api, "blob-llama")).json()) as Listing;
    const before = await listing();
    expect(Object.keys(before.objects).sort()).toEqual(Object.keys(files).sort());
    for (const [name, o] of Object.entries(before.objects)) {
      expect(o).toEqual({ size: files[name].length, version: expect.any(String) });
      const got = await api.call("GET", blobPath(before.files[name]), { headers: { "if-match": `"${o.version}"` } });
      expect(got.status).toBe(200);
      expect(got.headers.get("etag")).toBe(`"${o.version}"`);
      await got.arrayBuffer();
    }
    await api.deps.blobs.put("models/blob-llama/config.json", "{}");
    const stale = await api.call("GET", blobPath(before.files["config.json"]), { headers: { "if-match": `"${before.objects["config.json"].version}"` } });
    const err = await expectError(stale, 412, "precondition_failed");
    expect(err.message).toMatch(/models\/blob-llama\/config\.json.*replaced/);
    const after = await listing();
    expect(after.objects["config.json"]).toEqual({ size: 2, version: expect.any(String) });
    expect(after.objects["config.json"].version).not.toBe(before.objects["config.json"].version);

    const t = await tenantWithFile(api);
    await createJob(api, t.key, { model: "blob-llama", training_file: t.fileId });
    const runner = await registerRunner(api, "trainer", ["blob-llama"]);
    const lease = (await (await runnerCall(api, "/jobs/lease", { runner_id: runner })).json()) as { urls: { base_model: Listing } };
    expect(lease.urls.base_model.objects).toEqual(after.objects);
  });

  it("answers files: null for a local-folder model, and 404 naming the prefix when the blob files are gone", async () => {
    const { api } = await apiWithBlobModel();
    await registerMicroLlama(api);
    const local = (await (await modelFiles(api, "micro-llama")).json()) as { files: unknown; source: string };
    expect(local).toMatchObject({ files: null, source: microLlamaSource });

    await api.deps.blobs.deletePrefix("models/blob-llama/");
    const err = await expectError(await modelFiles(api, "blob-llama"), 404, "not_found");
    expect(err.message).toMatch(/has no files under blob:models\/blob-llama\//);
  });
});
