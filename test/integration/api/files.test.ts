import { createHash } from "node:crypto";
import { readdir } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { expectError, startTestApi, type TestApi } from "../../helpers/api.js";

let api: TestApi;
let small: TestApi;
beforeAll(async () => {
  api = await startTestApi();
  small = await startTestApi({ TUNESERVE_MAX_FILE_BYTES: "2000", TUNESERVE_MAX_LINE_BYTES: "300" });
});
afterAll(async () => {
  await api.close();
  await small.close();
});

const chatLine = (i: number) => JSON.stringify({ messages: [{ role: "user", content: `q${i}` }, { role: "assistant", content: `a${i}` }] });
const chatFile = (n: number) => Array.from({ length: n }, (_, i) => chatLine(i)).join("\n") + "\n";

/** A real multipart body built by fetch's FormData; `fileFirst` puts the file before purpose, as curl may. */
function form(content: string | null, opts: { purpose?: string | null; filename?: string; fileFirst?: boolean } = {}): FormData {
  const f = new FormData();
  const addFile = () => content !== null && f.append("file", new Blob([content], { type: "application/jsonl" }), opts.filename ?? "train.jsonl");
  const purpose = opts.purpose === undefined ? "fine-tune" : opts.purpose;
  if (opts.fileFirst) addFile();
  if (purpose !== null) f.append("purpose", purpose);
  if (!opts.fileFirst) addFile();
  return f;
}

const upload = (t: TestApi, key: string, body: FormData) => t.call("POST", "/v1/files", { token: key, body });

/** Every object the local blob store holds for a tenant (including half-written .partial files). */
async function blobsOf(t: TestApi, tenant: string): Promise<string[]> {
  const dir = join(t.dataDir, "blobs", "tenants", tenant, "files");
  return readdir(dir).catch(() => []);
}

