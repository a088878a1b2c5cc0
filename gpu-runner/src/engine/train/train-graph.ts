// The LoRA training graph: the training forward pass + masked cross-entropy + gradients w.r.t. every
// LoRA tensor + gradient accumulation + optional global-norm clipping + AdamW, so that each micro-batch
// is one session.run of one session.
import type { Graph, Tensor } from "../graph/graph.js";
import { op } from "../graph/index.js";
import { gradients } from "../autodiff/index.js";
import type { ModelConfig } from "../model/config.js";
import { projectionDims, type Projection } from "../model/names.js";
import type { WeightStore } from "../model/weights.js";
import { adamwUpdate, ADAMW_DEFAULTS, type AdamWConfig } from "./adamw.js";
import { clipByGlobalNorm, globalNorm } from "./clip.js";
import { maskedCrossEntropy } from "./loss.js";
import { buildTrainForward, peftKey } from "./model-graph.js";

/**
 * eval: the loss only (no backward pass). grads: loss and raw gradients (checks, the grads CLI).
 * train: one micro-batch of a step — acc_out = acc + gradient, and from acc_out the clipped AdamW
 * update. Every micro-batch runs the same session; the caller keeps acc_out of all but the last and
 * the updated parameters and moments of the last. (A separate accumulate-only graph would save only
 * the elementwise AdamW work on the LoRA tensors, at the cost of a second session's memory.)
 */
export type TrainGraphMode = "eval" | "grads" | "train";

export type TrainGraphOptions = {
  mode: TrainGraphMode;
  rank: number;
  targets: readonly Projection[];
  dtype?: "float32" | "float64";
  adamw?: AdamWConfig;
  /** Global-norm clipping threshold; null/undefined = no clipping (the norm is still an output). */
  maxGradNorm?: number | null;
  /** PEFT lora_dropout, applied in the train graph only (eval and grads never drop). */
  dropout?: number;
};

/** One trainable LoRA tensor, named and shaped as in PEFT: A [r, in], B [out, r]. */
export type TrainParam = { layer: number; module: Projection; kind: "A" | "B"; name: string; shape: [number, number] };

export type TrainGraph = { graph: Graph; params: TrainParam[]; mode: TrainGraphMode };

/** Names of the extra graph inputs/outputs per parameter. */
export const trainNames = (name: string) => ({
  grad: `grad.${name}`,
  acc: `acc.${name}`,
  accOut: `acc_out.${name}`,
  m: `m.${name}`,
  v: `v.${name}`,
  newP: `new.${name}`,
  mOut: `m_out.${name}`,
  vOut: `v_out.${name}`,
});

/** The trainable tensors of a LoRA configuration, in a fixed order (layer, module, A then B). */
export function trainParams(cfg: ModelConfig, rank: number, targets: readonly Projection[]): TrainParam[] {
  const out: TrainParam[] = [];
  for (let layer = 0; layer < cfg.layers; layer++) {
    for (const m of targets) {
      const [outF, inF] = projectionDims(cfg, m);
      out.push({ layer, module: m, kind: "A", name: peftKey(layer, m, "A"), shape: [rank, inF] });
      out.push({ layer, module: m, kind: "B", name: peftKey(layer, m, "B"), shape: [outF, rank] });
    }
  }
  return out;
}

/**
 * Builds the training graph. Inputs beyond the forward pass's (input_ids, position_ids, lora_scale, the
 * LoRA tensors): targets [B, T] int64, loss_mask [B, T], loss_denominator []; train adds acc.* (the
 * gradient sum of the step's earlier micro-batches, zeros for the first), m.*, v.*, lr [] and step [].
 * Outputs: loss; grads: grad.*; train: acc_out.*, grad_norm (before clipping), new.*, m_out.*, v_out.*.
 */
export function buildTrainGraph(cfg: ModelConfig, weights: WeightStore, o: TrainGraphOptions): TrainGraph {
  const dtype = o.dtype ?? "float32";
  const { graph: g, logits, lora } = buildTrainForward(cfg, weights, { rank: o.rank, targets: o.targets, dtype, dropout: o.mode === "train" ? o.dropout : 0 });
  const params = trainParams(cfg, o.rank, o.targets);
  const pt = params.map((p) => lora.get(p.name)!);
  const loss = maskedCrossEntropy(logits, g.input("targets", "int64", ["B", "T"]), g.input("loss_mask", dtype, ["B", "T"]), g.input("loss_denominator", dtype, []));
  g.output(loss, "loss");
  if (o.mode === "eval") return { graph: g, params, mode: o.mode };
  const gm = gradients(loss, pt);
  let grads = pt.map((t) => gm.get(t)!);
  if (o.mode === "grads") {
    grads.forEach((d, i) => g.output(d, trainNames(params[i].name).grad));
    return { graph: g, params, mode: o.mode };
  }
  grads = grads.map((d, i) => op.add(g.input(trainNames(params[i].name).acc, dtype, params[i].shape), d));
  grads.forEach((d, i) => g.output(d, trainNames(params[i].name).accOut));
  let norm: Tensor;
  if (o.maxGradNorm != null) ({ grads, norm } = clipByGlobalNorm(grads, o.maxGradNorm));
  else norm = globalNorm(grads);
  g.output(norm, "grad_norm");
  const lr = g.input("lr", dtype, []);
  const step = g.input("step", dtype, []);
  params.forEach((p, i) => {
    const n = trainNames(p.name);
    const u = adamwUpdate(pt[i], grads[i], g.input(n.m, dtype, p.shape), g.input(n.v, dtype, p.shape), lr, step, o.adamw ?? ADAMW_DEFAULTS);
    g.output(u.p, n.newP);
    g.output(u.m, n.mOut);
    g.output(u.v, n.vOut);
  });
  return { graph: g, params, mode: o.mode };
}
