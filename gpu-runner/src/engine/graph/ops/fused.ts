// Fused operators of onnxruntime's com.microsoft domain, for float32 graphs: one kernel for a run of standard ops,
// which pays where ORT's per-node cost is a large share of a run (a decode step; see docs/generation.md).
import type { Tensor } from "../graph.js";
import { add } from "./elementwise.js";
import { rmsNorm } from "./nn.js";

/**
 * x + skip and its RMSNorm (w ⊙ s / √(mean(s²) + eps)) in one pass: ORT's SkipSimplifiedLayerNormalization for
 * float32, the composed ops otherwise (ORT's kernel has no float64 version). Of the kernel's outputs (output,
 * mean, inv_std_var, input_skip_bias_sum) only the first and last are asked for: the statistics go unused
 * (and ORT's CPU and CUDA kernels, in the versions read, never write them anyway; the graph says what it uses).
 */
export function skipRmsNorm(x: Tensor, skip: Tensor, w: Tensor, eps: number): { sum: Tensor; normed: Tensor } {
  if (x.dtype !== "float32") {
    const sum = add(x, skip);
    return { sum, normed: rmsNorm(sum, w, eps) };
  }
  const g = x.graph;
  const [normed, , , sum] = g.node(
    "SkipSimplifiedLayerNormalization",
    [x, skip, w],
    [{ dtype: x.dtype, shape: x.shape }, null, null, { dtype: x.dtype, shape: x.shape }],
    { epsilon: { kind: "float", value: eps } },
    "com.microsoft",
  );
  return { sum: sum!, normed: normed! };
}

/**
 * RoPE in the rotate-half form on x [B, T, heads·d] through ORT's RotaryEmbedding: row b·T + t of the cos and sin
 * tables [P, d/2] is used where `positions` [B, T] (int64) holds that row's index. float32 only.
 */
export function rotaryEmbedding(x: Tensor, positions: Tensor, cos: Tensor, sin: Tensor, heads: number): Tensor {
  if (x.dtype !== "float32") throw new Error(`rotaryEmbedding: ${x.name} has dtype ${x.dtype}; ORT's kernel is float32 (or 16-bit)`);
  return x.graph.node("RotaryEmbedding", [x, positions, cos, sin], [{ dtype: x.dtype, shape: x.shape }], { num_heads: { kind: "int", value: heads }, interleaved: { kind: "int", value: 0 } }, "com.microsoft")[0];
}
