// The small JSON files the API reads whole from the blob store (a base model's config.json and
// tokenizer_config.json at registration, a continued model's adapter_config.json) are bounded: one over its bound
// is refused by the size the store reports, naming the file and its size, without reading it.
import { readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { BlobStore } from "../../../api/src/blob/port.js";
import { ApiError } from "../../../api/src/errors.js";
import { continuedAdapter } from "../../../api/src/jobs/parent.js";
import { describeModel } from "../../../api/src/lib/model-files.js";
import { startTestApi, type TestApi } from "../../helpers/api.js";
import { microLlama } from "../../helpers/jobs.js";

const MiB = 1024 * 1024;
let api: TestApi;
let realBlobs: BlobStore;
beforeAll(async () => {
  api = await startTestApi();
  realBlobs = api.deps.blobs;
});
afterAll(() => api.close());

/** `file`'s JSON followed by spaces up to `bytes` bytes: still valid JSON, and what it said before. */
function padded(json: Uint8Array, bytes: number): Uint8Array {
  const out = new Uint8Array(bytes).fill(0x20);
  out.set(json);
  return out;
}

/** Counts the bytes read from the bodies of the objects the API gets, for the rest of the test. */
function countReads(): () => number {
  let read = 0;
  const store = Object.create(realBlobs) as BlobStore;
  store.get = async (key) => {
    const obj = await realBlobs.get(key);
    if (!obj) return obj;
    const body = obj.body.pipeThrough(new TransformStream<Uint8Array, Uint8Array>({ transform: (chunk, c) => ((read += chunk.length), c.enqueue(chunk)) }));
    return { ...obj, body };
  };
  api.deps.blobs = store;
  return () => read;
}

async function refusal(p: Promise<unknown>): Promise<ApiError> {
  const e = await p.then(() => null, (err: unknown) => err);
  expect(e).toBeInstanceOf(ApiError);
  return e as ApiError;
}

const baseConfig = new Uint8Array(readFileSync(`${microLlama}/base/config.json`));
const adapterConfig = new Uint8Array(readFileSync(`${microLlama}/adapter/adapter_config.json`));

describe("a blob base model's config.json and tokenizer_config.json", () => {
  it("are read within their bounds", async () => {
    await realBlobs.put("models/fits/config.json", padded(baseConfig, 64 * 1024));
    await realBlobs.put("models/fits/tokenizer_config.json", padded(new TextEncoder().encode('{"chat_template":"{{ messages }}"}'), 2 * MiB));
    expect(await describeModel(api.deps, "blob:models/fits/")).toMatchObject({ has_chat_template: true });
  });

  it("refuses a config.json over 4 MiB by its size, unread", async () => {
    const big = padded(baseConfig, 4 * MiB + 1);
    await realBlobs.put("models/big-config/config.json", big);
    const read = countReads();
    const e = await refusal(describeModel(api.deps, "blob:models/big-config/"));
    api.deps.blobs = realBlobs;
    expect(e).toMatchObject({ code: "invalid_request", param: "source" });
    expect(e.message).toBe(`config.json at blob:models/big-config/ is ${big.length} bytes, over the ${4 * MiB}-byte bound for it (a real one is far smaller); check that the prefix holds the model's files`);
    expect(read()).toBe(0);
  });

  it("refuses a tokenizer_config.json over 16 MiB by its size, unread", async () => {
    const big = padded(new TextEncoder().encode("{}"), 16 * MiB + 1);
    await realBlobs.put("models/big-tokenizer/config.json", baseConfig);
    await realBlobs.put("models/big-tokenizer/tokenizer_config.json", big);
    const read = countReads();
    const e = await refusal(describeModel(api.deps, "blob:models/big-tokenizer/"));
    api.deps.blobs = realBlobs;
    expect(e).toMatchObject({ code: "invalid_request", param: "source" });
    expect(e.message).toMatch(new RegExp(`^tokenizer_config\\.json at blob:models/big-tokenizer/ is ${big.length} bytes, over the ${16 * MiB}-byte bound for it`));
    // config.json only.
    expect(read()).toBe(baseConfig.length);
  });
});

describe("a continued model's adapter_config.json", () => {
  const weights = new Uint8Array(readFileSync(`${microLlama}/adapter/adapter_model.safetensors`));

  it("is read within 1 MiB, more than the 64 KiB an upload takes today (older adapters took larger ones)", async () => {
    await realBlobs.put("tenants/t/adapters/fits/adapter_config.json", padded(adapterConfig, 200 * 1024));
    await realBlobs.put("tenants/t/adapters/fits/adapter_model.safetensors", weights);
    const a = await continuedAdapter(api.deps, { modelId: "ft:fits", blobPrefix: "tenants/t/adapters/fits/" }, {});
    expect(a.type).toBe("lora");
  });

  it("is refused over 1 MiB by its size, unread, naming the model, the file and its size", async () => {
    const big = padded(adapterConfig, MiB + 1);
    await realBlobs.put("tenants/t/adapters/big/adapter_config.json", big);
    await realBlobs.put("tenants/t/adapters/big/adapter_model.safetensors", weights);
    const read = countReads();
    const e = await refusal(continuedAdapter(api.deps, { modelId: "ft:big", blobPrefix: "tenants/t/adapters/big/" }, {}));
    api.deps.blobs = realBlobs;
    expect(e).toMatchObject({ code: "invalid_request", param: "model" });
    expect(e.message).toBe(`model 'ft:big': its adapter_config.json is ${big.length} bytes, over the ${MiB}-byte bound for it (a PEFT config is a few hundred bytes); it cannot be continued`);
    expect(read()).toBe(0);
  });
});
