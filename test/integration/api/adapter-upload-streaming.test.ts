// POST /v1/adapters streams adapter_model.safetensors to the blob store as it arrives (its header checked from
// the first bytes, its data counted), so the API holds a bounded number of an upload's bytes at once; and a
// refused upload, wherever in the body it is refused, leaves no blob, row or quota use behind.
import { readFileSync } from "node:fs";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { BlobStore } from "../../../api/src/blob/port.js";
import type { Db } from "../../../api/src/db/client.js";
import { adapters } from "../../../api/src/db/schema.js";
import { blobCount, expectError, startTestApi, type TestApi } from "../../helpers/api.js";
import { failReadsAfterInsert } from "../../helpers/failing-db.js";
import { microLlama, registerMicroLlama } from "../../helpers/jobs.js";

const config = new Uint8Array(readFileSync(`${microLlama}/adapter/adapter_config.json`));
const weights = new Uint8Array(readFileSync(`${microLlama}/adapter/adapter_model.safetensors`));
const headerEnd = 8 + Number(new DataView(weights.buffer, weights.byteOffset).getBigUint64(0, true));

let api: TestApi;
let realBlobs: BlobStore;
let realDb: Db;
beforeAll(async () => {
  api = await startTestApi();
  await registerMicroLlama(api);
  realBlobs = api.deps.blobs;
  realDb = api.deps.db;
});
afterEach(() => {
  api.deps.blobs = realBlobs;
  api.deps.db = realDb;
});
afterAll(() => api.close());

type Part = { name: string; filename?: string; bytes: Uint8Array | string };
const boundary = "----tuneserve-test-boundary";
const type = `multipart/form-data; boundary=${boundary}`;

/** A multipart body of `parts` in the order given, and where each part's bytes start in it. */
function multipart(parts: Part[]) {
  const enc = new TextEncoder();
  const chunks: Uint8Array[] = [];
  const starts: Record<string, number> = {};
  let at = 0;
  const add = (b: Uint8Array) => {
    chunks.push(b);
    at += b.length;
  };
  for (const p of parts) {
    const file = p.filename === undefined ? "" : `; filename="${p.filename}"`;
    add(enc.encode(`--${boundary}\r\nContent-Disposition: form-data; name="${p.name}"${file}\r\n\r\n`));
    starts[p.name] = at;
    add(typeof p.bytes === "string" ? enc.encode(p.bytes) : p.bytes);
    add(enc.encode("\r\n"));
  }
  add(enc.encode(`--${boundary}--\r\n`));
  const body = new Uint8Array(at);
  let o = 0;
  for (const c of chunks) {
    body.set(c, o);
    o += c.length;
  }
  return { body, starts };
}

const fields = (w: Uint8Array = weights, extra: Part[] = []): Part[] => [
  { name: "base_model", bytes: "micro-llama" },
  ...extra,
  { name: "adapter_config", filename: "adapter_config.json", bytes: config },
  { name: "adapter_model", filename: "adapter_model.safetensors", bytes: w },
];

const post = (key: string, body: BodyInit, headers: Record<string, string> = {}) => api.call("POST", "/v1/adapters", { token: key, body, headers: { "Content-Type": type, ...headers } });

/** Polls `cond` until it holds; throws `why()` if it has not within 5 s (the upload is then stuck, not slow). */
async function waitFor(cond: () => boolean, why: () => string) {
  for (let i = 0; i < 1000 && !cond(); i++) await new Promise((r) => setTimeout(r, 5));
  if (!cond()) throw new Error(why());
}

/** Wraps the API's blob store so that the bytes each put() has read so far from its stream are counted. */
function recordPuts() {
  const read = new Map<string, number>();
  const store = Object.create(realBlobs) as BlobStore;
  store.put = (key, body, opts) => {
    if (!(body instanceof ReadableStream)) return realBlobs.put(key, body, opts);
    read.set(key, 0);
    const counted = body.pipeThrough(
      new TransformStream<Uint8Array, Uint8Array>({
        transform(chunk, c) {
          read.set(key, read.get(key)! + chunk.length);
          c.enqueue(chunk);
        },
      }),
    );
    return realBlobs.put(key, counted, opts);
  };
  api.deps.blobs = store;
  const weightsRead = () => [...read].find(([k]) => k.endsWith("adapter_model.safetensors"))?.[1] ?? 0;
  return { weightsRead, streamed: () => [...read.keys()] };
}

