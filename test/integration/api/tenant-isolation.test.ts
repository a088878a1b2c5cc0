// Another tenant's objects, reached from the places not covered beside each route: job pause and resume, a job
// that names another tenant's validation file or fine-tuned model, a list cursor that is another tenant's id,
// an adapter's presigned links, and an uploaded adapter's model used for chat. Each answers 404 (never 403)
// and changes nothing of the owner's.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { expectError, startTestApi, type TestApi } from "../../helpers/api.js";
import { blobPath, createJob, microLlamaAdapterForm, registerMicroLlama, tenantWithFile } from "../../helpers/jobs.js";

let api: TestApi;
beforeAll(async () => {
  api = await startTestApi();
  await registerMicroLlama(api);
});
afterAll(() => api.close());

async function uploadAdapter(key: string) {
  const f = microLlamaAdapterForm();
  const res = await api.call("POST", "/v1/adapters", { token: key, body: f });
  expect(res.status).toBe(201);
  return (await res.json()) as { id: string; model: string };
}

describe("tenant isolation across routes", () => {
  it("keeps another tenant's jobs, files and models out of reach", async () => {
    const a = await tenantWithFile(api, "a");
    const b = await tenantWithFile(api, "b");
    const job = await createJob(api, a.key, { training_file: a.fileId });
    for (const action of ["pause", "resume"]) {
      await expectError(await api.call("POST", `/v1/fine_tuning/jobs/${job.id}/${action}`, { token: b.key }), 404, "not_found");
    }
    expect((await (await api.call("GET", `/v1/fine_tuning/jobs/${job.id}`, { token: a.key })).json()).status).toBe("queued");

    const create = (json: Record<string, unknown>) => api.call("POST", "/v1/fine_tuning/jobs", { token: b.key, json: { model: "micro-llama", training_file: b.fileId, ...json } });
    expect((await expectError(await create({ validation_file: a.fileId }), 404, "not_found")).param).toBe("validation_file");
    const adapter = await uploadAdapter(a.key);
    expect((await expectError(await create({ model: adapter.model }), 404, "not_found")).param).toBe("model");
    const chat = await api.call("POST", "/v1/chat/completions", { token: b.key, json: { model: adapter.model, messages: [{ role: "user", content: "hi" }] } });
    expect((await expectError(chat, 404, "not_found")).param).toBe("model");
    await expectError(await api.call("GET", `/v1/adapters/${adapter.id}/files`, { token: b.key }), 404, "not_found");
    await expectError(await api.call("DELETE", `/v1/models/${encodeURIComponent(adapter.model)}`, { token: b.key }), 404, "not_found");

    // A cursor that is another tenant's id pages the caller's own list only.
    const later = await createJob(api, b.key, { training_file: b.fileId });
    const page = await (await api.call("GET", `/v1/fine_tuning/jobs?after=${later.id}`, { token: b.key })).json();
    expect(page.data).toEqual([]);
    const files = await (await api.call("GET", `/v1/files?after=${later.id.replace("ftjob-", "file-")}`, { token: b.key })).json();
    expect(files.data.map((f: { id: string }) => f.id)).toEqual([b.fileId]);
  });

  it("ties a presigned adapter link to its one object: it reads no other key, and cannot write", async () => {
    const a = await tenantWithFile(api, "links-a");
    const b = await tenantWithFile(api, "links-b");
    const adapterA = await uploadAdapter(a.key);
    const adapterB = await uploadAdapter(b.key);
    const links = (await (await api.call("GET", `/v1/adapters/${adapterA.id}/files`, { token: a.key })).json()).data as { name: string; url: string }[];
    const config = blobPath(links.find((l) => l.name === "adapter_config.json")!.url);
    expect((await api.call("GET", config)).status).toBe(200);
    const swapped = [config.replace(adapterA.id, adapterB.id).replace(a.id, b.id), config.replace("adapter_config.json", "adapter_model.safetensors"), config.replace(`adapters/${adapterA.id}`, `files/${a.fileId}`)];
    for (const path of swapped) await expectError(await api.call("GET", path), 403, "forbidden");
    await expectError(await api.call("PUT", config, { body: "{}" }), 403, "forbidden");
    await expectError(await api.call("PUT", config.replace("method=GET", "method=PUT"), { body: "{}" }), 403, "forbidden");
  });
});
