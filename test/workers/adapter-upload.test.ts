// POST /v1/adapters on the Worker (128 MB an isolate): a 20 MB adapter streams into R2 part by part while its
// body is still arriving, and a refused one leaves nothing in R2 or D1.
import { env } from "cloudflare:workers";
import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { expect, it } from "vitest";
import worker from "../../api/src/worker.js";
import { call, expectError, origin, tenant } from "./helpers.js";

// A base model wide enough for a 20 MB rank-16 adapter: LoRA shapes [out, in] per module.
const base = { architectures: ["LlamaForCausalLM"], hidden_size: 2048, intermediate_size: 5632, num_hidden_layers: 8, num_attention_heads: 16, num_key_value_heads: 16, head_dim: 128, vocab_size: 256 };
const shapes: Record<string, [number, number, string]> = {
  q_proj: [2048, 2048, "self_attn"], k_proj: [2048, 2048, "self_attn"], v_proj: [2048, 2048, "self_attn"], o_proj: [2048, 2048, "self_attn"],
  gate_proj: [5632, 2048, "mlp"], up_proj: [5632, 2048, "mlp"], down_proj: [2048, 5632, "mlp"],
};
const r = 16;

/** A zero-filled PEFT adapter (r 16, every linear module) for the wide base model, and where its data starts. */
function wideAdapter() {
  const header: Record<string, unknown> = {};
  let pos = 0;
  for (let layer = 0; layer < base.num_hidden_layers; layer++) {
    for (const [m, [out, inF, parent]] of Object.entries(shapes)) {
      for (const [ab, shape] of [["A", [r, inF]], ["B", [out, r]]] as const) {
        const n = shape[0] * shape[1] * 4;
        header[`base_model.model.model.layers.${layer}.${parent}.${m}.lora_${ab}.weight`] = { dtype: "F32", shape, data_offsets: [pos, pos + n] };
        pos += n;
      }
    }
  }
  const h = new TextEncoder().encode(JSON.stringify(header));
  const weights = new Uint8Array(8 + h.length + pos);
  new DataView(weights.buffer).setBigUint64(0, BigInt(h.length), true);
  weights.set(h, 8);
  const cfg = new TextEncoder().encode(JSON.stringify({ peft_type: "LORA", task_type: "CAUSAL_LM", r, lora_alpha: 32, target_modules: Object.keys(shapes), bias: "none" }));
  return { cfg, weights };
}

async function registerWide() {
  await env.BLOBS.put("models/wide-llama/config.json", JSON.stringify(base));
  const res = await call("POST", "/admin/v1/models", { token: env.TUNESERVE_ADMIN_TOKEN as string, json: { id: "wide-llama", source: "blob:models/wide-llama/" } });
  if (res.status !== 201 && res.status !== 409) throw new Error(`registering wide-llama failed: ${res.status} ${await res.text()}`);
}

/** The form's bytes: base_model, adapter_config, adapter_model, in that order. */
async function formBytes(cfg: Uint8Array, weights: Uint8Array) {
  const f = new FormData();
  f.append("base_model", "wide-llama");
  f.append("adapter_config", new Blob([cfg]), "adapter_config.json");
  f.append("adapter_model", new Blob([weights]), "adapter_model.safetensors");
  const res = new Response(f);
  return { bytes: new Uint8Array(await res.arrayBuffer()), type: res.headers.get("Content-Type")! };
}

/**
 * The bindings with room for the 20 MB adapter (vitest.config.ts keeps TUNESERVE_MAX_BLOB_BYTES at 12 MiB for
 * the /blobs/ tests, and the API wants TUNESERVE_MAX_ADAPTER_BYTES at most half of it).
 */
const wideEnv = { ...env, TUNESERVE_MAX_ADAPTER_BYTES: String(32 * 1024 * 1024), TUNESERVE_MAX_BLOB_BYTES: String(64 * 1024 * 1024) };

