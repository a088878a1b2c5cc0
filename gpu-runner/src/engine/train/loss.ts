// Masked next-token cross-entropy as graph ops: log-softmax over the vocabulary (ORT's LogSoftmax is
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
  if (logits.rank !== 3) throw new Error(`cross-entropy: logits ${logits} must be [B, T, V]`);
  if (targets.dtype !== "int64") throw new Error(`cross-entropy: targets ${targets} must be int64`);
  if (mask.dtype !== logits.dtype) throw new Error(`cross-entropy: mask ${mask} must have the logits' dtype ${logits.dtype}`);
  const g = logits.graph;
  const logp = op.logSoftmax(logits, -1); // [B, T, V]
  const idx = op.unsqueeze(targets, [-1]); // [B, T, 1]
  const picked = g.node("GatherElements", [logp, idx], [{ dtype: logits.dtype, shape: idx.shape }], { axis: { kind: "int", value: 2 } })[0]; // [B, T, 1]
  const nll = op.neg(op.squeeze(picked, [2])); // [B, T]
  const total = op.reduceSum(op.mul(nll, mask), [0, 1], false); // []
  return op.div(total, denominator ?? op.reduceSum(mask, [0, 1], false));
}
