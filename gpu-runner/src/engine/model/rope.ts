// RoPE for the inference and training graphs: inverse frequencies for each rope_scaling kind (computed
// once in JS at graph-build time; linear scaling divides positions by F, the same as dividing every
// frequency by F), cos/sin tables from per-row positions, and rotate-half as one MatMul (ropeOp, differentiable);
// the inference graph's float32 RoPE runs as ORT's RotaryEmbedding kernel instead (headsRope).
import type { Graph, Tensor } from "../graph/graph.js";
import { dimMul } from "../graph/dims.js";
import { op } from "../graph/index.js";
import type { ModelConfig } from "./config.js";

/** inv_freq[i] = theta^(−2i/d), adjusted for rope_scaling (Hugging Face's rules), as float64. */
export function ropeInvFreq(cfg: Pick<ModelConfig, "headDim" | "ropeTheta" | "ropeScaling">): Float64Array {
  const half = cfg.headDim / 2;
  // Hugging Face computes theta ** (arange(0, d, 2).float() / d) in float32; match its rounding.
  const inv = Float64Array.from({ length: half }, (_, i) => Math.fround(1 / Math.fround(cfg.ropeTheta ** Math.fround((2 * i) / cfg.headDim))));
  const s = cfg.ropeScaling;
  if (s.kind === "linear") return inv.map((f) => f / s.factor);
  if (s.kind === "llama3") {
    const lowWavelen = s.originalMaxPositions / s.lowFreqFactor;
    const highWavelen = s.originalMaxPositions / s.highFreqFactor;
    return inv.map((f) => {
      const wavelen = (2 * Math.PI) / f;
      if (wavelen < highWavelen) return f;
      if (wavelen > lowWavelen) return f / s.factor;
      const smooth = (s.originalMaxPositions / wavelen - s.lowFreqFactor) / (s.highFreqFactor - s.lowFreqFactor);
      return (1 - smooth) * (f / s.factor) + smooth * f;
    });
  }
  return inv;
}

/**
 * A RoPE function over [B, T, heads, d] tensors for positions [B, T] (int64): x·cos + rotate_half(x)·sin,
 * with rotate_half as x·R for a signed permutation R [d, d]. One MatMul (and one in the backward pass)
 * instead of two Slices, a Neg and a Concat (and their Pads and Split in the backward pass): measured on
 * the small training preset, about 40 ms of a 620 ms step went to those ops.
 */
export function ropeOp(g: Graph, cfg: Pick<ModelConfig, "headDim" | "ropeTheta" | "ropeScaling">, positionIds: Tensor, dtype: "float32" | "float64"): (x: Tensor) => Tensor {
  const d = cfg.headDim;
  const inv = ropeInvFreq(cfg);
  const invFreq = g.constant(dtype, [d / 2], dtype === "float64" ? inv : Float32Array.from(inv));
  const angles = op.mul(op.unsqueeze(op.cast(positionIds, dtype), [-1]), invFreq); // [B, T, d/2]
  const full = op.unsqueeze(op.concat([angles, angles], -1), [2]); // [B, T, 1, d]
  const cos = op.cos(full);
  const sin = op.sin(full);
  const rot = new (dtype === "float64" ? Float64Array : Float32Array)(d * d);
  for (let j = 0; j < d / 2; j++) {
    rot[(j + d / 2) * d + j] = -1; // out[j] = −x[j + d/2]
    rot[j * d + j + d / 2] = 1; // out[j + d/2] = x[j]
  }
  const R = g.constant(dtype, [d, d], rot);
  return (x) => op.add(op.mul(x, cos), op.mul(op.matmul(x, R), sin));
}

/**
 * RoPE for the inference graph's q|k heads, given flat [B, T, heads·d] → [B, T, heads, d]. float32 runs ORT's
 * RotaryEmbedding, one kernel per layer instead of a MatMul, two Muls and an Add: its tables hold one row per token
 * of the batch (row b·T + t, the angles those of the token's own position), so they never outgrow the batch.
 * float64 keeps ropeOp (ORT's kernel has no float64 version).
 */
export function headsRope(g: Graph, cfg: Pick<ModelConfig, "headDim" | "ropeTheta" | "ropeScaling">, positionIds: Tensor, dtype: "float32" | "float64"): (x: Tensor, heads: number) => Tensor {
  const d = cfg.headDim;
  if (dtype === "float64") {
    const rope = ropeOp(g, cfg, positionIds, dtype);
    return (x, heads) => rope(op.reshape(x, ["B", "T", heads, d]));
  }
  const invFreq = g.constant("float32", [d / 2], Float32Array.from(ropeInvFreq(cfg)));
  const angles = op.mul(op.reshape(op.cast(positionIds, "float32"), [-1, 1]), invFreq); // [B·T, d/2]
  const cos = op.cos(angles);
  const sin = op.sin(angles);
  const BT = dimMul("B", "T");
  const rows = op.reshape(op.range(g, 0, op.reshape(g.dim(BT), []), BT), ["B", "T"]); // [B, T]: b·T + t
  return (x, heads) => op.reshape(op.rotaryEmbedding(x, rows, cos, sin, heads), ["B", "T", heads, d]);
}