/** Sends one request to the Worker with wideEnv's bindings, or `bindings`. */
async function wideCall(req: Request, bindings: Record<string, unknown> = wideEnv): Promise<Response> {
  const ctx = createExecutionContext();
  const res = await worker.fetch(req, bindings, ctx);
  await waitOnExecutionContext(ctx);
  return res;
}

/** env with BLOBS wrapped so that the parts R2 has been sent of multipart uploads are counted. */
function countingEnv() {
  const bucket = env.BLOBS as R2Bucket;
  const seen = { parts: 0 };
  const wrapped = {
    put: bucket.put.bind(bucket),
    get: bucket.get.bind(bucket),
    head: bucket.head.bind(bucket),
    delete: bucket.delete.bind(bucket),
    list: bucket.list.bind(bucket),
    async createMultipartUpload(key: string, opts?: R2MultipartOptions) {
      const upload = await bucket.createMultipartUpload(key, opts);
      return {
        async uploadPart(n: number, value: ArrayBufferView) {
          const part = await upload.uploadPart(n, value);
          seen.parts++;
          return part;
        },
        complete: upload.complete.bind(upload),
        abort: upload.abort.bind(upload),
      };
    },
  };
  return { env: { ...wideEnv, BLOBS: wrapped }, seen };
}

async function nothingLeft(t: { id: string; key: string }) {
  expect(((await (await call("GET", "/v1/adapters", { token: t.key })).json()) as { data: unknown[] }).data).toEqual([]);
  expect((await env.BLOBS.list({ prefix: `tenants/${t.id}/` })).objects).toEqual([]);
}

it("streams a 20 MB adapter into R2 part by part before its body has ended", async () => {
  await registerWide();
  const t = await tenant("wide");
  const { cfg, weights } = wideAdapter();
  expect(weights.length).toBeGreaterThan(20_000_000);
  const form = await formBytes(cfg, weights);
  const { env: counting, seen } = countingEnv();
  // All but the last MB is sent; the rest only once R2 has had two 8 MiB parts, which a server that buffered
  // the body would not send until it had all of it.
  const held = form.bytes.length - 1_000_000;
  let waited = false;
  const body = new ReadableStream<Uint8Array>({
    async pull(c) {
      if (!waited) {
        for (let at = 0; at < held; at += 1 << 20) c.enqueue(form.bytes.slice(at, Math.min(at + (1 << 20), held)));
        waited = true;
        return;
      }
      for (let i = 0; i < 1000 && seen.parts < 2; i++) await new Promise((res) => setTimeout(res, 10));
      if (seen.parts < 2) c.error(new Error(`R2 had ${seen.parts} parts when all but the last MB of the body had been sent`));
      c.enqueue(form.bytes.slice(held));
      c.close();
    },
  });
  const res = await wideCall(new Request(new URL("/v1/adapters", origin), { method: "POST", headers: { Authorization: `Bearer ${t.key}`, "Content-Type": form.type }, body }), counting);
  expect(res.status).toBe(201);
  const a = (await res.json()) as { id: string; size_bytes: number };
  expect(a.size_bytes).toBe(cfg.length + weights.length);
  expect(seen.parts).toBe(3);
  expect((await env.BLOBS.head(`tenants/${t.id}/adapters/${a.id}/adapter_model.safetensors`))?.size).toBe(weights.length);
});

it("leaves nothing in R2 or D1 when the data is shorter than the header declares", async () => {
  await registerWide();
  const t = await tenant("wide-cut");
  const { cfg, weights } = wideAdapter();
  const form = await formBytes(cfg, weights.subarray(0, weights.length - 4));
  const res = await wideCall(new Request(new URL("/v1/adapters", origin), { method: "POST", headers: { Authorization: `Bearer ${t.key}`, "Content-Type": form.type }, body: form.bytes }));
  const err = await expectError(res, 400, "invalid_file");
  expect(err.message).toMatch(/^adapter_model\.safetensors: \S+ has data_offsets \[\d+,\d+\] outside the \d+ data bytes$/);
  await nothingLeft(t);
});
