// Hugging Face tensor names and projection sizes of the Llama-family layout, in one place. The seven
// projections and where each lives are the API's too (adapter validation): one list for both.
import { linearModules as PROJECTIONS, moduleParent as sublayerOf, type LinearModule as Projection } from "../../../../api/src/lib/model-shapes.js";
import type { ModelConfig } from "./config.js";

export { PROJECTIONS, sublayerOf, type Projection };

/** `model.layers.{i}.{sub}.{m}` — the module path PEFT keys are built on. */
export const modulePath = (layer: number, m: Projection): string => `model.layers.${layer}.${sublayerOf(m)}.${m}`;

/** [out, in] features of a projection. */
export function projectionDims(cfg: ModelConfig, m: Projection): [number, number] {
  const q = cfg.heads * cfg.headDim;
  const kv = cfg.kvHeads * cfg.headDim;
  switch (m) {
    case "q_proj":
      return [q, cfg.hidden];
    case "k_proj":
    case "v_proj":
      return [kv, cfg.hidden];
    case "o_proj":
      return [cfg.hidden, q];
    case "gate_proj":
    case "up_proj":
      return [cfg.intermediate, cfg.hidden];
    case "down_proj":
      return [cfg.hidden, cfg.intermediate];
  }
}

/**
 * Projections that read the same input run as one fused matmul (q|k|v, gate|up); their LoRA tensors
 * are fused the same way: A side by side [in, Σr], B block-diagonal [Σr, Σout].
 */
export const PROJECTION_GROUPS = [
  { name: "qkv", members: ["q_proj", "k_proj", "v_proj"] },
  { name: "o", members: ["o_proj"] },
  { name: "gate_up", members: ["gate_proj", "up_proj"] },
  { name: "down", members: ["down_proj"] },
] as const satisfies readonly { name: string; members: readonly Projection[] }[];
export type ProjectionGroup = (typeof PROJECTION_GROUPS)[number];

/** LoRA layout of one group: the targeted members, their rank blocks and output column offsets. */
export function loraGroupLayout(cfg: ModelConfig, group: ProjectionGroup, rank: number, targets: ReadonlySet<Projection>) {
  const inF = projectionDims(cfg, group.members[0])[1];
  let outTotal = 0;
  const offsets = new Map<Projection, number>();
  for (const m of group.members) {
    offsets.set(m, outTotal);
    outTotal += projectionDims(cfg, m)[0];
  }
  const blocks = group.members.filter((m) => targets.has(m)).map((m, k) => ({ module: m as Projection, rankStart: k * rank, outStart: offsets.get(m) as number, out: projectionDims(cfg, m)[0] }));
  return { inF, outTotal, rankTotal: blocks.length * rank, blocks };
}

/** Graph input names of the stacked LoRA tensors of one projection group. */
export const loraInputNames = (layer: number, group: string) => ({ a: `lora.${layer}.${group}.A`, b: `lora.${layer}.${group}.B` });
export const pastNames = (layer: number) => ({ key: `past_key.${layer}`, value: `past_value.${layer}` });
export const presentNames = (layer: number) => ({ key: `present_key.${layer}`, value: `present_value.${layer}` });
/** A decode loop's own earlier steps (decoder.ts `recent`), carried from one iteration to the next. */
export const recentNames = (layer: number) => ({ key: `recent_key.${layer}`, value: `recent_value.${layer}` });

/** Elements of the frozen weights that take part in matmuls: every projection plus lm_head (the peer's N). */
export function frozenMatmulParams(cfg: ModelConfig): number {
  let n = cfg.vocab * cfg.hidden;
  for (const m of PROJECTIONS) {
    const [out, inF] = projectionDims(cfg, m);
    n += cfg.layers * out * inF;
  }
  return n;
}

/** LoRA parameters of rank r on every projection (the peer's N_lora). */
export function loraParams(cfg: ModelConfig, rank: number): number {
  let n = 0;
  for (const m of PROJECTIONS) {
    const [out, inF] = projectionDims(cfg, m);
    n += cfg.layers * rank * (out + inF);
  }
  return n;
}
