// A file upload retried with an Idempotency-Key on D1: the row and the key's answer are written in one D1
// batch (lib/upload-once.ts), and the retry is answered with the first file instead of storing a second.
import { describe, expect, it } from "vitest";
import { call, tenant } from "./helpers.js";

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
});
