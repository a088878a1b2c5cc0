import { readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { blobCount, expectError, startTestApi, type TestApi } from "../../helpers/api.js";
import { fixturesDir } from "../../helpers/fixtures.js";

const fx = fixturesDir;
const read = (p: string) => new Uint8Array(readFileSync(`${fx}/${p}`));
const llamaConfig = read("micro-llama/adapter/adapter_config.json");
const llamaWeights = read("micro-llama/adapter/adapter_model.safetensors");
const qwenConfig = read("micro-qwen2/adapter/adapter_config.json");
const qwenWeights = read("micro-qwen2/adapter/adapter_model.safetensors");

let api: TestApi;
beforeAll(async () => {
  api = await startTestApi({ TUNESERVE_MAX_LORA_RANK: "16", TUNESERVE_MAX_ADAPTER_BYTES: "200000" });
  for (const id of ["micro-llama", "micro-qwen2"]) {
    const res = await api.call("POST", "/admin/v1/models", { token: api.admin, json: { id, source: `${fx}/${id}/base` } });
    expect(res.status).toBe(201);
  }
});
afterAll(() => api.close());

function form(fields: { base_model?: string; suffix?: string; config?: Uint8Array; weights?: Uint8Array }) {
  const f = new FormData();
  if (fields.base_model) f.set("base_model", fields.base_model);
  if (fields.suffix) f.set("suffix", fields.suffix);
  if (fields.config) f.set("adapter_config", new Blob([fields.config as Uint8Array<ArrayBuffer>]), "adapter_config.json");
  if (fields.weights) f.set("adapter_model", new Blob([fields.weights as Uint8Array<ArrayBuffer>]), "adapter_model.safetensors");
  return f;
}
const upload = (token: string, fields: Parameters<typeof form>[0]) => api.call("POST", "/v1/adapters", { token, body: form(fields) });

async function uploadLlama(token: string, suffix?: string) {
  const res = await upload(token, { base_model: "micro-llama", suffix, config: llamaConfig, weights: llamaWeights });
  expect(res.status).toBe(201);
  return res.json();
}
const bytesOf = async (res: Response) => Buffer.from(await res.arrayBuffer());
/** Byte equality; toEqual walks a typed array element by element, which is slow for 77 KB. */
const expectSameBytes = (got: Buffer, want: Uint8Array) => {
  expect(got.length).toBe(want.length);
  expect(got.equals(want)).toBe(true);
};
describe("POST /v1/adapters", () => {
  it("stores the fixture adapter, which then shows in /v1/adapters and /v1/models", async () => {
    const t = await api.tenant("up");
    const a = await uploadLlama(t.key, "support");
    expect(a).toMatchObject({
      object: "adapter",
      base_model: "micro-llama",
      method: "lora",
      rank: 8,
      alpha: 16,
      target_modules: ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
      size_bytes: llamaConfig.length + llamaWeights.length,
      job_id: null,
    });
    expect(a.id).toMatch(/^adp_/);
    expect(a.model).toBe(`ft:micro-llama:${t.id}:support:${a.id.slice(-12)}`);
    const digest = Buffer.from(await crypto.subtle.digest("SHA-256", llamaWeights)).toString("hex");
    expect(a.sha256).toBe(digest);

    const list = await (await api.call("GET", "/v1/adapters", { token: t.key })).json();
    expect(list.data.map((x: { id: string }) => x.id)).toEqual([a.id]);
    expect(await (await api.call("GET", `/v1/adapters/${a.id}`, { token: t.key })).json()).toEqual(a);

    const models = await (await api.call("GET", "/v1/models", { token: t.key })).json();
    expect(models.object).toBe("list");
    expect(models.data).toContainEqual(expect.objectContaining({ id: "micro-llama", object: "model", owned_by: "tuneserve", base_model: null }));
    expect(models.data).toContainEqual({ id: a.model, object: "model", created: a.created_at, owned_by: t.id, base_model: "micro-llama", adapter_id: a.id });
  });

  it("gets a fine-tuned model by its id, raw or URL-encoded, and a base model", async () => {
    const t = await api.tenant("get");
    const a = await uploadLlama(t.key);
    expect(a.model).toMatch(/^ft:micro-llama:ten_\w+::\w{12}$/);
    for (const path of [`/v1/models/${a.model}`, `/v1/models/${encodeURIComponent(a.model)}`]) {
      const m = await (await api.call("GET", path, { token: t.key })).json();
      expect(m).toMatchObject({ id: a.model, adapter_id: a.id });
    }
    expect(await (await api.call("GET", "/v1/models/micro-qwen2", { token: t.key })).json()).toMatchObject({ id: "micro-qwen2", owned_by: "tuneserve" });
    await expectError(await api.call("GET", "/v1/models/nope", { token: t.key }), 404, "not_found");
  });

  it("refuses the qwen2 adapter on the llama base, naming the key and both shapes", async () => {
    const t = await api.tenant("mismatch");
    const err = await expectError(await upload(t.key, { base_model: "micro-llama", config: qwenConfig, weights: qwenWeights }), 400, "invalid_file");
    expect(err.param).toBe("adapter_model");
    expect(err.message).toMatch(/^adapter_model\.safetensors: base_model\.model\.model\.layers\.0\.mlp\.down_proj\.lora_A\.weight has shape \[8,176\], expected \[8,172\]/);
    // ...and accepts it on its own base.
    expect((await upload(t.key, { base_model: "micro-qwen2", config: qwenConfig, weights: qwenWeights })).status).toBe(201);
  });

  it("refuses a corrupted header, a rank over the limit, extra tensors and unsupported options, storing nothing", async () => {
    const t = await api.tenant("bad");
    const corrupt = llamaWeights.slice();
    corrupt[9] = 0x00;
    let err = await expectError(await upload(t.key, { base_model: "micro-llama", config: llamaConfig, weights: corrupt }), 400, "invalid_file");
    expect(err.message).toMatch(/^adapter_model\.safetensors: header is not valid UTF-8 JSON/);

    const r32 = new TextEncoder().encode(JSON.stringify({ ...JSON.parse(new TextDecoder().decode(llamaConfig)), r: 32 }));
    err = await expectError(await upload(t.key, { base_model: "micro-llama", config: r32, weights: llamaWeights }), 400, "invalid_file");
    expect(err).toMatchObject({ param: "adapter_config", message: "adapter_config.json: r=32 exceeds the maximum rank 16; retrain with r ≤ 16" });

    // Only q/k/v/o are targets: the mlp tensors in the file are extra.
    const attnOnly = new TextEncoder().encode(JSON.stringify({ ...JSON.parse(new TextDecoder().decode(llamaConfig)), target_modules: ["q_proj", "k_proj", "v_proj", "o_proj"] }));
    err = await expectError(await upload(t.key, { base_model: "micro-llama", config: attnOnly, weights: llamaWeights }), 400, "invalid_file");
    expect(err.message).toMatch(/mlp\.down_proj\.lora_A\.weight targets down_proj, which is not in adapter_config\.json target_modules/);

    // A config that limits the layers is refused even though the weights are fine.
    const filtered = new TextEncoder().encode(JSON.stringify({ ...JSON.parse(new TextDecoder().decode(llamaConfig)), layers_to_transform: [0] }));
    err = await expectError(await upload(t.key, { base_model: "micro-llama", config: filtered, weights: llamaWeights }), 400, "invalid_file");
    expect(err.message).toMatch(/layers_to_transform is not supported/);

    // Nothing was stored by the refused uploads.
    expect((await (await api.call("GET", "/v1/adapters", { token: t.key })).json()).data).toEqual([]);
    expect(await blobCount(api, `tenants/${t.id}/`)).toBe(0);
  });

  it("refuses a field the form does not take (a misspelt suffix), naming it and storing nothing", async () => {
    const t = await api.tenant("typo");
    // After the weights, so that they were already streamed to the blob store when the field arrives.
    const typo = form({ base_model: "micro-llama", config: llamaConfig, weights: llamaWeights });
    typo.append("sufix", "copy");
    const err = await expectError(await api.call("POST", "/v1/adapters", { token: t.key, body: typo }), 400, "invalid_request");
    expect(err).toMatchObject({ param: "sufix", message: expect.stringMatching(/^sufix: not a field of this form \(base_model, suffix, adapter_config, adapter_model\)/) });
    expect((await (await api.call("GET", "/v1/adapters", { token: t.key })).json()).data).toEqual([]);
    expect(await blobCount(api, `tenants/${t.id}/`)).toBe(0);
  });

  it("refuses a file with a tensor missing (rewritten header without one key)", async () => {
    const t = await api.tenant("missing");
    const view = new DataView(llamaWeights.buffer, llamaWeights.byteOffset);
    const n = Number(view.getBigUint64(0, true));
    const header = JSON.parse(new TextDecoder().decode(llamaWeights.subarray(8, 8 + n)));
    const drop = "base_model.model.model.layers.1.self_attn.v_proj.lora_B.weight";
    const [s, e] = header[drop].data_offsets;
    delete header[drop];
    for (const v of Object.values(header) as { data_offsets?: number[] }[]) {
      if (v.data_offsets && v.data_offsets[0] >= e) v.data_offsets = v.data_offsets.map((o) => o - (e - s));
    }
    let json = JSON.stringify(header);
    while (json.length % 8) json += " ";
    const data = llamaWeights.subarray(8 + n);
    const out = new Uint8Array(8 + json.length + data.length - (e - s));
    new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
    out.set(new TextEncoder().encode(json), 8);
    out.set(data.subarray(0, s), 8 + json.length);
    out.set(data.subarray(e), 8 + json.length + s);
    const err = await expectError(await upload(t.key, { base_model: "micro-llama", config: llamaConfig, weights: out }), 400, "invalid_file");
    expect(err.message).toBe(`adapter_model.safetensors: ${drop} is missing (1 tensor missing in all); every layer needs lora_A and lora_B for each of q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj`);
  });

  it("checks the form: fields, base model, media type and size", async () => {
    const t = await api.tenant("form");
    let err = await expectError(await upload(t.key, { base_model: "micro-llama", config: llamaConfig }), 400, "invalid_request");
    expect(err).toMatchObject({ param: "adapter_model", message: "adapter_model: send adapter_model.safetensors as a file part (curl -F adapter_model=@adapter_model.safetensors)" });
    // A file name sent as text (curl's -F without '@') gets the same hint.
    const asText = form({ base_model: "micro-llama", weights: llamaWeights });
    asText.set("adapter_config", "adapter_config.json");
    err = await expectError(await api.call("POST", "/v1/adapters", { token: t.key, body: asText }), 400, "invalid_request");
    expect(err).toMatchObject({ param: "adapter_config", message: "adapter_config: send adapter_config.json as a file part (curl -F adapter_config=@adapter_config.json)" });
    // An unknown base model is a 404, as for fine-tuning jobs.
    err = await expectError(await upload(t.key, { base_model: "gpt-9", config: llamaConfig, weights: llamaWeights }), 404, "not_found");
    expect(err).toMatchObject({ param: "base_model", message: "base_model 'gpt-9' is not a registered base model; GET /v1/models lists them" });
    err = await expectError(await upload(t.key, { base_model: "micro-llama", suffix: "a:b", config: llamaConfig, weights: llamaWeights }), 400, "invalid_request");
    expect(err.param).toBe("suffix");
    await expectError(await api.call("POST", "/v1/adapters", { token: t.key, json: { base_model: "micro-llama" } }), 415, "unsupported_media_type");
    // A form that does not parse is a bad request, not bad JSON.
    const cut = { token: t.key, body: '--b\r\nContent-Disposition: form-data; name="base_model"\r\n\r\nmicro', headers: { "Content-Type": "multipart/form-data; boundary=b" } };
    expect((await expectError(await api.call("POST", "/v1/adapters", cut), 400, "invalid_request")).message).toMatch(/^multipart body: could not be parsed/);
    const big = new Uint8Array(300_000);
    err = await expectError(await upload(t.key, { base_model: "micro-llama", config: llamaConfig, weights: big }), 413, "payload_too_large");
    expect(err.message).toMatch(/adapter files total 300570 bytes, over the 200000-byte limit/);
    // Far over the limit: refused while the body streams in, before the form is parsed.
    err = await expectError(await upload(t.key, { base_model: "micro-llama", config: llamaConfig, weights: new Uint8Array(1_000_000) }), 413, "payload_too_large");
    expect(err.message).toBe("adapter upload exceeds 200000 bytes (TUNESERVE_MAX_ADAPTER_BYTES)");
  });
});

describe("adapter files", () => {
  it("streams both files back byte for byte", async () => {
    const t = await api.tenant("dl");
    const a = await uploadLlama(t.key);
    const cfg = await api.call("GET", `/v1/adapters/${a.id}/files/adapter_config.json`, { token: t.key });
    expect(cfg.headers.get("Content-Type")).toBe("application/json");
    expectSameBytes(await bytesOf(cfg), llamaConfig);
    const w = await api.call("GET", `/v1/adapters/${a.id}/files/adapter_model.safetensors`, { token: t.key });
    expect(w.headers.get("Content-Length")).toBe(String(llamaWeights.length));
    expectSameBytes(await bytesOf(w), llamaWeights);
    await expectError(await api.call("GET", `/v1/adapters/${a.id}/files/secrets.json`, { token: t.key }), 400, "invalid_request");
  });

  it("hands out presigned URLs that download the same bytes", async () => {
    const t = await api.tenant("links");
    const a = await uploadLlama(t.key);
    const links = await (await api.call("GET", `/v1/adapters/${a.id}/files`, { token: t.key })).json();
    expect(links.data.map((l: { name: string }) => l.name)).toEqual(["adapter_config.json", "adapter_model.safetensors"]);
    expect(links.data[1].bytes).toBe(llamaWeights.length);
    for (const [i, expected] of [llamaConfig, llamaWeights].entries()) {
      const u = new URL(links.data[i].url);
      const res = await api.call("GET", u.pathname + u.search);
      expect(res.status).toBe(200);
      expectSameBytes(await bytesOf(res), expected);
    }
  });
});

describe("deleting", () => {
  it("DELETE /v1/adapters/{id} removes the row and its blobs", async () => {
    const t = await api.tenant("del");
    const a = await uploadLlama(t.key);
    const prefix = `tenants/${t.id}/adapters/${a.id}/`;
    expect(await blobCount(api, prefix)).toBe(2);
    expect(await (await api.call("DELETE", `/v1/adapters/${a.id}`, { token: t.key })).json()).toEqual({ id: a.id, object: "adapter", deleted: true });
    expect(await blobCount(api, prefix)).toBe(0);
    await expectError(await api.call("GET", `/v1/adapters/${a.id}`, { token: t.key }), 404, "not_found");
    await expectError(await api.call("DELETE", `/v1/adapters/${a.id}`, { token: t.key }), 404, "not_found");
    await expectError(await api.call("GET", `/v1/models/${a.model}`, { token: t.key }), 404, "not_found");
  });

  it("DELETE /v1/models/{model} removes a fine-tuned model and refuses a base model", async () => {
    const t = await api.tenant("delm");
    const a = await uploadLlama(t.key, "x");
    const res = await api.call("DELETE", `/v1/models/${encodeURIComponent(a.model)}`, { token: t.key });
    expect(await res.json()).toEqual({ id: a.model, object: "model", deleted: true });
    expect(await blobCount(api, `tenants/${t.id}/adapters/${a.id}/`)).toBe(0);
    const models = await (await api.call("GET", "/v1/models", { token: t.key })).json();
    expect(models.data.map((m: { id: string }) => m.id)).not.toContain(a.model);
    const err = await expectError(await api.call("DELETE", "/v1/models/micro-llama", { token: t.key }), 400, "invalid_request");
    expect(err.message).toMatch(/'micro-llama' is a base model and cannot be deleted/);
  });
});

describe("tenant isolation", () => {
  it("answers 404 for another tenant's adapter everywhere and leaves it out of lists", async () => {
    const a = await api.tenant("owner");
    const b = await api.tenant("other");
    const ad = await uploadLlama(a.key);
    for (const [method, path] of [
      ["GET", `/v1/adapters/${ad.id}`],
      ["GET", `/v1/adapters/${ad.id}/files`],
      ["GET", `/v1/adapters/${ad.id}/files/adapter_model.safetensors`],
      ["DELETE", `/v1/adapters/${ad.id}`],
      ["GET", `/v1/models/${ad.model}`],
      ["DELETE", `/v1/models/${ad.model}`],
    ]) {
      await expectError(await api.call(method, path, { token: b.key }), 404, "not_found");
    }
    expect((await (await api.call("GET", "/v1/adapters", { token: b.key })).json()).data).toEqual([]);
    const models = await (await api.call("GET", "/v1/models", { token: b.key })).json();
    expect(models.data.every((m: { owned_by: string }) => m.owned_by === "tuneserve")).toBe(true);
    // Still there for its owner.
    expect((await api.call("GET", `/v1/adapters/${ad.id}`, { token: a.key })).status).toBe(200);
    expect(await blobCount(api, `tenants/${a.id}/adapters/${ad.id}/`)).toBe(2);
  });

  it("paginates adapters newest first", async () => {
    const t = await api.tenant("pages");
    const ids = [];
    for (let i = 0; i < 3; i++) ids.push((await uploadLlama(t.key)).id);
    const first = await (await api.call("GET", "/v1/adapters?limit=2", { token: t.key })).json();
    expect(first.data.map((x: { id: string }) => x.id)).toEqual([ids[2], ids[1]]);
    expect(first.has_more).toBe(true);
    const second = await (await api.call("GET", `/v1/adapters?limit=2&after=${first.last_id}`, { token: t.key })).json();
    expect(second.data.map((x: { id: string }) => x.id)).toEqual([ids[0]]);
  });

  it("documents the routes in the OpenAPI document", async () => {
    const doc = await (await api.call("GET", "/openapi.json")).json();
    expect(Object.keys(doc.paths)).toEqual(expect.arrayContaining(["/v1/models", "/v1/models/{model}", "/v1/adapters", "/v1/adapters/{adapter_id}/files/{name}"]));
    expect(doc.paths["/v1/adapters"].post.requestBody.content["multipart/form-data"].schema.properties.adapter_model).toMatchObject({ type: "string", format: "binary" });
  });
});
