// Global-norm gradient clipping as graph ops, as torch.nn.utils.clip_grad_norm_ does it: one norm over
// all gradients together, and a common factor min(1, max_norm / (norm + 1e-6)).
import type { Tensor } from "../graph/graph.js";
import { op } from "../graph/index.js";

/** The global L2 norm of all `grads` as a scalar []. */
export function globalNorm(grads: Tensor[]): Tensor {
  if (grads.length === 0) throw new Error("global norm: no gradients given");
  const squares = grads.map((t) => op.reduceSumSquare(t, t.shape.map((_, i) => i), false));
  return op.sqrt(squares.reduce((acc, t) => op.add(acc, t)));
}

/** Scales every gradient by min(1, maxNorm / (norm + 1e-6)); returns the clipped gradients and the norm before clipping. */
export function clipByGlobalNorm(grads: Tensor[], maxNorm: number): { grads: Tensor[]; norm: Tensor } {
  if (!(maxNorm > 0)) throw new Error(`gradient clipping: max_grad_norm=${maxNorm} must be > 0`);
  const norm = globalNorm(grads);
  const factor = op.min(op.div(maxNorm, op.add(norm, 1e-6)), 1); // []
  return { grads: grads.map((t) => op.mul(t, factor)), norm };
}
