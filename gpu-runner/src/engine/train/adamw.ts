// AdamW (PyTorch's torch.optim.AdamW) as graph ops, one update per parameter tensor. The step count and
// learning rate are graph inputs so one session serves every step; β1, β2, ε and decay are constants.
import type { Tensor } from "../graph/graph.js";
import { op } from "../graph/index.js";

export type AdamWConfig = { beta1: number; beta2: number; eps: number; weightDecay: number };
export const ADAMW_DEFAULTS: AdamWConfig = { beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0 };

/**
 * One AdamW update: decoupled decay first, then the moments, then
 * p ← p − (lr / (1 − β1^t))·m / (√v / √(1 − β2^t) + ε) — ε added after the bias correction of √v.
 * p, grad, m, v share a shape; lr and step are scalars ([]) of p's dtype; step counts from 1.
 */
export function adamwUpdate(p: Tensor, grad: Tensor, m: Tensor, v: Tensor, lr: Tensor, step: Tensor, c: AdamWConfig): { p: Tensor; m: Tensor; v: Tensor } {
  const g = p.graph;
  const s = (x: number) => g.scalar(x, p.dtype);
  const decayed = c.weightDecay === 0 ? p : op.mul(p, op.sub(1, op.mul(lr, c.weightDecay)));
  const m2 = op.add(op.mul(m, c.beta1), op.mul(grad, 1 - c.beta1));
  const v2 = op.add(op.mul(v, c.beta2), op.mul(op.mul(grad, grad), 1 - c.beta2));
  const bc1 = op.sub(1, op.pow(s(c.beta1), step)); // []
  const bc2Sqrt = op.sqrt(op.sub(1, op.pow(s(c.beta2), step))); // []
  const denom = op.add(op.div(op.sqrt(v2), bc2Sqrt), c.eps);
  const p2 = op.sub(decayed, op.mul(op.div(lr, bc1), op.div(m2, denom)));
  return { p: p2, m: m2, v: v2 };
}
