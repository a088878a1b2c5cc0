// Uploads retried with an Idempotency-Key: the retry gets the first upload's object (201, Idempotent-Replayed)
// and no second copy is stored; a failed upload leaves the key free; a key is not shared across endpoints; an
// upload that stalled until a retry took its key over keeps nothing (the retry's object is the one).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Db } from "../../../api/src/db/client.js";
import { files, idempotencyKeys } from "../../../api/src/db/schema.js";
import { blobCount, expectError, startTestApi, type TestApi } from "../../helpers/api.js";
import { failReadsAfterInsert } from "../../helpers/failing-db.js";
import { chatLines, microLlamaAdapterForm, registerMicroLlama } from "../../helpers/jobs.js";
import { stalledBody, stallNextCall } from "../../helpers/stall.js";

let api: TestApi;
beforeAll(async () => {
  api = await startTestApi();
  await registerMicroLlama(api);
});
afterAll(() => api.close());

function fileForm(content: string) {
  const f = new FormData();
  f.append("purpose", "fine-tune");
  f.append("file", new Blob([content], { type: "application/jsonl" }), "train.jsonl");
  return f;
}
const post = (token: string, path: string, body: FormData, key: string) => api.call("POST", path, { token, body, headers: { "Idempotency-Key": key } });
/**
 * `db` whose write of an Idempotency-Key's answer ("done") fails as a real write would (a NOT NULL column set to
 * null), alone or inside a batch; every other statement, marking a key incomplete included, goes through.
 */
