// Parameter counts of a model, as the PyTorch peer counts them.
import type { ModelConfig } from "../gpu-runner/src/engine/model/config.js";
import { PROJECTIONS, projectionDims } from "../gpu-runner/src/engine/model/names.js";

/** Frozen weights that take part in matmuls: every projection of every layer and the LM head (untied in the presets). */
export function frozenMatmulParams(cfg: ModelConfig): number {
  let n = cfg.vocab * cfg.hidden;
  for (const m of PROJECTIONS) {
    const [out, inF] = projectionDims(cfg, m);
    n += cfg.layers * out * inF;
  }
  return n;
}

/** LoRA parameters of rank r on every projection. */
export function loraParams(cfg: ModelConfig, rank: number): number {
  let n = 0;
  for (const m of PROJECTIONS) {
    const [out, inF] = projectionDims(cfg, m);
    n += cfg.layers * rank * (out + inF);
  }
  return n;
}
