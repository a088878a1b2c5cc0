// TUNESERVE_MAX_FILE_BYTES_PER_TENANT: the bytes of training files a tenant keeps, so that one API key cannot
// fill the blob store with up to TUNESERVE_MAX_FILES files of TUNESERVE_MAX_FILE_BYTES each. An upload that
// would pass it is refused (429, naming the limit and the bytes in use) and leaves nothing; deleting frees room.
import { eq } from "drizzle-orm";
import { readdir } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { files } from "../../../api/src/db/schema.js";
import { fileQuotaOverrun } from "../../../api/src/quotas/limits.js";
import { blobCount, expectError, startTestApi, type TestApi } from "../../helpers/api.js";
import { chatLines, uploadFile } from "../../helpers/jobs.js";

const LIMIT = 2000;
let api: TestApi;
beforeAll(async () => {
  api = await startTestApi({ TUNESERVE_MAX_FILE_BYTES_PER_TENANT: String(LIMIT) });
});
afterAll(() => api.close());

const sizeOf = (s: string) => new TextEncoder().encode(s).length;
const ten = chatLines(10);

function form(content: string): FormData {
  const f = new FormData();
  f.append("purpose", "fine-tune");
  f.append("file", new Blob([content], { type: "application/jsonl" }), "train.jsonl");
  return f;
}
const upload = (key: string, content: string) => api.call("POST", "/v1/files", { token: key, body: form(content) });
/** Every file the local store holds for the tenant's uploads, half-written ones included. */
const storedFiles = (tenant: string) => readdir(join(api.dataDir, "blobs", "tenants", tenant, "files")).catch(() => []);

describe("TUNESERVE_MAX_FILE_BYTES_PER_TENANT", () => {
  it("refuses an upload that would pass the tenant's stored bytes, storing nothing, until files are deleted", async () => {
    expect(2 * sizeOf(ten)).toBeLessThan(LIMIT);
    expect(3 * sizeOf(ten)).toBeGreaterThan(LIMIT);
    const t = await api.tenant("bytes");
    const first = await uploadFile(api, t.key, ten);
    await uploadFile(api, t.key, ten);
    const used = 2 * sizeOf(ten);

    // Streamed (an in-process FormData body has no Content-Length): cut once it passes the room left.
    const err = await expectError(await upload(t.key, ten), 429, "quota_exceeded");
    expect(err.message).toContain("TUNESERVE_MAX_FILE_BYTES_PER_TENANT");
    expect(err.message).toContain(`${used} bytes`);
    expect(err.message).toContain(`${LIMIT}`);
    expect(err.message).toContain("DELETE /v1/files/{file_id}");
    expect(await storedFiles(t.id)).toHaveLength(2);
    expect((await (await api.call("GET", "/v1/files", { token: t.key })).json()).data).toHaveLength(2);

    // A declared Content-Length far over the room left is refused before the body is read.
    const big = new Response(form(chatLines(1000)));
    const bytes = new Uint8Array(await big.arrayBuffer());
    const declared = await api.call("POST", "/v1/files", { token: t.key, body: bytes, headers: { "Content-Type": big.headers.get("Content-Type")!, "Content-Length": String(bytes.length) } });
    expect((await expectError(declared, 429, "quota_exceeded")).message).toContain("TUNESERVE_MAX_FILE_BYTES_PER_TENANT");
    expect(await storedFiles(t.id)).toHaveLength(2);

    // What still fits is taken.
    expect((await upload(t.key, chatLines(2))).status).toBe(201);

    // Deleting a file frees its bytes.
    expect((await api.call("DELETE", `/v1/files/${first}`, { token: t.key })).status).toBe(200);
    expect((await upload(t.key, ten)).status).toBe(201);
  });

  it("refuses any upload once the tenant's files fill the limit, and counts each tenant's bytes apart", async () => {
    const a = await api.tenant("full");
    const b = await api.tenant("other");
    await uploadFile(api, a.key, ten);
    await uploadFile(api, a.key, ten);
    // As if the two were larger: together they take the whole limit.
    await api.deps.db.update(files).set({ bytes: LIMIT / 2 }).where(eq(files.tenantId, a.id));
    const err = await expectError(await upload(a.key, chatLines(1)), 429, "quota_exceeded");
    expect(err.message).toContain(`${LIMIT} bytes`);
    expect((await upload(b.key, ten)).status).toBe(201);
  });

  it("withdraws, of uploads that raced past the limit, the one written after it was reached", async () => {
    const t = await api.tenant("race");
    const id = await uploadFile(api, t.key, ten);
    // A second row written as if its upload had passed the check at the same time as the first's.
    await api.deps.db.insert(files).values({ id: "file-0zzzzzzzzzzzzzzzzzzzzzzz", tenantId: t.id, filename: "x.jsonl", purpose: "fine-tune", format: "chat", lines: 1, bytes: LIMIT - 1, sha256: "0", blobKey: "k", createdAt: 0 });
    const auth = { tenantId: t.id, keyId: "k", quotas: { maxActiveJobs: null, maxAdapters: null, monthlyTokens: null, requestsPerMinute: null } };
    expect(await fileQuotaOverrun(api.deps, auth, id)).toBeNull();
    const over = await fileQuotaOverrun(api.deps, auth, "file-0zzzzzzzzzzzzzzzzzzzzzzz");
    expect(over?.code).toBe("quota_exceeded");
    expect(over?.message).toContain(`${sizeOf(ten)} bytes`);
    expect(over?.message).toContain("TUNESERVE_MAX_FILE_BYTES_PER_TENANT");
  });

  it("takes 0 as no limit", async () => {
    const unlimited = await startTestApi({ TUNESERVE_MAX_FILE_BYTES_PER_TENANT: "0" });
    try {
      const t = await unlimited.tenant();
      expect(await uploadFile(unlimited, t.key, ten)).toMatch(/^file-/);
      expect(await blobCount(unlimited, `tenants/${t.id}/files/`)).toBe(1);
    } finally {
      await unlimited.close();
    }
  });
});
