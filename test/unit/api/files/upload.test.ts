import { describe, expect, it } from "vitest";
import type { BlobBody, BlobStore } from "../../../../api/src/blob/port.js";
import { cleanFilename, receiveUpload } from "../../../../api/src/files/upload.js";

/** An in-memory blob store for the port contract; `lazy` resolves put() without reading the body. */
function memoryStore(lazy = false) {
  const objects = new Map<string, Uint8Array>();
  const deleted: string[] = [];
  const store: Pick<BlobStore, "put" | "delete"> = {
    async put(key: string, body: BlobBody) {
      if (lazy) return { size: 0 };
      const bytes = new Uint8Array(await new Response(body as ReadableStream).arrayBuffer());
      objects.set(key, bytes);
      return { size: bytes.length };
    },
    async delete(key: string) {
      deleted.push(key);
      objects.delete(key);
    },
  };
  return { objects, deleted, store: store as BlobStore };
}

async function send(form: FormData, blobs: BlobStore) {
  const res = new Response(form);
  return receiveUpload({
    body: res.body,
    contentType: res.headers.get("Content-Type") ?? undefined,
    contentLength: undefined,
    tenantId: "ten_1",
    fileId: "file-1",
    blobs,
    limits: { maxFileBytes: 1 << 20, maxLineBytes: 1 << 16 },
  });
}

const jsonl = (s: string, name = "t.jsonl") => new File([s], name, { type: "application/jsonl" });

describe("receiveUpload", () => {
  it("writes the file under the tenant's key and reports what it validated", async () => {
    const m = memoryStore();
    const f = new FormData();
    f.append("file", jsonl('{"text":"a"}\n{"text":"b"}\n'));
    f.append("purpose", " fine-tune ");
    const up = await send(f, m.store);
    expect(up).toMatchObject({ id: "file-1", purpose: "fine-tune", format: "text", lines: 2, bytes: 26, blobKey: "tenants/ten_1/files/file-1", filename: "t.jsonl" });
    expect(new TextDecoder().decode(m.objects.get(up.blobKey))).toBe('{"text":"a"}\n{"text":"b"}\n');
  });

  it("deletes the written blob when the purpose after the file is wrong", async () => {
    const m = memoryStore();
    const f = new FormData();
    f.append("file", jsonl('{"text":"a"}'));
    f.append("purpose", "batch");
    await expect(send(f, m.store)).rejects.toMatchObject({ code: "invalid_request", param: "purpose" });
    expect(m.objects.size).toBe(0);
    expect(m.deleted).toEqual(["tenants/ten_1/files/file-1"]);
  });

  it("says how to send a file when 'file' came as text and is not JSONL (curl -F file=path, without '@')", async () => {
    const f = new FormData();
    f.append("purpose", "fine-tune");
    f.append("file", "/tmp/train.jsonl");
    await expect(send(f, memoryStore().store)).rejects.toMatchObject({
      code: "invalid_file",
      message: `upload.jsonl is not valid fine-tuning JSONL (1 invalid line): line 1: is not valid JSON (Unexpected token '/', "/tmp/train.jsonl" is not valid JSON); the field 'file' came as text, not as a file: to send a file's contents, write curl -F file=@train.jsonl`,
    });
    // A file part with a name gets no such hint.
    const g = new FormData();
    g.append("purpose", "fine-tune");
    g.append("file", jsonl("/tmp/train.jsonl"));
    await expect(send(g, memoryStore().store)).rejects.toMatchObject({ message: expect.not.stringContaining("came as text") });
  });

  it("refuses a second file part", async () => {
    const m = memoryStore();
    const f = new FormData();
    f.append("purpose", "fine-tune");
    f.append("file", jsonl('{"text":"a"}'));
    f.append("file", jsonl('{"text":"b"}'));
    await expect(send(f, m.store)).rejects.toMatchObject({ param: "file", message: "file: sent twice; upload one file per request" });
    expect(m.objects.size).toBe(0);
  });

  it("does not trust a store that returns before reading the whole upload", async () => {
    const m = memoryStore(true);
    const f = new FormData();
    f.append("purpose", "fine-tune");
    f.append("file", jsonl('{"text":"a"}'));
    await expect(send(f, m.store)).rejects.toThrow(/blob store returned before reading all of tenants\/ten_1\/files\/file-1/);
    expect(m.deleted).toEqual(["tenants/ten_1/files/file-1"]);
  });
});

describe("cleanFilename", () => {
  it("keeps the last path segment without control characters, with a default", () => {
    expect(cleanFilename("C:\\Users\\me\\train.jsonl")).toBe("train.jsonl");
    expect(cleanFilename("../../etc/passwd")).toBe("passwd");
    expect(cleanFilename("a\r\nb\u0000.jsonl")).toBe("ab.jsonl");
    expect(cleanFilename("x".repeat(300))).toHaveLength(255);
    expect(cleanFilename(null)).toBe("upload.jsonl");
    expect(cleanFilename("dir/")).toBe("upload.jsonl");
  });
});
