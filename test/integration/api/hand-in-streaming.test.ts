// A runner's hand-in (POST …/complete) checks adapter_model.safetensors as it streams from the job's output
// folder (its header from the first bytes, its data counted), so the API holds a chunk of it at a time, never the
// whole file; and it stops reading at the first fault. Where the store has a copy of its own, the weights are
// copied by the store to a key of the hand-in's, checked there as they are read, and that checked copy is copied
// into the adapter's folder: the API writes none of their bytes. Where it has none (the R2 binding), they stream
// through the checks into the adapter's folder.
import { readFileSync } from "node:fs";
import { afterEach, describe, expect, it } from "vitest";
import { blobKeys, readAll, type BlobStore } from "../../../api/src/blob/port.js";
import { sha256Hex } from "../../../api/src/lib/hash.js";
import { blobCount, expectError, startTestApi, type TestApi } from "../../helpers/api.js";
import { blobPath, createJob, microLlama, registerMicroLlama, registerRunner, runnerCall, tenantWithFile } from "../../helpers/jobs.js";

const WEIGHTS = "adapter_model.safetensors";
const config = new Uint8Array(readFileSync(`${microLlama}/adapter/adapter_config.json`));
const weights = new Uint8Array(readFileSync(`${microLlama}/adapter/${WEIGHTS}`));
const headerEnd = 8 + Number(new DataView(weights.buffer, weights.byteOffset).getBigUint64(0, true));
/** The size of the pieces the output's body is served in (the fixture's 77 KB is 76 of them). */
const chunk = 1024;

const open: TestApi[] = [];
afterEach(async () => {
  while (open.length) await open.pop()!.close();
});

/** A running job (adapter settings as given) whose runner has put `files` to its output folder. */
async function handedIn(adapter: Record<string, unknown> | undefined, files: { config: Uint8Array<ArrayBuffer>; weights: Uint8Array<ArrayBuffer> }, storeCopies: boolean) {
  const api = await startTestApi();
  open.push(api);
  if (!storeCopies) api.deps.blobs.copy = undefined;
  await registerMicroLlama(api);
  const t = await tenantWithFile(api);
  const job = await createJob(api, t.key, { training_file: t.fileId, ...(adapter ? { adapter } : {}) });
  const r = await registerRunner(api, "r");
  expect((await runnerCall(api, "/jobs/lease", { runner_id: r })).status).toBe(200);
  const urls = (await (await runnerCall(api, `/jobs/${job.id}/outputs/uploads`, { runner_id: r })).json()).urls as Record<string, string>;
  for (const [name, body] of [["adapter_config.json", files.config], [WEIGHTS, files.weights]] as const) {
    expect((await api.call("PUT", blobPath(urls[name]), { body })).status).toBe(200);
  }
  const adapterFolder = blobKeys.adapter(t.id, `adp_${job.id.slice("ftjob-".length)}`);
  return { api, t, job, r, adapterFolder, seen: recordHandIn(api, blobKeys.jobOutputs(t.id, job.id), adapterFolder) };
}

/**
 * Wraps the API's blob store: get() of the output's weights serves them `chunk` bytes a pull, counting what the
 * API has pulled and whether it cancelled; put() of the adapter's weights counts what the store has been given,
 * and notes the most bytes the API had pulled but not yet handed on (what it held of the file).
 */
