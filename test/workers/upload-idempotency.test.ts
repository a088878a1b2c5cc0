// A file upload retried with an Idempotency-Key on D1: the row and the key's answer are written in one D1
// batch (lib/upload-once.ts), and the retry is answered with the first file instead of storing a second; an
// upload that stalled until a retry took its key over deletes its row in that batch (the conditional delete runs
// on D1 as on SQLite), answering 409, and keeps no blob.
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { stalledBody } from "../helpers/stall.js";
import { call, expectError, origin, tenant } from "./helpers.js";

function fileForm() {
  const form = new FormData();
  form.append("purpose", "fine-tune");
  form.append("file", new Blob(['{"messages":[{"role":"user","content":"hi"},{"role":"assistant","content":"hello"}]}\n'], { type: "application/jsonl" }), "train.jsonl");
  return form;
}

describe("worker: uploads under an Idempotency-Key on D1", () => {
  it("stores a retried file upload once and replays the first file", async () => {
    const t = await tenant("files-idem-d1");
    const post = () => call("POST", "/v1/files", { token: t.key, body: fileForm(), headers: { "Idempotency-Key": "w-file-1" } });
    const first = await post();
    expect(first.status).toBe(201);
    const again = await post();
    expect(again.status).toBe(201);
    expect(again.headers.get("Idempotent-Replayed")).toBe("true");
    expect(((await again.json()) as { id: string }).id).toBe(((await first.json()) as { id: string }).id);
    const list = (await (await call("GET", "/v1/files", { token: t.key })).json()) as { data: unknown[] };
    expect(list.data).toHaveLength(1);
  });

  it("keeps no file of an upload that stalled until a retry took its key over, and answers it 409", async () => {
    const t = await tenant("files-takeover-d1");
    const whole = new Request(origin, { method: "POST", body: fileForm() });
    const bytes = new Uint8Array(await whole.arrayBuffer());
    // Attempt A claims the key, then its client stalls halfway through the file.
    const stalled = stalledBody(bytes, bytes.length >> 1);
    const first = call("POST", "/v1/files", { token: t.key, body: stalled.body, headers: { "Idempotency-Key": "w-stale", "Content-Type": whole.headers.get("Content-Type")! } });
    await stalled.reached;
    await expectError(await call("POST", "/v1/files", { token: t.key, body: fileForm(), headers: { "Idempotency-Key": "w-stale" } }), 409, "conflict");
    // Its hold goes stale (no heartbeat for STALE_RUNNING_SECONDS, here by moving the key's heartbeat back).
    await env.DB.prepare("UPDATE idempotency_keys SET updated_at = updated_at - 61 WHERE tenant_id = ? AND key = ?").bind(t.id, "w-stale").run();
    const retry = await call("POST", "/v1/files", { token: t.key, body: fileForm(), headers: { "Idempotency-Key": "w-stale" } });
    expect(retry.status).toBe(201);
    const file = (await retry.json()) as { id: string };
    stalled.release();
    expect((await expectError(await first, 409, "conflict")).param).toBe("Idempotency-Key");
    const list = (await (await call("GET", "/v1/files", { token: t.key })).json()) as { data: { id: string }[] };
    expect(list.data.map((f) => f.id)).toEqual([file.id]);
    expect((await env.BLOBS.list({ prefix: `tenants/${t.id}/` })).objects).toHaveLength(1);
  });
});
