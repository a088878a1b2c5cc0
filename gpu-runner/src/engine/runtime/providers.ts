// Which onnxruntime execution providers sessions use: TUNESERVE_EXECUTION_PROVIDERS = "cpu" (default),
// "cuda,cpu", or "auto" (CUDA when its provider library is installed and a GPU device node exists).
// The graphs are the same for every provider; only where they run changes.
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";

const known = new Set(["cpu", "cuda"]);

/** Where onnxruntime-node keeps its CUDA provider, inside its package; infra/Dockerfile.runner checks the same path. */
export const CUDA_PROVIDER_LIB = "bin/napi-v6/linux/x64/libonnxruntime_providers_cuda.so";

/** True when onnxruntime-node has its CUDA provider library (baked into the runner image) and a GPU is visible. */
export function cudaAvailable(): boolean {
  const ortDir = dirname(createRequire(import.meta.url).resolve("onnxruntime-node/package.json"));
  const lib = join(ortDir, CUDA_PROVIDER_LIB);
  return existsSync(lib) && existsSync("/dev/nvidiactl");
}

/** Parses the provider setting (an empty variable counts as unset, as for every other setting); the error names the variable and the accepted values. */
export function executionProviders(setting = process.env.TUNESERVE_EXECUTION_PROVIDERS || "cpu"): string[] {
  const value = setting.trim().toLowerCase();
  if (value === "auto") return cudaAvailable() ? ["cuda", "cpu"] : ["cpu"];
  const list = value.split(",").map((s) => s.trim()).filter(Boolean);
  const bad = list.find((p) => !known.has(p));
  if (bad || list.length === 0) {
    throw new Error(`TUNESERVE_EXECUTION_PROVIDERS=${setting}: use "auto", "cpu" or a list such as "cuda,cpu"`);
  }
  return list;
}