function recordHandIn(api: TestApi, outputs: string, adapterFolder: string) {
  const real = api.deps.blobs;
  const seen = { pulled: 0, cancelled: false, stored: 0, mostHeld: 0 };
  const store = Object.create(real) as BlobStore;
  store.get = async (key) => {
    const obj = await real.get(key);
    if (!obj || !key.startsWith(outputs) || !key.endsWith(WEIGHTS)) return obj;
    const bytes = await readAll(obj);
    const body = new ReadableStream<Uint8Array>(
      {
        pull(c) {
          if (seen.pulled >= bytes.length) return c.close();
          const piece = bytes.slice(seen.pulled, seen.pulled + chunk);
          seen.pulled += piece.length;
          c.enqueue(piece);
        },
        cancel() {
          seen.cancelled = true;
        },
      },
      { highWaterMark: 0 },
    );
    return { ...obj, body };
  };
  store.put = async (key, body, opts) => {
    if (!key.startsWith(adapterFolder) || !key.endsWith(WEIGHTS)) return real.put(key, body, opts);
    if (!(body instanceof ReadableStream)) {
      const bytes = typeof body === "string" ? new TextEncoder().encode(body) : body;
      seen.mostHeld = Math.max(seen.mostHeld, seen.pulled - seen.stored);
      seen.stored += bytes.length;
      return real.put(key, bytes, opts);
    }
    const reader = body.getReader();
    const got = new Uint8Array(weights.length * 2);
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      seen.mostHeld = Math.max(seen.mostHeld, seen.pulled - seen.stored);
      got.set(value, seen.stored);
      seen.stored += value.length;
    }
    return real.put(key, got.slice(0, seen.stored), opts);
  };
  api.deps.blobs = store;
  return seen;
}

/** The fixture's weights with one lora_A key renamed lora_C (same length, so every offset still holds). */
function withStrayTensor(): Uint8Array<ArrayBuffer> {
  const copy = weights.slice();
  const header = new TextDecoder().decode(copy.subarray(8, headerEnd));
  const at = header.indexOf("lora_A.weight");
  copy[8 + at + "lora_".length] = "C".charCodeAt(0);
  return copy;
}

describe("a job's hand-in streams its adapter from the output folder", () => {
  it("copies the weights to the adapter's folder a chunk at a time, checked and hashed as they pass", async () => {
    const { api, r, job, adapterFolder, seen } = await handedIn(undefined, { config, weights }, false);
    const res = await runnerCall(api, `/jobs/${job.id}/complete`, { runner_id: r, trained_tokens: 10 });
    expect(res.status).toBe(200);
    const done = await res.json();
    expect(done.adapter).toMatchObject({ rank: 8, size_bytes: config.length + weights.length, sha256: await sha256Hex(weights) });
    expect(seen.pulled).toBe(weights.length);
    expect(seen.stored).toBe(weights.length);
    // Each chunk reached the store before the next was read: the API never held more than one.
    expect(seen.mostHeld).toBeLessThanOrEqual(chunk);
    const stored = await api.deps.blobs.get(`${adapterFolder}${WEIGHTS}`);
    expect(await readAll(stored!)).toEqual(weights);
  });

  it("has the store copy the weights where it can: read a chunk at a time, checked and hashed, and none of them written by the API", async () => {
    const { api, r, job, t, adapterFolder, seen } = await handedIn(undefined, { config, weights }, true);
    const res = await runnerCall(api, `/jobs/${job.id}/complete`, { runner_id: r, trained_tokens: 10 });
    expect(res.status).toBe(200);
    expect((await res.json()).adapter).toMatchObject({ rank: 8, size_bytes: config.length + weights.length, sha256: await sha256Hex(weights) });
    expect(seen.pulled).toBe(weights.length);
    expect(seen.stored).toBe(0);
    expect(await readAll((await api.deps.blobs.get(`${adapterFolder}${WEIGHTS}`))!)).toEqual(weights);
    // The hand-in's own copy is gone: the output folder holds what the runner PUT, and nothing else.
    expect(await blobCount(api, blobKeys.jobOutputs(t.id, job.id))).toBe(2);
  });

  it("publishes the weights it checked, not what the runner PUTs at the output's key while they are checked", async () => {
    const { api, r, job, t, adapterFolder } = await handedIn(undefined, { config, weights }, true);
    const out = blobKeys.jobOutput(t.id, job.id, 1) + WEIGHTS;
    const get = api.deps.blobs.get;
    api.deps.blobs.get = async (key) => {
      const obj = await get.call(api.deps.blobs, key);
      // Read for its check: the runner (or a stale copy of it) writes the output again.
      if (key.endsWith(WEIGHTS)) await api.deps.blobs.put(out, withStrayTensor());
      return obj;
    };
    const res = await runnerCall(api, `/jobs/${job.id}/complete`, { runner_id: r, trained_tokens: 10 });
    expect(res.status).toBe(200);
    expect((await res.json()).adapter.sha256).toBe(await sha256Hex(weights));
    expect(await readAll((await api.deps.blobs.get(`${adapterFolder}${WEIGHTS}`))!)).toEqual(weights);
  });

  it("answers lease_lost when the job is cancelled while its weights are checked (its end deletes the hand-in's copy)", async () => {
    const { api, r, job, t, adapterFolder } = await handedIn(undefined, { config, weights }, true);
    const copy = api.deps.blobs.copy!;
    api.deps.blobs.copy = async (from, to) => {
      // Checked, about to be published: the tenant cancels, and the job's end deletes its outputs.
      if (to.startsWith(adapterFolder)) expect((await api.call("POST", `/v1/fine_tuning/jobs/${job.id}/cancel`, { token: t.key })).status).toBe(200);
      return copy.call(api.deps.blobs, from, to);
    };
    const err = await expectError(await runnerCall(api, `/jobs/${job.id}/complete`, { runner_id: r, trained_tokens: 10 }), 409, "lease_lost");
    expect(err.message).toContain("cancelled");
    expect(await blobCount(api, adapterFolder)).toBe(0);
  });
});

