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
import { dpoLoss, maskedCrossEntropy } from "./loss.js";
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
  /** What the loss is: next-token cross-entropy (the default), or DPO over rows in pairs. */
  objective?: Objective;
};

/** Supervised fine-tuning, or Direct Preference Optimization with its β (the strength of the pull toward the reference). */
export type Objective = { kind: "sft" } | { kind: "dpo"; beta: number };

/** One trainable LoRA tensor, named and shaped as in PEFT: A [r, in], B [out, r]. */
export type TrainParam = { layer: number; module: Projection; kind: "A" | "B"; name: string; shape: [number, number] };

export type TrainGraph = { graph: Graph; params: TrainParam[]; mode: TrainGraphMode };

/** Name of a parameter's raw-gradient output (grads mode). */
export const gradName = (name: string) => `grad.${name}`;

/**
 * The optimizer's tensors in train mode, each one flat vector [P] over every parameter in `trainParams`
 * order: one Add, one norm and one AdamW over [P] instead of a dozen small ops per LoRA tensor (measured
 * on the small preset: ~1,300 fewer nodes per step).
 */
export const FLAT = { acc: "acc", accOut: "acc_out", m: "m", v: "v", newParams: "new_params", mOut: "m_out", vOut: "v_out" } as const;

/** Element count of a parameter. */
export const paramSize = (p: TrainParam): number => p.shape[0] * p.shape[1];

/** P, the length of the flat optimizer vectors: every parameter's elements. */
export const flatSize = (params: readonly TrainParam[]): number => params.reduce((n, p) => n + paramSize(p), 0);

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
 * LoRA tensors): targets [B, T] int64, loss_mask [B, T], loss_denominator [] (DPO: ref_logp [B]); train adds the flat
 * vectors (see FLAT) acc (the gradient sum of the step's earlier micro-batches, zeros for the first), m,
 * v, and lr [] and step []. Outputs: loss (DPO eval: seq_logp [B], margins [B/2]); grads: grad.*; train:
 * acc_out, grad_norm (before clipping), new_params, m_out, v_out.
 */
export function buildTrainGraph(cfg: ModelConfig, weights: WeightStore, o: TrainGraphOptions): TrainGraph {
  const dtype = o.dtype ?? "float32";
  const { graph: g, logits, lora } = buildTrainForward(cfg, weights, { rank: o.rank, targets: o.targets, dtype, dropout: o.mode === "train" ? o.dropout : 0 });
  const params = trainParams(cfg, o.rank, o.targets);
  const pt = params.map((p) => lora.get(p.name)!);
  const targets = g.input("targets", "int64", ["B", "T"]);
  const mask = g.input("loss_mask", dtype, ["B", "T"]);
  const denominator = g.input("loss_denominator", dtype, []);
  let loss: Tensor;
  if (o.objective?.kind === "dpo") {
    const dpo = dpoLoss(logits, targets, mask, g.input("ref_logp", dtype, ["B"]), o.objective.beta, denominator);
    loss = dpo.loss;
    // Eval reads each row's log-likelihood (the reference pass, with the starting LoRA values) and the pairs' margins.
    if (o.mode === "eval") {
      g.output(dpo.seqLogp, "seq_logp");
      g.output(dpo.margins, "margins");
    }
  } else loss = maskedCrossEntropy(logits, targets, mask, denominator);
  g.output(loss, "loss");
  if (o.mode === "eval") return { graph: g, params, mode: o.mode };
  const gm = gradients(loss, pt);
  let grads = pt.map((t) => gm.get(t)!);
  if (o.mode === "grads") {
    grads.forEach((d, i) => g.output(d, gradName(params[i].name)));
    return { graph: g, params, mode: o.mode };
  }
  const P = flatSize(params);
  const flat = (ts: Tensor[]) => op.concat(ts.map((t, i) => op.reshape(t, [paramSize(params[i])])), 0); // [P]
  let grad = op.add(g.input(FLAT.acc, dtype, [P]), flat(grads));
  g.output(grad, FLAT.accOut);
  let norm: Tensor;
  if (o.maxGradNorm != null) ({ grads: [grad], norm } = clipByGlobalNorm([grad], o.maxGradNorm));
  else norm = globalNorm([grad]);
  g.output(norm, "grad_norm");
  const u = adamwUpdate(flat(pt), grad, g.input(FLAT.m, dtype, [P]), g.input(FLAT.v, dtype, [P]), g.input("lr", dtype, []), g.input("step", dtype, []), o.adamw ?? ADAMW_DEFAULTS);
  g.output(u.p, FLAT.newParams);
  g.output(u.m, FLAT.mOut);
  g.output(u.v, FLAT.vOut);
  return { graph: g, params, mode: o.mode };
}
