// Thin wrapper over onnxruntime-node sessions: the options we always want (2 intra-op threads that
// spin between the ops of a run and sleep between runs, full optimization; two fusions off for float64
// graphs, see below).
import { availableParallelism } from "node:os";
import * as ort from "onnxruntime-node";
import { executionProviders } from "./providers.js";

export type SessionOptions = {
  /** Named byte buffers the model's external initializers point into. */
  externalData?: { path: string; data: Uint8Array }[];
  threads?: number;
  /**
   * Let intra-op threads spin between the ops of a run instead of sleeping (default: true unless
   * TUNESERVE_ORT_SPIN=0). They stop spinning when the run ends, so an idle session costs no CPU.
   * Measured on this 2-core host, tiny preset, batch-1 decode with an adapter: ~850–960 tok/s sleeping,
   * ~1240 spinning within runs, ~1300 spinning also between runs; with another process keeping one
   * core busy, spinning within runs was no slower than sleeping (730–915 against 680–740 tok/s), while
   * spinning also between runs was (410–760).
   */
  spin?: boolean;
  /** The graph is float64 (some ORT fusions must be off). */
  float64?: boolean;
  optimization?: "disabled" | "basic" | "extended" | "all";
  executionProviders?: string[];
  /**
   * Let ORT keep pre-packed copies of constant weights for faster MatMul (default true). Off saves
   * memory roughly the size of the frozen weights, at some speed (see docs/training.md).
   */
  prepack?: boolean;
  /**
   * ORT's memory pattern: one block planned for all intermediate tensors of a run (default true). Off,
   * tensors come from the arena as they are needed and freed ones are reused, which lowers peak memory
   * where many large activations live at once (training, measured: medium preset 4638 → 2940 MB peak
   * RSS, small 1960 → 1270 MB, at the same speed).
   */
  memPattern?: boolean;
};

/** TUNESERVE_ORT_SPIN: unset, 1/true/on → spin (the default); 0/false/off → never spin. */
export function spinSetting(value = process.env.TUNESERVE_ORT_SPIN): boolean {
  const v = (value ?? "").trim().toLowerCase();
  if (v === "" || v === "1" || v === "true" || v === "on") return true;
  if (v === "0" || v === "false" || v === "off") return false;
  throw new Error(`TUNESERVE_ORT_SPIN=${value}: use 1 (spin within runs, the default) or 0 (never spin)`);
}

/**
 * Spinning for sessions whose runs overlap other work of the process (a serving worker beside HTTP
 * servers): TUNESERVE_ORT_SPIN when set, else only when the machine has a core beyond the session's
 * threads. Measured on this 2-core host, API + runner in one process (`bench serve --mode e2e`, 32
 * adapters): 7.1–7.4k tok/s spinning, 8.5–8.7k not — the spinning threads took the event loop's core.
 */
export function spinBesideEventLoop(threads: number, value = process.env.TUNESERVE_ORT_SPIN): boolean {
  if (value !== undefined && value.trim() !== "") return spinSetting(value);
  return availableParallelism() > threads;
}

/** Below this many frozen matmul parameters a serving session runs on one intra-op thread (servingThreads). */
export const ONE_THREAD_BELOW_PARAMS = 2_000_000;

/**
 * Intra-op threads for a serving session: one when the model's GEMMs are too small to split (a second
 * thread cost more to wake, or to keep spinning, than it saved), else two. Measured on this 2-core host,
 * `session.run` per decode step with 32 rows on 32 adapters: the built-in model (0.4 M parameters) 1.5 ms
 * with two threads, 1.4 ms with two spinning, 0.99 ms with one (2 rows: 0.38, 0.49 and 0.24 ms); the tiny
 * preset (5.2 M) 6.4 ms with two threads and 8.0 ms with one.
 */
export function servingThreads(frozenMatmulParams: number): number {
  return frozenMatmulParams < ONE_THREAD_BELOW_PARAMS ? 1 : 2;
}

/** Creates an ORT session from ONNX bytes. */
export async function createSession(model: Uint8Array, o: SessionOptions = {}): Promise<ort.InferenceSession> {
  const extra: Record<string, unknown> = {};
  // Waking a sleeping thread for each of a decode step's ~200 small ops costs more than the ops;
  // spinning stops at the end of each run (force_spinning_stop), so threads sleep between runs.
  const session: Record<string, unknown> = {};
  const spin = o.spin ?? spinSetting();
  if (spin) session.force_spinning_stop = "1";
  else session.intra_op = { allow_spinning: "0" };
  if (o.prepack === false) session.disable_prepacking = "1";
  extra.session = session;
  // float64: QuickGelu has no double kernel (the session fails to load), and SimplifiedLayerNormFusion
  // drops a non-float32 epsilon (measured: rms_norm_eps 1e-6 computed as 1e-5, logits off by 3e-3).
  if (o.float64) extra.optimization = { disable_specified_optimizers: "QuickGeluFusion;SimplifiedLayerNormFusion" };
  return ort.InferenceSession.create(model, {
    executionProviders: o.executionProviders ?? executionProviders(),
    graphOptimizationLevel: o.optimization ?? "all",
    intraOpNumThreads: o.threads ?? 2,
    interOpNumThreads: 1,
    executionMode: "sequential",
    externalData: o.externalData,
    enableMemPattern: o.memPattern ?? true,
    extra,
  } as ort.InferenceSession.SessionOptions);
}

export type Feed = Record<string, ort.Tensor>;

/**
 * One feed object from several, by plain assignment. Not with object spread: V8's spread of objects
 * with dozens of properties (a LoRA session has 32+ inputs) is slow — measured on Node 20, ~110–160 µs
 * for 40 properties against ~10 µs assigned in a loop, which was ~10 % of a tiny batch-1 decode step.
 */
export function mergeFeeds(...parts: Feed[]): Feed {
  const out: Feed = {};
  for (const part of parts) for (const name in part) out[name] = part[name];
  return out;
}
export { ort };
