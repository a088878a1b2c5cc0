// LoRA parameter values for training, in PEFT's layout (A [r, in], B [out, r], row-major): taken from
// a loaded adapter, or PEFT's initial state for a new one.
import type { LoraAdapter } from "../lora/peft.js";
import { loraKey } from "../lora/peft.js";
import type { TrainParam } from "./train-graph.js";
import type { FloatArray } from "../graph/types.js";


const alloc = (n: number, dtype: "float32" | "float64"): FloatArray => (dtype === "float64" ? new Float64Array(n) : new Float32Array(n));

/** The value of every trainable tensor, copied from a loaded PEFT adapter. */
export function paramsFromAdapter(adapter: LoraAdapter, params: TrainParam[], dtype: "float32" | "float64"): Map<string, FloatArray> {
  const out = new Map<string, FloatArray>();
  for (const p of params) {
    const w = adapter.weights.get(loraKey(p.layer, p.module));
    if (!w) throw new Error(`LoRA adapter ${adapter.name}: no weights for layer ${p.layer} ${p.module}, which the training graph trains`);
    const src = p.kind === "A" ? w.a : w.b;
    if (src.length !== p.shape[0] * p.shape[1]) throw new Error(`LoRA adapter ${adapter.name}: ${p.name} has ${src.length} values, the training graph needs [${p.shape}] (r=${adapter.rank})`);
    const v = alloc(src.length, dtype);
    v.set(src);
    out.set(p.name, v);
  }
  return out;
}

/**
 * PEFT's initial LoRA state: A kaiming-uniform with a = √5, i.e. uniform in ±1/√in; B zero — so
 * training starts from the base model. `random` returns uniform values in [0, 1).
 */
export function initParams(params: TrainParam[], dtype: "float32" | "float64", random: () => number): Map<string, FloatArray> {
  const out = new Map<string, FloatArray>();
  for (const p of params) {
    const v = alloc(p.shape[0] * p.shape[1], dtype);
    if (p.kind === "A") {
      const bound = 1 / Math.sqrt(p.shape[1]);
      for (let i = 0; i < v.length; i++) v[i] = (2 * random() - 1) * bound;
    }
    out.set(p.name, v);
  }
  return out;
}

/** Frobenius norm √Σx² (summed in float64). */
export function frobenius(x: FloatArray): number {
  let s = 0;
  for (let i = 0; i < x.length; i++) s += x[i] * x[i];
  return Math.sqrt(s);
}

/** Whether every element is finite (no NaN, no ±Infinity). */
export function allFinite(x: FloatArray): boolean {
  for (let i = 0; i < x.length; i++) if (!Number.isFinite(x[i])) return false;
  return true;
}

/** Σx (in float64). */
export function total(x: FloatArray): number {
  let s = 0;
  for (let i = 0; i < x.length; i++) s += x[i];
  return s;
}