describe.each([
  { storeCopies: true, name: "a store with a copy of its own" },
  { storeCopies: false, name: "a store without one (as the R2 binding)" },
])("a job's hand-in on $name", ({ storeCopies }) => {
  it("stops reading the weights at a fault in their header, and cancels the rest", async () => {
    const { api, r, job, t, adapterFolder, seen } = await handedIn(undefined, { config, weights: withStrayTensor() }, storeCopies);
    const err = await expectError(await runnerCall(api, `/jobs/${job.id}/complete`, { runner_id: r, trained_tokens: 10 }), 400, "invalid_file");
    expect(err.message).toMatch(/^adapter_model\.safetensors: unexpected tensor base_model\.model\.model\.layers\.\d+\.\w+\.\w+\.lora_C\.weight/);
    expect(seen.pulled).toBeLessThanOrEqual(headerEnd + chunk);
    expect(seen.cancelled).toBe(true);
    expect(await blobCount(api, adapterFolder)).toBe(0);
    expect((await (await api.call("GET", `/v1/fine_tuning/jobs/${job.id}`, { token: t.key })).json()).status).toBe("running");
  });

  it("reads none of the weights when adapter_config.json's rank is not the job's", async () => {
    const { api, r, job, seen } = await handedIn({ r: 4 }, { config, weights }, storeCopies);
    const err = await expectError(await runnerCall(api, `/jobs/${job.id}/complete`, { runner_id: r, trained_tokens: 10 }), 400, "invalid_file");
    expect(err.message).toBe("adapter_config.json: r=8 but the job asked for r=4");
    expect(seen.pulled).toBe(0);
    expect(seen.cancelled).toBe(true);
  });

  it("refuses an adapter_config.json over 64 KiB unread, as an upload does, and reads none of the weights", async () => {
    const padded = new TextEncoder().encode(new TextDecoder().decode(config).replace(/}\s*$/, `${" ".repeat(64 * 1024)}}`));
    const { api, r, job, seen } = await handedIn(undefined, { config: padded, weights }, storeCopies);
    const err = await expectError(await runnerCall(api, `/jobs/${job.id}/complete`, { runner_id: r, trained_tokens: 10 }), 400, "invalid_file");
    expect(err.message).toBe(`adapter_config.json is ${padded.length} bytes; a PEFT config is under 65536`);
    expect(seen.pulled).toBe(0);
    expect(seen.cancelled).toBe(true);
  });
});