describe("POST /v1/files", () => {
  it("stores a validated file and returns the OpenAI file object", async () => {
    const t = await api.tenant();
    const content = chatFile(3);
    const res = await upload(api, t.key, form(content, { filename: "my train.jsonl" }));
    expect(res.status).toBe(201);
    const file = await res.json();
    expect(file).toMatchObject({
      object: "file",
      bytes: Buffer.byteLength(content),
      filename: "my train.jsonl",
      purpose: "fine-tune",
      status: "processed",
      format: "chat",
      lines: 3,
    });
    expect(file.id).toMatch(/^file-/);
    expect(file.sha256).toBe(createHash("sha256").update(content).digest("hex"));
    expect(await blobsOf(api, t.id)).toEqual([file.id]);
  });

  it("accepts purpose after the file, and the other two formats", async () => {
    const t = await api.tenant();
    const pc = await upload(api, t.key, form('{"prompt":"2+2=","completion":"4"}\r\n{"prompt":"3+3=","completion":"6"}', { fileFirst: true }));
    expect(await pc.json()).toMatchObject({ format: "prompt_completion", lines: 2 });
    const text = await upload(api, t.key, form('{"text":"hello"}', { filename: "C:\\data\\raw.jsonl" }));
    expect(await text.json()).toMatchObject({ format: "text", lines: 1, filename: "raw.jsonl" });
  });

  it("rejects bad lines with their numbers and reasons, storing nothing", async () => {
    const t = await api.tenant();
    const lines = [chatLine(0), "{not json", JSON.stringify({ messages: [{ role: "user", content: "q" }] }), chatLine(3), '{"text":"x"}'];
    const err = await expectError(await upload(api, t.key, form(lines.join("\n"))), 400, "invalid_file");
    expect(err.param).toBe("file");
    expect(err.message).toMatch(/^train\.jsonl is not valid fine-tuning JSONL \(3 invalid lines\): line 2: is not valid JSON/);
    expect(err.message).toContain("line 3: chat record: messages: needs at least one assistant message");
    expect(err.message).toContain("line 5: is a text record but line 1 is chat");
    // Stops at five errors.
    const many = await expectError(await upload(api, t.key, form("x\n".repeat(50))), 400, "invalid_file");
    expect(many.message).toMatch(/stopped after the first 5 errors/);
    expect(many.message.match(/line \d+:/g)).toEqual(["line 1:", "line 2:", "line 3:", "line 4:", "line 5:"]);
    const empty = await expectError(await upload(api, t.key, form("")), 400, "invalid_file");
    expect(empty.message).toBe("train.jsonl is empty; send one JSON object per line");
    const blank = await expectError(await upload(api, t.key, form("\n\n")), 400, "invalid_file");
    expect(blank.message).toMatch(/the file has no records/);
    expect(await blobsOf(api, t.id)).toEqual([]);
    const list = await (await api.call("GET", "/v1/files", { token: t.key })).json();
    expect(list.data).toEqual([]);
  });

  it("calls a field a line leaves out missing, in the words a request body's is called so", async () => {
    const t = await api.tenant();
    const lines = ['{"prompt":"2+2=","completion":"4"}', '{"prompt":"3+3="}', '{"prompt":"4+4=","completion":8}'];
    const err = await expectError(await upload(api, t.key, form(lines.join("\n"))), 400, "invalid_file");
    expect(err.message).toContain("line 2: prompt_completion record: completion: missing; this field is required (a string)");
    // A wrong type keeps zod's words, as in a request body.
    expect(err.message).toContain("line 3: prompt_completion record: completion: Invalid input: expected string, received number");
    expect(await blobsOf(api, t.id)).toEqual([]);
  });

  it("refuses a file over TUNESERVE_MAX_FILE_BYTES (413) and a line over TUNESERVE_MAX_LINE_BYTES", async () => {
    const t = await small.tenant();
    // Valid small lines, too many of them; an in-process FormData body has no Content-Length, so this is
    // the limit enforced while streaming.
    const err = await expectError(await upload(small, t.key, form(chatFile(60), { fileFirst: true })), 413, "payload_too_large");
    expect(err.message).toMatch(/larger than 2000 bytes \(TUNESERVE_MAX_FILE_BYTES\)/);
    // A declared Content-Length far over the limit is refused before the body is read.
    const big = new Response(form(chatFile(1200)));
    const bytes = new Uint8Array(await big.arrayBuffer());
    const declared = await small.call("POST", "/v1/files", {
      token: t.key,
      body: bytes,
      headers: { "Content-Type": big.headers.get("Content-Type")!, "Content-Length": String(bytes.length) },
    });
    expect((await expectError(declared, 413, "payload_too_large")).param).toBe("file");
    const long = await expectError(await upload(small, t.key, form(`{"text":"${"y".repeat(400)}"}\n`)), 400, "invalid_file");
    expect(long.message).toMatch(/line 1: longer than 300 bytes \(TUNESERVE_MAX_LINE_BYTES\)/);
    expect(await blobsOf(small, t.id)).toEqual([]);
  });

  it("refuses a field the form does not take, naming it and storing nothing, before the file or after it", async () => {
    const t = await api.tenant();
    // After the file, so that it was already streamed to the blob store when the field arrives.
    const after = form(chatFile(1));
    after.append("suffix", "demo");
    let err = await expectError(await upload(api, t.key, after), 400, "invalid_request");
    expect(err).toMatchObject({ param: "suffix", message: "suffix: not a field of this form (purpose, file): check its name, or leave it out" });
    const before = new FormData();
    before.append("purpose", "fine-tune");
    before.append("note", "from the nightly export");
    before.append("file", new Blob([chatFile(1)]), "train.jsonl");
    err = await expectError(await upload(api, t.key, before), 400, "invalid_request");
    expect(err.param).toBe("note");
    expect(await blobsOf(api, t.id)).toEqual([]);
    expect((await (await api.call("GET", "/v1/files", { token: t.key })).json()).data).toEqual([]);
  });

  it("refuses OpenAI's expires_after (as its client sends it, after the file), which it would not honour, storing nothing", async () => {
    const t = await api.tenant();
    const expiring = form(chatFile(1));
    expiring.append("expires_after[anchor]", "created_at");
    expiring.append("expires_after[seconds]", "3600");
    const err = await expectError(await upload(api, t.key, expiring), 400, "invalid_request");
    expect(err).toMatchObject({ param: "expires_after", message: expect.stringMatching(/^expires_after: files do not expire here/) });
    expect(await blobsOf(api, t.id)).toEqual([]);
    expect((await (await api.call("GET", "/v1/files", { token: t.key })).json()).data).toEqual([]);
  });

  it("checks purpose before or after the file, and requires both fields", async () => {
    const t = await api.tenant();
    for (const fileFirst of [false, true]) {
      const err = await expectError(await upload(api, t.key, form(chatFile(1), { purpose: "assistants", fileFirst })), 400, "invalid_request");
      expect(err).toMatchObject({ param: "purpose", message: "purpose: 'assistants' is not supported; use purpose=fine-tune" });
    }
    expect((await expectError(await upload(api, t.key, form(chatFile(1), { purpose: null })), 400, "invalid_request")).param).toBe("purpose");
    const missing = await expectError(await upload(api, t.key, form(null)), 400, "invalid_request");
    expect(missing).toMatchObject({ param: "file", message: expect.stringMatching(/file: missing/) });
    // The file written before the wrong purpose arrived is gone.
    expect(await blobsOf(api, t.id)).toEqual([]);
  });

  it("refuses non-multipart and malformed bodies", async () => {
    const t = await api.tenant();
    await expectError(await api.call("POST", "/v1/files", { token: t.key, json: { purpose: "fine-tune" } }), 415, "unsupported_media_type");
    const truncated = await api.call("POST", "/v1/files", {
      token: t.key,
      body: '--B\r\nContent-Disposition: form-data; name="file"; filename="a.jsonl"\r\n\r\n{"text":"a"}\n',
      headers: { "Content-Type": "multipart/form-data; boundary=B" },
    });
    const err = await expectError(truncated, 400, "invalid_request");
    expect(err.message).toMatch(/multipart body: the body ended inside part 'file' before its closing boundary/);
    expect(await blobsOf(api, t.id)).toEqual([]);
  });
});

