// The memory-bandwidth bound on batch-1 decoding: a decode step reads every frozen weight matrix once
// (fp32), so tokens/s ≤ read bandwidth / weight bytes. The bandwidth is measured here, in the same run,
// as ORT's own batch-1 GEMV over a weight far larger than any cache — what our decode steps run.
import { Graph, op, toOnnx } from "../gpu-runner/src/engine/graph/index.js";
import { createSession, ort } from "../gpu-runner/src/engine/runtime/session.js";
import type { ModelConfig } from "../gpu-runner/src/engine/model/config.js";
import { round } from "./env.js";
import { frozenMatmulParams } from "../gpu-runner/src/engine/model/names.js";

/** Median GB/s of a [1, 4096]·[4096, 16384] fp32 GEMV (a 256 MiB constant weight) on `threads` threads. */
export async function gemvReadBandwidth(threads: number): Promise<number> {
  const K = 4096;
  const N = 16384;
  const g = new Graph("gemv_bandwidth");
  const x = g.input("x", "float32", [1, K]);
  g.output(op.matmul(x, g.constant("float32", [K, N], new Float32Array(K * N).fill(1 / K))), "y");
  const session = await createSession(toOnnx(g), { threads });
  try {
    const feeds = { x: new ort.Tensor("float32", new Float32Array(K).fill(1), [1, K]) };
    for (let i = 0; i < 3; i++) await session.run(feeds);
    const rates: number[] = [];
    for (let i = 0; i < 15; i++) {
      const t0 = performance.now();
      await session.run(feeds);
      rates.push((K * N * 4) / ((performance.now() - t0) / 1000) / 1e9);
    }
    rates.sort((a, b) => a - b);
    return rates[rates.length >> 1];
  } finally {
    await session.release();
  }
}

/**
 * The bound for a model: fp32 weight MB one batch-1 decode step reads (every projection and the LM head;
 * the embedding lookup reads one row), the measured GB/s, and the tokens/s they allow.
 */
export async function decodeBound(cfg: ModelConfig, threads: number): Promise<Record<string, number>> {
  const bytes = 4 * frozenMatmulParams(cfg);
  const gbs = await gemvReadBandwidth(threads);
  return { weights_mb_per_token: round(bytes / 1e6, 1), gemv_read_gb_s: round(gbs, 1), b1_decode_ceiling_tok_s: round((gbs * 1e9) / bytes, 1) };
}
