// Training losses as graph ops. Masked next-token cross-entropy: log-softmax over the vocabulary (ORT's LogSoftmax is
// max-shifted, so stable), the target's log-probability picked by GatherElements, weighted by a mask.
import type { Tensor } from "../graph/graph.js";
import { op } from "../graph/index.js";

/**
 * Σ mask·(−log softmax(logits)[target]) / denominator. logits: [B, T, V]; targets: [B, T] int64 (the
 * token each position predicts, i.e. input_ids shifted left); mask: [B, T] float (1 = train on it).
 * The denominator defaults to Σ mask; pass the masked-token count of the whole accumulated batch to
 * make micro-batch losses (and gradients) add up to the batch mean.
 */
export function maskedCrossEntropy(logits: Tensor, targets: Tensor, mask: Tensor, denominator?: Tensor): Tensor {
  const nll = op.neg(targetLogp(logits, targets, mask)); // [B, T]
  const total = op.reduceSum(op.mul(nll, mask), [0, 1], false); // []
  return op.div(total, denominator ?? op.reduceSum(mask, [0, 1], false));
}

/** log softmax(logits)[target] at every position: [B, T]. */
function targetLogp(logits: Tensor, targets: Tensor, mask: Tensor): Tensor {
  if (logits.rank !== 3) throw new Error(`cross-entropy: logits ${logits} must be [B, T, V]`);
  if (targets.dtype !== "int64") throw new Error(`cross-entropy: targets ${targets} must be int64`);
  if (mask.dtype !== logits.dtype) throw new Error(`cross-entropy: mask ${mask} must have the logits' dtype ${logits.dtype}`);
  const logp = op.logSoftmax(logits, -1); // [B, T, V]
  const idx = op.unsqueeze(targets, [-1]); // [B, T, 1]
  const picked = logits.graph.node("GatherElements", [logp, idx], [{ dtype: logits.dtype, shape: idx.shape }], { axis: { kind: "int", value: 2 } })[0]; // [B, T, 1]
  return op.squeeze(picked, [2]);
}

/** Σ over masked positions of log p(target): each row's log-likelihood of its trained tokens, [B]. */
export function sequenceLogp(logits: Tensor, targets: Tensor, mask: Tensor): Tensor {
  return op.reduceSum(op.mul(targetLogp(logits, targets, mask), mask), [1], false);
}

/**
 * DPO (Rafailov et al. 2023) over rows laid out in pairs [chosen₀, rejected₀, chosen₁, …]: with
 * r = log π(y|x) − log π_ref(y|x) per row, margin = β·(r_chosen − r_rejected) per pair, and the loss
 * Σ −log σ(margin) / denominator. −log σ(z) is computed as max(−z, 0) + log(1 + e^−|z|), which neither
 * overflows nor rounds to log 0 for large |z|. refLogp: [B], the reference model's sequenceLogp of each row.
 */
export function dpoLoss(logits: Tensor, targets: Tensor, mask: Tensor, refLogp: Tensor, beta: number, denominator: Tensor): { loss: Tensor; seqLogp: Tensor; margins: Tensor } {
  if (!(beta > 0)) throw new Error(`dpo: beta=${beta} must be positive`);
  const seqLogp = sequenceLogp(logits, targets, mask); // [B]
  const pairs = op.reshape(op.sub(seqLogp, refLogp), [-1, 2]); // [P, 2]
  const sign = logits.graph.constant(logits.dtype, [2], logits.dtype === "float64" ? Float64Array.of(1, -1) : Float32Array.of(1, -1));
  const margins = op.mul(op.reduceSum(op.mul(pairs, sign), [1], false), beta); // [P]
  const softplus = op.add(op.max(op.neg(margins), 0), op.log(op.add(op.exp(op.neg(op.abs(margins))), 1)));
  return { loss: op.div(op.reduceSum(softplus, [0], false), denominator), seqLogp, margins };
}
