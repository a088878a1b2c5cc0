// The API and one inference server in this process, wired the way a deployment wires them (runner
// registered, adapters reported by heartbeat): what the serving benchmark and the end-to-end tests drive.
// The product's embedded default (`tuneserve serve`) is cli/serve.ts; this is the lean version for measuring and testing.
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { startServer } from "../api/src/node.js";
import { createRng, normal } from "../gpu-runner/src/engine/generate/rng.js";
import { PROJECTIONS, modulePath, projectionDims } from "../gpu-runner/src/engine/model/names.js";
import { parseModelConfig } from "../gpu-runner/src/engine/model/config.js";
import { encodeSafetensors, type TensorToWrite } from "../gpu-runner/src/engine/weights/safetensors.js";
import { BUILTIN_MODEL_NAME, BUILTIN_SIZES, builtinConfigJson, ensureBuiltinModel, type BuiltinSizes } from "../gpu-runner/src/models/builtin.js";
import { startInferenceServer, type InferenceServer, type InferenceServerOptions } from "../gpu-runner/src/serve/server.js";

export type ServeStack = {
  apiUrl: string;
  adminToken: string;
  runnerToken: string;
  model: string;
  modelDir: string;
  /** The served model's layer shape (adapters for it are made with these). */
  sizes: BuiltinSizes;
  inference: InferenceServer;
  /** Reports the runner's held adapters to the API now (the heartbeat also runs every second). */
  heartbeat(): Promise<void>;
  close(): Promise<void>;
};

export type ServeStackOptions = Partial<Pick<InferenceServerOptions, "maxBatch" | "maxQueue" | "slots" | "loraRank" | "maxContext" | "batching" | "threads">> & {
  dataDir: string;
  /** A model of the built-in family with other sizes, served under `name` (default: the built-in model). */
  base?: { name: string; sizes: BuiltinSizes };
};

async function call(url: string, token: string, body: unknown): Promise<unknown> {
  const res = await fetch(url, { method: "POST", headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" }, body: JSON.stringify(body) });
  if (!res.ok) throw new Error(`POST ${url}: ${res.status} ${await res.text()}`);
  return res.json();
}

/** Starts the API (SQLite + local blobs under dataDir), the built-in model (or `base`) and one runner serving it. */
export async function startServeStack({ dataDir, base, ...serverOptions }: ServeStackOptions): Promise<ServeStack> {
  const o = { dataDir, ...serverOptions };
  const { name: model, sizes } = base ?? { name: BUILTIN_MODEL_NAME, sizes: BUILTIN_SIZES };
  const api = await startServer({ port: 0, dataDir: join(o.dataDir, "api") });
  const modelDir = await ensureBuiltinModel(join(o.dataDir, "models", model), sizes, model);
  const existing = await fetch(`${api.url}/admin/v1/models/${model}`, { headers: { Authorization: `Bearer ${api.adminToken}` } });
  if (existing.status === 404) await call(`${api.url}/admin/v1/models`, api.adminToken, { id: model, source: modelDir });
  await mkdir(join(o.dataDir, "runner"), { recursive: true });
  const inference = await startInferenceServer({
    apiUrl: api.url,
    runnerToken: api.runnerToken,
    listen: "127.0.0.1:0",
    models: { [model]: modelDir },
    cacheDir: join(o.dataDir, "runner", "adapters"),
    ...serverOptions,
  });
  const runner = (await call(`${api.url}/internal/v1/runners/register`, api.runnerToken, { name: "bench-runner", url: inference.url, models: [model], capacity: o.maxBatch ?? 8 })) as { id: string };
  const heartbeat = async () => {
    await call(`${api.url}/internal/v1/runners/${runner.id}/heartbeat`, api.runnerToken, { adapters: inference.heldAdapters() });
  };
  const timer = setInterval(() => void heartbeat().catch(() => undefined), 1000);
  return {
    apiUrl: api.url,
    adminToken: api.adminToken,
    runnerToken: api.runnerToken,
    model,
    modelDir,
    sizes,
    inference,
    heartbeat,
    async close() {
      clearInterval(timer);
      await inference.close();
      await api.close();
    },
  };
}

/** A random PEFT LoRA adapter for the built-in model, or one of its family (all seven targets; B ≠ 0 so it changes the output). */
export function randomBuiltinAdapter(seed: number, rank = 8, sizes: BuiltinSizes = BUILTIN_SIZES): { config: Uint8Array; weights: Uint8Array } {
  const cfg = parseModelConfig(builtinConfigJson(sizes));
  const rng = createRng(seed);
  const tensors: Record<string, TensorToWrite> = {};
  const fill = (n: number, std: number) => Float32Array.from({ length: n }, () => std * normal(rng));
  for (let layer = 0; layer < cfg.layers; layer++) {
    for (const m of PROJECTIONS) {
      const [out, inF] = projectionDims(cfg, m);
      const key = `base_model.model.${modulePath(layer, m)}`;
      tensors[`${key}.lora_A.weight`] = { shape: [rank, inF], data: fill(rank * inF, 1 / Math.sqrt(inF)) };
      tensors[`${key}.lora_B.weight`] = { shape: [out, rank], data: fill(out * rank, 0.05) };
    }
  }
  const config = { peft_type: "LORA", task_type: "CAUSAL_LM", r: rank, lora_alpha: 2 * rank, lora_dropout: 0, target_modules: [...PROJECTIONS], bias: "none", use_rslora: false, use_dora: false, base_model_name_or_path: BUILTIN_MODEL_NAME };
  return { config: new TextEncoder().encode(JSON.stringify(config)), weights: encodeSafetensors(tensors, { format: "pt" }) };
}

/** Creates a tenant, uploads `n` random adapters through POST /v1/adapters; returns its key and their model ids. */
export async function tenantWithAdapters(stack: Pick<ServeStack, "apiUrl" | "adminToken" | "model"> & { sizes?: BuiltinSizes }, name: string, n: number, seed = 1): Promise<{ id: string; key: string; models: string[] }> {
  const tenant = (await call(`${stack.apiUrl}/admin/v1/tenants`, stack.adminToken, { name })) as { id: string; api_key: string };
  const models: string[] = [];
  for (let i = 0; i < n; i++) {
    const a = randomBuiltinAdapter(seed * 1000 + i, 8, stack.sizes);
    const form = new FormData();
    form.set("base_model", stack.model);
    form.set("suffix", `a${i}`);
    form.set("adapter_config", new Blob([a.config as Uint8Array<ArrayBuffer>]), "adapter_config.json");
    form.set("adapter_model", new Blob([a.weights as Uint8Array<ArrayBuffer>]), "adapter_model.safetensors");
    const res = await fetch(`${stack.apiUrl}/v1/adapters`, { method: "POST", headers: { Authorization: `Bearer ${tenant.api_key}` }, body: form });
    if (res.status !== 201) throw new Error(`adapter upload: ${res.status} ${await res.text()}`);
    models.push(((await res.json()) as { model: string }).model);
  }
  return { id: tenant.id, key: tenant.api_key, models };
}