function failingKeyAnswers(db: Db): Db {
  return new Proxy(db, {
    get(target, prop) {
      if (prop === "update") {
        return (table: unknown) => {
          const update = db.update(table as typeof idempotencyKeys);
          if (table !== idempotencyKeys) return update;
          return { set: (v: { state?: string }) => update.set(v.state === "done" ? { ...v, requestHash: null as unknown as string } : v) };
        };
      }
      const v = Reflect.get(target, prop, target) as unknown;
      return typeof v === "function" ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
}
/** A form as the bytes a client sends, with its Content-Type (the multipart boundary). */
async function formBytes(form: FormData) {
  const req = new Request("http://localhost/", { method: "POST", body: form });
  return { bytes: new Uint8Array(await req.arrayBuffer()), type: req.headers.get("Content-Type")! };
}
const ids = async (token: string, path: string) => ((await (await api.call("GET", path, { token })).json()) as { data: { id: string }[] }).data.map((o) => o.id);
const count = async (token: string, path: string) => ((await (await api.call("GET", path, { token })).json()) as { data: unknown[] }).data.length;

describe("uploads under an Idempotency-Key", () => {
  it("stores a retried file upload once and answers the retry with the first file", async () => {
    const t = await api.tenant("files-idem");
    const first = await post(t.key, "/v1/files", fileForm(chatLines(3)), "up-1");
    expect(first.status).toBe(201);
    expect(first.headers.get("Idempotent-Replayed")).toBeNull();
    const file = await first.json();
    const again = await post(t.key, "/v1/files", fileForm(chatLines(3)), "up-1");
    expect(again.status).toBe(201);
    expect(again.headers.get("Idempotent-Replayed")).toBe("true");
    expect(await again.json()).toEqual(file);
    expect(await count(t.key, "/v1/files")).toBe(1);
    // Deleted since: the key cannot bring it back.
    expect((await api.call("DELETE", `/v1/files/${file.id}`, { token: t.key })).status).toBe(200);
    expect((await expectError(await post(t.key, "/v1/files", fileForm(chatLines(3)), "up-1"), 404, "not_found")).param).toBe("Idempotency-Key");
  });

  it("removes a file whose quota re-check failed after its insert, so the retry under its key stores it once", async () => {
    const t = await api.tenant("files-recheck-fails");
    // The database answers the insert, then fails the next read (the re-check of TUNESERVE_MAX_FILES): the
    // client gets a 500 and retries with its key, which is free again; the first row must not stay behind too.
    const realDb = api.deps.db;
    const failing = failReadsAfterInsert(realDb, files);
    api.deps.db = failing.db;
    const failed = await post(t.key, "/v1/files", fileForm(chatLines(3)), "up-recheck");
    api.deps.db = realDb;
    expect(failing.inserted()).toBe(true);
    expect(failed.status).toBe(500);
    expect(await count(t.key, "/v1/files")).toBe(0);
    expect(await blobCount(api, `tenants/${t.id}/`)).toBe(0);
    const retry = await post(t.key, "/v1/files", fileForm(chatLines(3)), "up-recheck");
    expect(retry.status).toBe(201);
    expect(await count(t.key, "/v1/files")).toBe(1);
    expect(await blobCount(api, `tenants/${t.id}/`)).toBe(1);
  });

  it("keeps no file when recording the key's answer fails, so the retry under its key stores it once", async () => {
    const t = await api.tenant("files-answer-fails");
    const realDb = api.deps.db;
    api.deps.db = failingKeyAnswers(realDb);
    const failed = await post(t.key, "/v1/files", fileForm(chatLines(3)), "up-answer");
    api.deps.db = realDb;
    expect(failed.status).toBe(500);
    expect(await count(t.key, "/v1/files")).toBe(0);
    expect(await blobCount(api, `tenants/${t.id}/`)).toBe(0);
    const retry = await post(t.key, "/v1/files", fileForm(chatLines(3)), "up-answer");
    expect(retry.status).toBe(201);
    expect(retry.headers.get("Idempotent-Replayed")).toBeNull();
    expect(await count(t.key, "/v1/files")).toBe(1);
    expect(await blobCount(api, `tenants/${t.id}/`)).toBe(1);
    expect((await post(t.key, "/v1/files", fileForm(chatLines(3)), "up-answer")).headers.get("Idempotent-Replayed")).toBe("true");
  });

  it("lets a failed upload be retried under the same key, and keeps keys per tenant and per endpoint", async () => {
    const t = await api.tenant("files-idem-2");
    await expectError(await post(t.key, "/v1/files", fileForm("not json\n"), "up-2"), 400, "invalid_file");
    const ok = await post(t.key, "/v1/files", fileForm(chatLines(2)), "up-2");
    expect(ok.status).toBe(201);
    expect(ok.headers.get("Idempotent-Replayed")).toBeNull();
    // Another tenant's same key is its own.
    const other = await api.tenant("files-idem-3");
    expect((await post(other.key, "/v1/files", fileForm(chatLines(2)), "up-2")).headers.get("Idempotent-Replayed")).toBeNull();
    // The key of a file upload cannot name an adapter upload.
    expect((await expectError(await post(t.key, "/v1/adapters", microLlamaAdapterForm(), "up-2"), 400, "invalid_request")).param).toBe("Idempotency-Key");
  });

  it("stores a retried adapter upload once", async () => {
    const t = await api.tenant("adapters-idem");
    const first = await post(t.key, "/v1/adapters", microLlamaAdapterForm(), "ad-1");
    expect(first.status).toBe(201);
    const adapter = await first.json();
    const again = await post(t.key, "/v1/adapters", microLlamaAdapterForm(), "ad-1");
    expect(again.headers.get("Idempotent-Replayed")).toBe("true");
    expect(await again.json()).toEqual(adapter);
    expect(await count(t.key, "/v1/adapters")).toBe(1);
    // An adapter upload is compared by its fields and file hashes: another one under the key is refused.
    expect((await expectError(await post(t.key, "/v1/adapters", microLlamaAdapterForm("other"), "ad-1"), 400, "invalid_request")).param).toBe("Idempotency-Key");
  });

  it("keeps no adapter when recording the key's answer fails, so the retry under its key stores it once", async () => {
    const t = await api.tenant("adapters-answer-fails");
    const realDb = api.deps.db;
    api.deps.db = failingKeyAnswers(realDb);
    const failed = await post(t.key, "/v1/adapters", microLlamaAdapterForm(), "ad-answer");
    api.deps.db = realDb;
    expect(failed.status).toBe(500);
    expect(await count(t.key, "/v1/adapters")).toBe(0);
    expect(await blobCount(api, `tenants/${t.id}/`)).toBe(0);
    const retry = await post(t.key, "/v1/adapters", microLlamaAdapterForm(), "ad-answer");
    expect(retry.status).toBe(201);
    expect(retry.headers.get("Idempotent-Replayed")).toBeNull();
    expect(await count(t.key, "/v1/adapters")).toBe(1);
    expect((await post(t.key, "/v1/adapters", microLlamaAdapterForm(), "ad-answer")).headers.get("Idempotent-Replayed")).toBe("true");
  });

  it("keeps no file of an upload that stalled until a retry took its key over, and answers it 409", async () => {
    const t = await api.tenant("files-takeover");
    const { bytes, type } = await formBytes(fileForm(chatLines(3)));
    // Attempt A claims the key, then its client stalls halfway through the file.
    const stalled = stalledBody(bytes, bytes.length >> 1);
    const first = api.call("POST", "/v1/files", { token: t.key, body: stalled.body, headers: { "Idempotency-Key": "up-stale", "Content-Type": type } });
    await stalled.reached;
    await expectError(await post(t.key, "/v1/files", fileForm(chatLines(3)), "up-stale"), 409, "conflict");
    api.advance(61); // past STALE_RUNNING_SECONDS with no heartbeat: the retry takes the key over
    const retry = await post(t.key, "/v1/files", fileForm(chatLines(3)), "up-stale");
    expect(retry.status).toBe(201);
    const file = await retry.json();
    stalled.release();
    expect((await expectError(await first, 409, "conflict")).param).toBe("Idempotency-Key");
    expect(await ids(t.key, "/v1/files")).toEqual([file.id]);
    expect(await blobCount(api, `tenants/${t.id}/`)).toBe(1);
    expect(await (await post(t.key, "/v1/files", fileForm(chatLines(3)), "up-stale")).json()).toEqual(file);
  });

  it("keeps no adapter of an upload that stalled until a retry took its key over, and answers it 409", async () => {
    const t = await api.tenant("adapters-takeover");
    // Attempt A has stored its files and claimed the key; the batch writing its row then stalls (a slow database).
    const stall = stallNextCall(api.deps.db as unknown as { batch(...a: unknown[]): Promise<unknown> }, "batch");
    const first = post(t.key, "/v1/adapters", microLlamaAdapterForm(), "ad-stale");
    await stall.reached;
    api.advance(61);
    const retry = await post(t.key, "/v1/adapters", microLlamaAdapterForm(), "ad-stale");
    expect(retry.status).toBe(201);
    const adapter = await retry.json();
    stall.release();
    expect((await expectError(await first, 409, "conflict")).param).toBe("Idempotency-Key");
    expect(await ids(t.key, "/v1/adapters")).toEqual([adapter.id]);
    expect(await blobCount(api, `tenants/${t.id}/`)).toBe(2); // the retry's adapter_config.json and weights
    expect((await (await post(t.key, "/v1/adapters", microLlamaAdapterForm(), "ad-stale")).json()).id).toBe(adapter.id);
  });
});