describe("POST /v1/adapters streams the weights", () => {
  it("hands each chunk of adapter_model to the blob store before the next one is sent", async () => {
    const t = await api.tenant("streamed");
    const puts = recordPuts();
    const { body, starts } = multipart(fields());
    const weightsAt = starts.adapter_model;
    const chunk = 4096;
    // Past the header (which is held until it is whole), what the store has read trails what was sent by at
    // most a bound: the body is not sent on until it has. A buffering server would never catch up.
    const bound = chunk + 1024;
    let sent = 0;
    let checked = 0;
    const paced = new ReadableStream<Uint8Array>({
      async pull(c) {
        const sentOfWeights = sent - weightsAt;
        if (sentOfWeights > headerEnd + chunk) {
          await waitFor(
            () => puts.weightsRead() >= sentOfWeights - bound,
            () => `the blob store had read ${puts.weightsRead()} bytes of adapter_model when ${sentOfWeights} had been sent`,
          );
          checked++;
        }
        if (sent >= body.length) return c.close();
        c.enqueue(body.slice(sent, sent + chunk));
        sent += chunk;
      },
    }, { highWaterMark: 0 });
    const res = await post(t.key, paced);
    expect(res.status).toBe(201);
    expect(checked).toBeGreaterThan(10);
    const a = (await res.json()) as { id: string; size_bytes: number };
    expect(a.size_bytes).toBe(config.length + weights.length);
    // The weights went to put() as a stream (the config, a few hundred bytes, as bytes), and come back byte for byte.
    expect(puts.streamed().map((k) => k.slice(k.lastIndexOf("/") + 1))).toEqual(["adapter_model.safetensors"]);
    const back = await api.call("GET", `/v1/adapters/${a.id}/files/adapter_model.safetensors`, { token: t.key });
    expect(Buffer.from(await back.arrayBuffer()).equals(weights)).toBe(true);
  });

  it("takes adapter_config and suffix after adapter_model, but wants base_model before it", async () => {
    const t = await api.tenant("order");
    const late = [
      { name: "base_model", bytes: "micro-llama" },
      { name: "adapter_model", filename: "adapter_model.safetensors", bytes: weights },
      { name: "adapter_config", filename: "adapter_config.json", bytes: config },
      { name: "suffix", bytes: "late" },
    ];
    const res = await post(t.key, multipart(late).body);
    expect(res.status).toBe(201);
    expect(((await res.json()) as { model: string }).model).toMatch(/:late:/);

    const u = await api.tenant("order-bad");
    const early = [late[1], late[0], late[2]];
    const err = await expectError(await post(u.key, multipart(early).body), 400, "invalid_request");
    expect(err).toMatchObject({ param: "adapter_model", message: expect.stringMatching(/^adapter_model: send base_model before adapter_model/) });
    expect(await blobCount(api, `tenants/${u.id}/`)).toBe(0);
  });
});

