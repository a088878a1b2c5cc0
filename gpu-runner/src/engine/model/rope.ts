// RoPE inverse frequencies for each rope_scaling kind, computed once in JS at graph-build time.
// Linear scaling divides positions by F, which is the same as dividing every frequency by F.
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
