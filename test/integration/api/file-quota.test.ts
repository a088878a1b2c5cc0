// TUNESERVE_MAX_FILES: a tenant keeps at most that many uploaded training files, so one API key cannot fill the
// blob store with uploads; deleting one makes room, and other tenants are not affected.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { blobCount, expectError, startTestApi, type TestApi } from "../../helpers/api.js";
import { chatLines, uploadFile } from "../../helpers/jobs.js";
import { fileQuotaOverrun } from "../../../api/src/quotas/limits.js";

let api: TestApi;
beforeAll(async () => {
  api = await startTestApi({ TUNESERVE_MAX_FILES: "2" });
});
afterAll(() => api.close());

function upload(key: string) {
  const form = new FormData();
  form.append("purpose", "fine-tune");
  form.append("file", new Blob([chatLines(2)], { type: "application/jsonl" }), "train.jsonl");
  return api.call("POST", "/v1/files", { token: key, body: form });
}

describe("TUNESERVE_MAX_FILES", () => {
  it("refuses an upload past the tenant's file limit with 429, storing nothing, until a file is deleted", async () => {
    const t = await api.tenant("files");
    const first = await uploadFile(api, t.key);
    await uploadFile(api, t.key);
    const err = await expectError(await upload(t.key), 429, "quota_exceeded");
    expect(err.message).toContain("2 training files");
    expect(err.message).toContain("DELETE /v1/files/{file_id}");
    expect(await blobCount(api, `tenants/${t.id}/files/`)).toBe(2);
    expect((await (await api.call("GET", "/v1/files", { token: t.key })).json()).data).toHaveLength(2);
    expect((await api.call("DELETE", `/v1/files/${first}`, { token: t.key })).status).toBe(200);
    expect((await upload(t.key)).status).toBe(201);
  });

  it("counts each tenant's files apart", async () => {
    const a = await api.tenant("a");
    const b = await api.tenant("b");
    await uploadFile(api, a.key);
    await uploadFile(api, a.key);
    expect((await upload(b.key)).status).toBe(201);
  });

  it("withdraws, of uploads that raced past the limit, those written after it was reached", async () => {
    const t = await api.tenant("race");
    const ids = [await uploadFile(api, t.key), await uploadFile(api, t.key)];
    // A third row written as if its upload had passed the check at the same time as the second.
    const { files } = await import("../../../api/src/db/schema.js");
    await api.deps.db.insert(files).values({ id: "file-0zzzzzzzzzzzzzzzzzzzzzzz", tenantId: t.id, filename: "x.jsonl", purpose: "fine-tune", format: "chat", lines: 1, bytes: 1, sha256: "0", blobKey: "k", createdAt: 0 });
    const auth = { tenantId: t.id, keyId: "k", quotas: { maxActiveJobs: null, maxAdapters: null, monthlyTokens: null, requestsPerMinute: null } };
    expect(await fileQuotaOverrun(api.deps, auth, ids[1])).toBeNull();
    expect((await fileQuotaOverrun(api.deps, auth, "file-0zzzzzzzzzzzzzzzzzzzzzzz"))?.code).toBe("quota_exceeded");
  });
});