describe("a refused upload leaves nothing behind", () => {
  async function nothingLeft(t: { id: string; key: string }) {
    expect(((await (await api.call("GET", "/v1/adapters", { token: t.key })).json()) as { data: unknown[] }).data).toEqual([]);
    expect(await blobCount(api, `tenants/${t.id}/`)).toBe(0);
  }
  const padded = new Uint8Array(weights.length + 4);
  padded.set(weights);

  const refusals: [string, () => Uint8Array, number, RegExp][] = [
    ["data shorter than the header declares", () => weights.subarray(0, weights.length - 4), 400, /^adapter_model\.safetensors: \S+ has data_offsets \[\d+,\d+\] outside the \d+ data bytes$/],
    ["data longer than the header declares", () => padded, 400, /^adapter_model\.safetensors: tensors end at byte \d+ but the data section has \d+ bytes; the file is truncated or padded$/],
    ["a header that does not decode", () => Object.assign(weights.slice(), { [9]: 0 }), 400, /^adapter_model\.safetensors: header is not valid UTF-8 JSON/],
  ];
  for (const [what, make, status, message] of refusals) {
    it(`refuses ${what}`, async () => {
      const t = await api.tenant(what);
      const err = await expectError(await post(t.key, multipart(fields(make())).body), status, "invalid_file");
      expect(err.param).toBe("adapter_model");
      expect(err.message).toMatch(message);
      await nothingLeft(t);
    });
  }

  it("refuses an adapter_config over 64 KiB by its whole size, after adapter_model too", async () => {
    const t = await api.tenant("big-config");
    const big = new Uint8Array(70 * 1024).fill(0x20);
    const late = [fields()[0], fields()[2], { ...fields()[1], bytes: big }];
    const err = await expectError(await post(t.key, multipart(late).body), 400, "invalid_file");
    expect(err).toMatchObject({ param: "adapter_config", message: `adapter_config.json is ${big.length} bytes; a PEFT config is under ${64 * 1024}` });
    await nothingLeft(t);
  });

  it("removes what was stored when the body breaks off inside adapter_model", async () => {
    const t = await api.tenant("cut");
    const { body, starts } = multipart(fields());
    const cutAt = starts.adapter_model + headerEnd + 20_000;
    const broken = new ReadableStream<Uint8Array>({
      start(c) {
        c.enqueue(body.slice(0, cutAt));
        c.error(new Error("the client went away"));
      },
    });
    const res = await post(t.key, broken);
    expect(res.status).toBeGreaterThanOrEqual(400);
    await nothingLeft(t);
  });

  it("removes a stored upload that is over the tenant's max_adapters", async () => {
    const t = await api.tenant("full");
    await api.call("PATCH", `/admin/v1/tenants/${t.id}`, { token: api.admin, json: { limits: { max_adapters: 0 } } });
    await expectError(await post(t.key, multipart(fields()).body), 429, "quota_exceeded");
    await nothingLeft(t);
  });

  it("refuses an upload past max_adapters before storing any of it, but replays the upload that took the last slot", async () => {
    const t = await api.tenant("full-early");
    await api.call("PATCH", `/admin/v1/tenants/${t.id}`, { token: api.admin, json: { limits: { max_adapters: 1 } } });
    const key = { "Idempotency-Key": "adapter-last-slot" };
    const first = await post(t.key, multipart(fields()).body, key);
    expect(first.status).toBe(201);
    const { id } = (await first.json()) as { id: string };
    const puts = recordPuts();
    const err = await expectError(await post(t.key, multipart(fields()).body), 429, "quota_exceeded");
    expect(err.message).toBe("this tenant keeps 1 adapter (fine-tuning jobs in progress included) of its 1; delete one (DELETE /v1/models/{model}) first");
    await expectError(await post(t.key, multipart(fields()).body, { "Idempotency-Key": "adapter-new-key" }), 429, "quota_exceeded");
    expect(puts.streamed()).toEqual([]);
    // The first attempt's retry (its answer lost) is still answered with the adapter it stored.
    const again = await post(t.key, multipart(fields()).body, key);
    expect(again.status).toBe(201);
    expect(again.headers.get("Idempotent-Replayed")).toBe("true");
    expect(((await again.json()) as { id: string }).id).toBe(id);
    expect(await blobCount(api, `tenants/${t.id}/`)).toBe(2);
  });

  it("removes the row with its files when the quota re-check after the insert fails", async () => {
    const t = await api.tenant("recheck-fails");
    // The database answers the insert, then fails the next query (the re-check of max_adapters): the adapter's
    // row must not stay behind without its files, listed and counted but unservable.
    const failing = failReadsAfterInsert(realDb, adapters);
    api.deps.db = failing.db;
    const res = await post(t.key, multipart(fields()).body);
    api.deps.db = realDb;
    expect(failing.inserted()).toBe(true);
    expect(res.status).toBe(500);
    await nothingLeft(t);
  });

  it("removes a retry's copy under an Idempotency-Key, replayed or refused", async () => {
    const t = await api.tenant("retry");
    const key = { "Idempotency-Key": "adapter-retry-1" };
    const first = await post(t.key, multipart(fields()).body, key);
    expect(first.status).toBe(201);
    const { id } = (await first.json()) as { id: string };
    const again = await post(t.key, multipart(fields()).body, key);
    expect(again.status).toBe(201);
    expect(again.headers.get("Idempotent-Replayed")).toBe("true");
    expect(((await again.json()) as { id: string }).id).toBe(id);
    // Other files under the key: a 400, and the copy streamed in before the fingerprint was known is gone.
    const other = await expectError(await post(t.key, multipart(fields(padded.subarray(0, weights.length).map((b, i) => (i === weights.length - 1 ? b ^ 1 : b)))).body, key), 400, "invalid_request");
    expect(other.param).toBe("Idempotency-Key");
    expect(((await (await api.call("GET", "/v1/adapters", { token: t.key })).json()) as { data: unknown[] }).data).toHaveLength(1);
    expect(await blobCount(api, `tenants/${t.id}/`)).toBe(2);
  });
});