describe("list, get, content, delete", () => {
  it("paginates newest first, gets, downloads and deletes", async () => {
    const t = await api.tenant();
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push((await (await upload(api, t.key, form(chatFile(i + 1), { filename: `f${i}.jsonl` }))).json()).id);
    const first = await (await api.call("GET", "/v1/files?limit=2", { token: t.key })).json();
    expect(first.data.map((f: { id: string }) => f.id)).toEqual([ids[2], ids[1]]);
    expect(first.has_more).toBe(true);
    const second = await (await api.call("GET", `/v1/files?limit=2&after=${first.last_id}`, { token: t.key })).json();
    expect(second.data.map((f: { id: string }) => f.id)).toEqual([ids[0]]);
    expect(second.has_more).toBe(false);
    // Another kind's id would page by the wrong order (ids sort by their prefix first).
    const job = await api.call("GET", `/v1/files?after=ftjob-${first.last_id.slice(5)}`, { token: t.key });
    expect(await expectError(job, 400, "invalid_request")).toMatchObject({ param: "after", message: expect.stringContaining("file-…") });

    const one = await (await api.call("GET", `/v1/files/${ids[1]}`, { token: t.key })).json();
    expect(one).toMatchObject({ id: ids[1], filename: "f1.jsonl", lines: 2 });
    const content = await api.call("GET", `/v1/files/${ids[1]}/content`, { token: t.key });
    expect(content.status).toBe(200);
    expect(content.headers.get("Content-Disposition")).toBe("attachment; filename*=UTF-8''f1.jsonl");
    expect(await content.text()).toBe(chatFile(2));

    const del = await api.call("DELETE", `/v1/files/${ids[1]}`, { token: t.key });
    expect(await del.json()).toEqual({ id: ids[1], object: "file", deleted: true });
    await expectError(await api.call("GET", `/v1/files/${ids[1]}`, { token: t.key }), 404, "not_found");
    await expectError(await api.call("GET", `/v1/files/${ids[1]}/content`, { token: t.key }), 404, "not_found");
    await expectError(await api.call("DELETE", `/v1/files/${ids[1]}`, { token: t.key }), 404, "not_found");
    expect((await blobsOf(api, t.id)).sort()).toEqual([ids[0], ids[2]].sort());
  });

  it("hides another tenant's files (404, absent from its list)", async () => {
    const a = await api.tenant("a");
    const b = await api.tenant("b");
    const file = await (await upload(api, a.key, form(chatFile(1)))).json();
    for (const [method, path] of [
      ["GET", `/v1/files/${file.id}`],
      ["GET", `/v1/files/${file.id}/content`],
      ["DELETE", `/v1/files/${file.id}`],
    ]) {
      const err = await expectError(await api.call(method, path, { token: b.key }), 404, "not_found");
      expect(err.message).toBe(`file '${file.id}' not found`);
    }
    const listB = await (await api.call("GET", "/v1/files", { token: b.key })).json();
    expect(listB.data).toEqual([]);
    expect((await api.call("GET", `/v1/files/${file.id}`, { token: a.key })).status).toBe(200);
  });

  it("documents the routes in the OpenAPI document", async () => {
    const doc = await (await api.call("GET", "/openapi.json")).json();
    expect(Object.keys(doc.paths)).toEqual(expect.arrayContaining(["/v1/files", "/v1/files/{file_id}", "/v1/files/{file_id}/content"]));
    expect(doc.paths["/v1/files"].post.requestBody.content["multipart/form-data"]).toBeDefined();
  });
});
